"""Plain JSON tool calls: the whole output is one JSON value.

    {"tool_call": {"name": "get_weather", "parameters": {"city": "Paris"}}}

Several calls render as a JSON list of such objects. On parse, ``{"tool_calls": [...]}`` is
accepted as well, its items either ``{"tool_call": {...}}`` wrappers or bare
``{"name", "parameters"}`` objects, and ``"arguments"`` is accepted for ``"parameters"``. The JSON
may be surrounded by whitespace or sit in a Markdown code block (```json ... ```).

Which texts are calls (``kind``):

- no_call: the text is not JSON, or is JSON with no ``"tool_call"``/``"tool_calls"`` key at the
  top (a list counts as calls only if an item has a ``"tool_call"`` key);
- malformed: the text is not valid JSON but mentions ``"tool_call``; or it is a call object of
  the wrong shape; or it is a bare ``{"name": ..., "parameters": ...}`` without the wrapper;
- calls: otherwise.
"""

from __future__ import annotations

from typing import Any

from tooltune.formats._calls import (
    Malformed,
    call_from_object,
    check_renderable,
    decode_error,
    dumps,
    json_type,
    loads,
    strip_fence,
)
from tooltune.formats.base import ParseResult, register
from tooltune.tools.call import ToolCall

NAME = "json"
_ARGUMENTS_KEYS = ("parameters", "arguments")


def render(calls: list[ToolCall]) -> str:
    """One call as a ``{"tool_call": ...}`` object; any other number as a JSON list of them."""
    check_renderable(calls, NAME)
    objects = []
    for i, call in enumerate(calls):
        where = f"{NAME}: call {i} ({call.name})"
        objects.append(dumps({"tool_call": {"name": call.name, "parameters": call.arguments}}, where))
    return objects[0] if len(objects) == 1 else "[" + ", ".join(objects) + "]"


def parse(text: str) -> ParseResult:
    """Calls from a JSON tool-call object or list; see the module docstring for the rules."""
    body = strip_fence(text)
    try:
        value = loads(body)
    except (ValueError, RecursionError) as e:
        if '"tool_call' in body:
            return ParseResult.malformed(f"the output mentions \"tool_call\" but is not valid JSON: {decode_error(e)}")
        return ParseResult.no_call(text)
    try:
        calls = _calls_from(value)
    except Malformed as e:
        return ParseResult.malformed(str(e))
    if calls is None:
        return ParseResult.no_call(text)
    return ParseResult.ok(calls)


def _calls_from(value: Any) -> list[ToolCall] | None:
    """The calls ``value`` holds, None if it is not a call attempt at all."""
    if isinstance(value, list):
        if not any(isinstance(item, dict) and "tool_call" in item for item in value):
            return None
        return [_item(item, f"item {i}") for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return None
    if "tool_call" in value:
        return [_item(value, "top-level object")]
    if "tool_calls" in value:
        items = value["tool_calls"]
        if not isinstance(items, list):
            raise Malformed(f"\"tool_calls\" must be a JSON array of calls, got {json_type(items)}")
        return [_item(item, f"tool_calls[{i}]") for i, item in enumerate(items)]
    if "name" in value and any(key in value for key in _ARGUMENTS_KEYS):
        raise Malformed('a bare call object; wrap it as {"tool_call": {"name": ..., "parameters": ...}}')
    return None


def _item(item: Any, where: str) -> ToolCall:
    """A call from a ``{"tool_call": {...}}`` wrapper or, inside ``tool_calls``, a bare call."""
    if isinstance(item, dict) and "tool_call" in item:
        return call_from_object(item["tool_call"], f"{where}.tool_call", arguments_keys=_ARGUMENTS_KEYS)
    return call_from_object(item, where, arguments_keys=_ARGUMENTS_KEYS)


register(NAME, render=render, parse=parse, description='Plain JSON: {"tool_call": {"name", "parameters"}}')
