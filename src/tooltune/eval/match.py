"""Check one model output against an example's expected behaviour, with BFCL's AST rules.

``match(example, parse_result, tools)`` returns a :class:`MatchResult`: ``correct``, a stable
:class:`Reason` code for the first failure, a readable message, and the per-call and
per-parameter checks that metrics are computed from. The rules follow BFCL's AST checker
(``bfcl_eval/eval_checker/ast_eval/ast_checker.py``, bfcl-eval 2026.3.23); docs/evaluation.md
has the full table. In BFCL's order, the first failure decides the reason:

1. Behaviour. Expected ``no_call``: correct when the output holds no call. Expected
   ``clarify``: correct when the output holds no call *and* asks: it contains ``?`` or
   mentions one of ``clarify.missing`` (case-insensitive; ``_`` read as a space), else
   ``clarify_missed``. Expected ``calls``: every call, in any order. Expected ``sequence``
   (multi-step): only the first step; a single offline turn cannot see the tool results that
   later steps use (the agent loop scores whole sequences).
2. A malformed output is ``parse_failed``, an output without calls ``no_call``, calls where
   none were expected ``unexpected_call``, a different number of calls ``wrong_count``.
3. Per call (a predicted call is checked against one expected call):
   - the name must be equal (``wrong_function``);
   - every parameter the tool's schema requires must be given (``missing_required``);
   - each given parameter must be in the tool's schema *and* set by the expected call, as a
     value or as optional (``unexpected_param``);
   - its value must have the schema's declared type (``type_mismatch``); see "Types";
   - its value must equal one accepted value, canonical or alternative (``value_mismatch``);
     see "Values";
   - a parameter the expected call sets and does not mark optional must be given, even when
     the schema does not require it (``missing_expected``; BFCL's ``missing_optional``).
4. Parallel calls are matched independent of order: a predicted call may stand for any one
   expected call, and the output is correct when a one-to-one assignment exists in which
   every pair is correct (maximum bipartite matching over the correct pairs).

Types (declared type from the parameter's schema; BFCL type names such as ``dict``,
``float``, ``tuple``, ``any`` and the Java/JavaScript ones are read through
:data:`tooltune.data.io.dialects.BFCL_TYPES`, so raw BFCL schemas work too):
``integer`` takes an int, not a bool or a float (``5.0`` fails); ``number`` takes an int or a
float (BFCL converts int to float for ``float``); ``boolean`` a bool; ``string`` a str;
``array``/``tuple`` a list (parsers read tuples as lists); ``object``/``dict`` a dict;
``any``/no type: anything. Array items are checked one level deep, as in BFCL. A value whose
type equals the type of the accepted values is also taken, and then compared exactly, without
string normalization (BFCL's "variable" rule: ground truth such as ``x="data['sales']"`` for an
array parameter names a variable; when the expected answer disagrees with the schema, the
expected answer wins). For BFCL's Java/JavaScript cases a scalar may also be written as a
Java/JS literal string (``"true"``, ``"50"``, ``"50L"``, ``"2.5f"``), which is converted before
checking.

Values: strings are compared after BFCL's ``standardize_string`` (remove spaces and
``, . / - _ * ^``, lowercase, ``'`` → ``"``), so ``"April 1, 2024"`` equals ``"april 1 2024"``;
numbers compare numerically (``2 == 2.0``) but never equal a bool; lists compare item by item
in order; dicts compare as whole values (same keys, equal values). BFCL's per-key dict answers
arrive here already expanded into whole accepted values by the BFCL importer.

Deliberate differences from BFCL (``benchmarks/bfcl_differential.py`` runs both checkers on
47,677 variants of BFCL answers; they disagree on 8, all from the first and third item):

- Parallel assignment is optimal, not greedy: BFCL pairs each expected call with the first
  unused predicted call that passes, which can fail an output for which a valid assignment
  exists.
- A malformed output where no call was expected (irrelevance) is wrong (``parse_failed``):
  BFCL counts any output it cannot decode as "no call". Here a broken call attempt is still a
  call attempt.
- String normalization and int-for-float apply at every depth (BFCL: strings one level into
  lists/dicts, int-for-float at the top level only); bools never equal numbers (BFCL's ``in``
  takes ``True == 1``).
- Java/JavaScript values may be typed JSON values (what tooltune's formats carry); BFCL
  requires every value as Java/JS source text. Collections written as Java source
  (``new ArrayList<>(...)``) are not converted.
- Function names must be equal; BFCL's per-model ``.`` → ``_`` renaming is not applied.
"""

