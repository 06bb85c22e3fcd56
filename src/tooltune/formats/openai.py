"""OpenAI chat-completions tool calls: an assistant message whose ``tool_calls`` carry the
arguments as a JSON *string*.

    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
     "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]}

Data import and the serving API work with the message dict directly (:func:`to_message`,
:func:`from_message`); ``render``/``parse`` are the same thing as JSON text, so that the format
sits in the registry next to the others. Call ids are kept: a call without one is given
``call_<index>`` on render.
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

NAME = "openai"


def to_message(calls: list[ToolCall], content: str | None = None) -> dict[str, Any]:
    """The assistant message for ``calls``; ``tool_calls`` is left out when there are none,
    because the OpenAI API rejects an empty list."""
    check_renderable(calls, NAME)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [_tool_call(call, i) for i, call in enumerate(calls)]
    return message


def _tool_call(call: ToolCall, index: int) -> dict[str, Any]:
    arguments = dumps(call.arguments, f"{NAME}: call {index} ({call.name})")
    return {
        "id": call.id if call.id is not None else f"call_{index}",
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def render(calls: list[ToolCall]) -> str:
    """The JSON text of :func:`to_message` with no content."""
    return dumps(to_message(calls), NAME)


def from_message(message: dict[str, Any]) -> ParseResult:
    """Calls from an assistant message dict; ``content`` is its text content.

    No ``tool_calls`` (missing, null or empty) is no_call. Each call needs ``function.name`` and
    ``function.arguments`` (a JSON string of an object; an object is accepted too); anything else
    is malformed, naming ``tool_calls[i]``."""
    if not isinstance(message, dict):
        return ParseResult.malformed(f"expected an assistant message object, got {json_type(message)}")
    content = _content_text(message.get("content"))
    items = message.get("tool_calls")
    if items is None or items == []:
        return ParseResult.no_call(content)
    if not isinstance(items, list):
        return ParseResult.malformed(f"tool_calls must be a list, got {json_type(items)}", content=content)
    try:
        calls = [_call(item, f"tool_calls[{i}]") for i, item in enumerate(items)]
    except Malformed as e:
        return ParseResult.malformed(str(e), content=content)
    return ParseResult.ok(calls, content)


def _call(item: Any, where: str) -> ToolCall:
    if not isinstance(item, dict):
        raise Malformed(f"{where}: expected a tool call object, got {json_type(item)}")
    kind = item.get("type", "function")
    if kind != "function":
        raise Malformed(f"{where}: type {kind!r} is not supported; only 'function' tool calls are")
    call_id = item.get("id")
    if call_id is not None and not isinstance(call_id, str):
        raise Malformed(f"{where}: id must be a string, got {json_type(call_id)}")
    call = call_from_object(item.get("function"), f"{where}.function", arguments_keys=("arguments",))
    call.id = call_id
    return call


def _content_text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def parse(text: str) -> ParseResult:
    """JSON text of an assistant message, or of a bare ``tool_calls`` list, via :func:`from_message`.

    Text that is not JSON, or JSON that is neither a message (an object with ``role`` or
    ``tool_calls``) nor a list of tool-call objects, is no_call; invalid JSON that mentions
    ``"tool_calls"`` or ``"function"`` is malformed."""
    body = strip_fence(text)
    try:
        value = loads(body)
    except (ValueError, RecursionError) as e:
        if '"tool_calls"' in body or '"function"' in body:
            return ParseResult.malformed(f"the output looks like tool calls but is not valid JSON: {decode_error(e)}")
        return ParseResult.no_call(text)
    if isinstance(value, list) and any(isinstance(item, dict) and "function" in item for item in value):
        return from_message({"tool_calls": value})
    if isinstance(value, dict) and ("tool_calls" in value or "role" in value):
        return from_message(value)
    return ParseResult.no_call(text)


register(NAME, render=render, parse=parse, description="OpenAI assistant message with tool_calls (arguments as JSON string)")
