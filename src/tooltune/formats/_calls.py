"""Checks shared by the format modules: decoded values in, ``ToolCall``s or a reason out.

Parsers signal a malformed call by raising :class:`Malformed` from deep inside their helpers and
turning it into ``ParseResult.malformed`` at the top of ``parse``; it never leaves a parser.
"""

from __future__ import annotations

import json
import math
from typing import Any

from tooltune.errors import FormatError
from tooltune.tools.call import ToolCall


class Malformed(Exception):
    """Private control flow: the message is the ``error`` of the malformed parse result."""


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal} does not fit a finite float")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# NaN/Infinity (and 1e999, which float() turns into inf) would be accepted by the stdlib
# decoder but could never be written back out as JSON, so they count as malformed.
DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_reject_constant)


def decode_error(e: Exception) -> str:
    """A one-line reason for a failed decode; RecursionError only says 'too deep'."""
    if isinstance(e, RecursionError):
        return "JSON nested too deeply"
    return str(e)


def loads(text: str) -> Any:
    """``json.loads`` that rejects NaN/Infinity; raises ValueError or RecursionError."""
    return DECODER.decode(text)


def dumps(value: Any, where: str) -> str:
    """JSON as the Hugging Face chat templates' ``tojson`` writes it (UTF-8 kept, not escaped).

    Raises FormatError naming ``where`` for values JSON cannot hold (NaN, sets, objects)."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise FormatError(f"{where}: arguments are not JSON-serializable ({e}); use JSON values only.") from e


def strip_fence(text: str) -> str:
    """The body of a Markdown code block (```json ... ```) if ``text`` is exactly one; else text."""
    s = text.strip()
    if len(s) >= 6 and s.startswith("```") and s.endswith("```"):
        first_newline = s.find("\n")
        if first_newline != -1 and first_newline < len(s) - 3:
            return s[first_newline + 1 : -3].strip()
    return s


def arguments_from(value: Any, where: str) -> dict[str, Any]:
    """The arguments object, accepting a JSON string holding it (OpenAI and vLLM do this)."""
    if isinstance(value, str):
        try:
            value = loads(value)
        except (ValueError, RecursionError) as e:
            raise Malformed(f"{where}: arguments string is not valid JSON: {decode_error(e)}") from None
    if not isinstance(value, dict):
        raise Malformed(f"{where}: arguments must be a JSON object, got {json_type(value)}")
    return value


def call_from_object(obj: Any, where: str, *, arguments_keys: tuple[str, ...]) -> ToolCall:
    """A call from ``{"name": ..., <one of arguments_keys>: ...}``; anything else is Malformed."""
    if not isinstance(obj, dict):
        raise Malformed(f"{where}: expected a JSON object with 'name', got {json_type(obj)}")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise Malformed(f"{where}: 'name' must be a non-empty string, got {json_type(name)}")
    present = [key for key in arguments_keys if key in obj]
    if not present:
        raise Malformed(f"{where}: call {name!r} has no {' or '.join(repr(k) for k in arguments_keys)} key")
    return ToolCall(name=name, arguments=arguments_from(obj[present[0]], where))


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def check_renderable(calls: list[ToolCall], format_name: str) -> None:
    """Render-side guard: every format needs a non-empty string name and a dict of arguments."""
    for i, call in enumerate(calls):
        if not isinstance(call.name, str) or not call.name:
            raise FormatError(
                f"{format_name}: call {i} has name {call.name!r}; a tool name must be a non-empty string."
            )
        if not isinstance(call.arguments, dict):
            raise FormatError(
                f"{format_name}: call {i} ({call.name}) has arguments of type "
                f"{type(call.arguments).__name__}; pass a dict (a JSON object)."
            )