from __future__ import annotations

import enum
import re
from typing import Any

from pydantic import BaseModel, Field

from tooltune.data.examples import Behavior, Example, ExpectedCall
from tooltune.data.io.dialects import BFCL_TYPES
from tooltune.formats.base import ParseKind, ParseResult
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool


class Reason(str, enum.Enum):
    """Why an output is wrong. The values are stable: results files and dashboards key on them."""

    PARSE_FAILED = "parse_failed"
    """The output holds call markup that the format's parser could not read."""
    NO_CALL = "no_call"
    """Calls were expected; the output holds none."""
    UNEXPECTED_CALL = "unexpected_call"
    """No call was expected (irrelevance or clarify); the output calls a tool."""
    WRONG_COUNT = "wrong_count"
    """The output holds a different number of calls than expected."""
    WRONG_FUNCTION = "wrong_function"
    """A call names a different tool than the expected one (or no assignment pairs the names)."""
    MISSING_REQUIRED = "missing_required"
    """A parameter the tool's schema requires is not given."""
    MISSING_EXPECTED = "missing_expected"
    """A parameter the expected call sets (and does not mark optional) is not given, though the
    schema does not require it. BFCL: ``missing_optional``."""
    UNEXPECTED_PARAM = "unexpected_param"
    """A given parameter is not in the tool's schema, or the expected call does not set it."""
    TYPE_MISMATCH = "type_mismatch"
    """A value does not have the parameter's declared type."""
    VALUE_MISMATCH = "value_mismatch"
    """A value has the right type but is none of the accepted values."""
    CLARIFY_MISSED = "clarify_missed"
    """A clarifying question was expected; the output makes no call but does not ask either."""
    NO_PREDICTION = "no_prediction"
    """Scoring only: the predictions file has no output for the example."""


class ParamCheck(BaseModel):
    """One parameter of a predicted call, checked against the expected call it was paired with."""

    name: str
    ok: bool
    reason: Reason | None = None
    message: str = ""


class CallCheck(BaseModel):
    """One expected call paired with one predicted call; either side is None when unpaired."""

    expected: str | None = Field(description="Expected tool name; None for an extra predicted call.")
    predicted: str | None = Field(description="Predicted tool name; None when the expected call was not made.")
    correct: bool
    reason: Reason | None = None
    message: str = ""
    params: list[ParamCheck] = Field(default_factory=list, description="Empty unless the names are equal.")


class MatchResult(BaseModel):
    correct: bool
    reason: Reason | None = Field(None, description="None when correct.")
    message: str = ""
    expects_call: bool = Field(description="The example expects at least one call.")
    called: bool = Field(description="The output is a call attempt: calls, or malformed call markup.")
    calls: list[CallCheck] = Field(default_factory=list, description="Expected/predicted call pairs.")


def expected_calls(example: Example) -> list[ExpectedCall]:
    """The calls expected in the next turn: all of them, or a sequence's first step."""
    if example.behavior is Behavior.CALLS:
        return list(example.calls)
    if example.behavior is Behavior.SEQUENCE:
        return example.calls[:1]
    return []


