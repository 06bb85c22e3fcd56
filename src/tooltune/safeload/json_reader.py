"""JSON with limits: nesting depth, number length, and only numbers JSON has."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tooltune.errors import DocumentError
from tooltune.safeload import limits
from tooltune.safeload.text import read_text


class JSONLimitError(json.JSONDecodeError):
    """The document broke a parsing limit; a ``JSONDecodeError``, so it carries line and column."""


class _Refused(ValueError):
    def __init__(self, message: str, text: str):
        super().__init__(message)
        self.text = text


def _int(text: str) -> int:
    if len(text) > limits.MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(text)} digits; at most {limits.MAX_NUMBER_CHARS} are read", text)
    return int(text)


def _float(text: str) -> float:
    if len(text) > limits.MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(text)} characters; at most {limits.MAX_NUMBER_CHARS} are read", text)
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"the number {text} is too large for a double (it would read as infinity)", text)
    return value


def _constant(text: str) -> Any:
    raise _Refused(f"{text} is not a JSON number (JSON has no NaN or Infinity)", text)


def loads_json(text: str) -> Any:
    """``json.loads`` with the limits; raises ``json.JSONDecodeError`` (a :class:`JSONLimitError`
    for a broken limit), so callers that handle JSON syntax errors handle these too."""
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _Refused as e:
        raise JSONLimitError(str(e), text, max(0, text.find(e.text))) from None
    except RecursionError:
        raise JSONLimitError(f"nested deeper than {limits.MAX_DEPTH} levels", text, 0) from None
    # Containers cannot nest deeper than there are brackets: most documents skip the walk.
    if text.count("[") + text.count("{") > limits.MAX_DEPTH and _depth_over(value):
        raise JSONLimitError(f"nested deeper than {limits.MAX_DEPTH} levels", text, 0)
    return value


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)


def raw_decode(text: str, pos: int = 0) -> tuple[Any, int]:
    """``JSONDecoder.raw_decode`` with the limits: the value starting at ``pos`` and where it ends
    (for files that hold a sequence of values, such as a JSON array read item by item)."""
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except _Refused as e:
        raise JSONLimitError(str(e), text, max(pos, text.find(e.text, pos))) from None
    except RecursionError:
        raise JSONLimitError(f"nested deeper than {limits.MAX_DEPTH} levels", text, pos) from None
    if _depth_over(value):
        raise JSONLimitError(f"nested deeper than {limits.MAX_DEPTH} levels", text, pos)
    return value, end


def _depth_over(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limits.MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def read_json(path: str | Path) -> Any:
    """Read and parse the JSON file ``path``; any failure raises :class:`DocumentError` naming
    ``file:line:column`` and the problem."""
    path = Path(path)
    text = read_text(path)
    try:
        return loads_json(text)
    except json.JSONDecodeError as e:
        raise DocumentError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}. Fix the document at that position.") from e
