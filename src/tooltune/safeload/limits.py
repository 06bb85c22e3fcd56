"""The parsing limits, one home for YAML and JSON."""

MAX_DEPTH = 64
"""Deepest nesting of mappings/objects and sequences/arrays read (a JSON Schema 30 levels deep
is 60 here); deeper input is refused before anything recurses over it."""

MAX_NUMBER_CHARS = 100
"""Longest number read, in characters: a 100,000-digit integer is refused, not converted."""

ALIAS_BUDGET_MIN_NODES = 10_000
ALIAS_BUDGET_FACTOR = 10
"""YAML aliases may add at most max(ALIAS_BUDGET_MIN_NODES, ALIAS_BUDGET_FACTOR x the document's
own nodes) nodes: an amplification limit as in expat's billion-laughs protection, so anchors
that share a block a few times pass and nested anchors that multiply fail at once."""