def match(example: Example, parse: ParseResult, tools: list[Tool]) -> MatchResult:
    """Check ``parse`` (the parsed model output) against ``example``; ``tools`` are the offered
    tools (``example.offered_tools(catalog)``), whose schemas give required params and types."""
    expected = expected_calls(example)
    called = parse.kind in (ParseKind.CALLS, ParseKind.MALFORMED)
    predicted = parse.calls if parse.kind is ParseKind.CALLS else []
    base = {"expects_call": bool(expected), "called": called}

    if parse.kind is ParseKind.MALFORMED:
        return MatchResult(correct=False, reason=Reason.PARSE_FAILED, message=f"output could not be parsed: {parse.error}", **base)
    if not expected:
        if predicted:
            names = ", ".join(c.name for c in predicted)
            what = "a clarifying question" if example.behavior is Behavior.CLARIFY else "no call"
            return MatchResult(correct=False, reason=Reason.UNEXPECTED_CALL, message=f"expected {what}, got a call to {names}",
                               calls=[CallCheck(expected=None, predicted=c.name, correct=False, reason=Reason.UNEXPECTED_CALL)
                                      for c in predicted], **base)
        if example.behavior is Behavior.CLARIFY and not asks(parse.content, example.clarify.missing if example.clarify else []):
            return MatchResult(correct=False, reason=Reason.CLARIFY_MISSED,
                               message="expected a clarifying question; the reply neither asks (no '?') nor names a missing detail", **base)
        return MatchResult(correct=True, **base)
    if not predicted:
        names = ", ".join(c.name for c in expected)
        return MatchResult(correct=False, reason=Reason.NO_CALL, message=f"expected a call to {names}, got no call",
                           calls=[CallCheck(expected=c.name, predicted=None, correct=False, reason=Reason.NO_CALL) for c in expected],
                           **base)

    language = str(example.meta.get("bfcl_language", "python"))
    by_name = {t.name: t for t in tools}
    grid = [[check_call(e, p, by_name.get(e.name), language) for p in predicted] for e in expected]
    pairs = _assign(grid, len(expected), len(predicted))
    checks = [grid[i][j] if j is not None else
              CallCheck(expected=expected[i].name, predicted=None, correct=False, reason=Reason.WRONG_COUNT,
                        message=f"expected call {expected[i].name} has no counterpart") for i, j in pairs]
    used = {j for _, j in pairs}
    checks += [CallCheck(expected=None, predicted=p.name, correct=False, reason=Reason.WRONG_COUNT,
                         message=f"extra call {p.name}") for j, p in enumerate(predicted) if j not in used]

    if len(predicted) != len(expected):
        return MatchResult(correct=False, reason=Reason.WRONG_COUNT, calls=checks, **base,
                           message=f"expected {len(expected)} call(s) ({', '.join(c.name for c in expected)}), "
                                   f"got {len(predicted)} ({', '.join(c.name for c in predicted)})")
    wrong = next((c for c in checks if not c.correct), None)
    if wrong is None:
        return MatchResult(correct=True, calls=checks, **base)
    where = f"call {wrong.expected}: " if len(expected) > 1 else ""
    return MatchResult(correct=False, reason=wrong.reason, message=where + wrong.message, calls=checks, **base)


