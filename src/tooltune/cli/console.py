"""The terminal the ``tooltune`` commands print to: one rich console for results, one for errors.

Its own module at the bottom of the layers so that the command groups living in their rooms
(``graph/cli.py``, ``ops/cli.py``) print through it without importing the top-level ``cli``
that registers them (that was an import cycle). It moves into the ``cli/`` package when the
command groups do (issue #22).
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

# Piped output (make, CI logs) would get rich's 80-column default, which truncates the wide
# comparison and gate tables; a terminal or an explicit $COLUMNS still decides when present.
_PIPED_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
console = Console(width=_PIPED_WIDTH)
err_console = Console(stderr=True)