def check_call(expected: ExpectedCall, call: ToolCall, tool: Tool | None, language: str = "python") -> CallCheck:
    """One predicted call against one expected call. ``tool`` is the expected tool's definition
    (None when it is not offered: then schema-based rules are skipped). The reason is the first
    failure in BFCL's order; ``params`` holds a check for every parameter either side names."""
    if call.name != expected.name:
        return CallCheck(expected=expected.name, predicted=call.name, correct=False, reason=Reason.WRONG_FUNCTION,
                         message=f"expected a call to {expected.name}, got {call.name}")
    properties = tool.properties if tool is not None else {}
    required = tool.required if tool is not None else []
    settable = list(dict.fromkeys([*expected.arguments, *expected.alternatives, *expected.optional]))
    params: list[ParamCheck] = []
    for name in required:
        if name not in call.arguments:
            params.append(ParamCheck(name=name, ok=False, reason=Reason.MISSING_REQUIRED,
                                     message=f"required parameter {name!r} is missing"))
    for name, value in call.arguments.items():
        if tool is not None and name not in properties:
            params.append(ParamCheck(name=name, ok=False, reason=Reason.UNEXPECTED_PARAM,
                                     message=f"{name!r} is not a parameter of {expected.name}"))
        elif name not in settable:
            params.append(ParamCheck(name=name, ok=False, reason=Reason.UNEXPECTED_PARAM,
                                     message=f"{name!r} = {value!r} is given but the expected call does not set it"))
        else:
            params.append(_check_value(name, value, expected.allowed(name), properties.get(name), language))
    for name in settable:
        if name not in call.arguments and name not in required and name not in expected.optional:
            params.append(ParamCheck(name=name, ok=False, reason=Reason.MISSING_EXPECTED,
                                     message=f"parameter {name!r} is missing (expected {_shown(expected.allowed(name))})"))
    failed = next((p for p in params if not p.ok), None)
    if failed is None:
        return CallCheck(expected=expected.name, predicted=call.name, correct=True, params=params)
    return CallCheck(expected=expected.name, predicted=call.name, correct=False, reason=failed.reason,
                     message=failed.message, params=params)


def _check_value(name: str, value: Any, allowed: list[Any], schema: Any, language: str) -> ParamCheck:
    schema = schema if isinstance(schema, dict) else {}
    if language in ("java", "javascript") and isinstance(value, str):
        value = _from_literal(value, _types(schema))
    typed = _type_check(value, schema, allowed)
    if typed is None:
        return ParamCheck(name=name, ok=False, reason=Reason.TYPE_MISMATCH,
                          message=f"{name!r} = {value!r} is a {_kind(value)}, expected {' or '.join(_types(schema))}")
    # A value taken by the "variable" rule is compared exactly, as BFCL does.
    equal = values_equal if typed == "declared" else _identical
    if not any(equal(value, a) for a in allowed):
        return ParamCheck(name=name, ok=False, reason=Reason.VALUE_MISMATCH,
                          message=f"{name!r} = {value!r}, expected {_shown(allowed)}")
    return ParamCheck(name=name, ok=True)


# -- types ----------------------------------------------------------------------------------

_JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object", "null"}


def _types(schema: dict[str, Any]) -> list[str]:
    """The JSON Schema types a schema declares (BFCL names translated); [] means any."""
    declared = schema.get("type")
    names = declared if isinstance(declared, list) else [declared] if isinstance(declared, str) else []
    out = []
    for name in names:
        kind = name if name in _JSON_TYPES else BFCL_TYPES.get(name)
        if kind is None:  # "any", or a type name nobody knows: no constraint
            return []
        out.append(kind)
    return out


def _kind(value: Any) -> str:
    """The JSON type of a Python value as a parser returns it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _has_type(value: Any, kind: str) -> bool:
    actual = _kind(value)
    return actual == kind or (kind == "number" and actual == "integer")


def _type_check(value: Any, schema: dict[str, Any], allowed: list[Any]) -> str | None:
    """``"declared"`` when ``value`` has the schema's type, ``"variable"`` when it only has the
    accepted values' type (BFCL's variable rule), None when it has neither."""
    types = _types(schema)
    if not types:
        return "declared"
    if not any(_has_type(value, t) for t in types):
        return "variable" if allowed and _kind(value) == _kind(allowed[0]) else None
    if "array" in types and isinstance(value, list) and isinstance(schema.get("items"), dict):
        item_types = _types(schema["items"])
        accepted_kinds = {_kind(item) for a in allowed if isinstance(a, list) for item in a}
        if item_types and not all(any(_has_type(item, t) for t in item_types) or _kind(item) in accepted_kinds
                                  for item in value):
            return None
    return "declared"


_JAVA_INT = re.compile(r"[+-]?\d+[lLnN]?")
_JAVA_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?")


def _from_literal(text: str, types: list[str]) -> Any:
    """A Java/JavaScript scalar literal as the typed value; other text stays a string."""
    stripped = text.strip()
    if "boolean" in types and stripped in ("true", "false"):
        return stripped == "true"
    if "integer" in types and _JAVA_INT.fullmatch(stripped):
        return int(stripped.rstrip("lLnN"))
    if "number" in types and _JAVA_FLOAT.fullmatch(stripped):
        return float(stripped.rstrip("fFdD"))
    return text


# -- values ---------------------------------------------------------------------------------

_STANDARDIZE = re.compile(r"[ ,./\-_*^]")


def standardize_string(text: str) -> str:
    """BFCL's string normalization: drop spaces and ``, . / - _ * ^``, lowercase, ``'`` → ``"``."""
    return _STANDARDIZE.sub("", text).lower().replace("'", '"')


def values_equal(value: Any, accepted: Any) -> bool:
    """Whether a predicted value equals an accepted value under the rules in the module docstring."""
    if isinstance(value, str) or isinstance(accepted, str):
        return isinstance(value, str) and isinstance(accepted, str) and standardize_string(value) == standardize_string(accepted)
    if isinstance(value, bool) or isinstance(accepted, bool):
        return isinstance(value, bool) and isinstance(accepted, bool) and value == accepted
    if isinstance(value, (int, float)) and isinstance(accepted, (int, float)):
        return value == accepted
    if isinstance(value, (list, tuple)) and isinstance(accepted, (list, tuple)):
        return len(value) == len(accepted) and all(values_equal(v, a) for v, a in zip(value, accepted))
    if isinstance(value, dict) and isinstance(accepted, dict):
        return value.keys() == accepted.keys() and all(values_equal(value[k], accepted[k]) for k in value)
    return value is None and accepted is None


def _identical(value: Any, accepted: Any) -> bool:
    return _kind(value) == _kind(accepted) and value == accepted


def _shown(allowed: list[Any]) -> str:
    if not allowed:
        return "it to be left out"
    return repr(allowed[0]) if len(allowed) == 1 else "one of " + ", ".join(repr(a) for a in allowed[:5]) + (" …" if len(allowed) > 5 else "")


# -- clarify --------------------------------------------------------------------------------


def asks(text: str, missing: list[str]) -> bool:
    """Whether a reply asks for details: it holds a ``?`` or names a missing detail."""
    if "?" in text:
        return True
    lowered = text.lower()
    return any(m and (m.lower() in lowered or m.lower().replace("_", " ") in lowered) for m in missing)


# -- assignment -----------------------------------------------------------------------------


def _assign(grid: list[list[CallCheck]], n: int, m: int) -> list[tuple[int, int | None]]:
    """Pair expected calls (rows) with predicted calls (columns), one to one.

    First a maximum matching over the correct pairs (Kuhn's augmenting paths, exact for any
    size, no scipy needed), so the output is correct exactly when a full correct assignment
    exists. Rows left over are then paired greedily with the closest unused column (same name,
    then most parameters right), which only shapes the diagnostics."""
    owner: dict[int, int] = {}  # column -> row

    def augment(row: int, seen: set[int]) -> bool:
        for col in range(m):
            if grid[row][col].correct and col not in seen:
                seen.add(col)
                if col not in owner or augment(owner[col], seen):
                    owner[col] = row
                    return True
        return False

    for row in range(n):
        augment(row, set())
    row_to_col: dict[int, int | None] = {row: col for col, row in owner.items()}
    free = [col for col in range(m) if col not in owner]
    for row in range(n):
        if row in row_to_col:
            continue
        if not free:
            row_to_col[row] = None
            continue
        best = max(free, key=lambda col: (grid[row][col].predicted == grid[row][col].expected,
                                          sum(p.ok for p in grid[row][col].params)))
        free.remove(best)
        row_to_col[row] = best
    return [(row, row_to_col[row]) for row in range(n)]
