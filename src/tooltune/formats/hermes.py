"""Hermes / Qwen tool calls: one ``<tool_call>`` block of JSON per call.

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

This is what the Qwen2.5/Qwen3 and NousResearch Hermes chat templates emit and what vLLM's
``hermes`` tool parser reads. Parallel calls are several blocks, one per line. Text outside the
blocks is the assistant's prose (``content``).

Each block's JSON is read with a JSON decoder rather than a ``<tool_call>(.*?)</tool_call>``
regex, so a closing tag inside an argument string does not cut the block short.
"""

from __future__ import annotations

import re

from tooltune.formats._calls import DECODER, Malformed, call_from_object, check_renderable, decode_error, dumps
from tooltune.formats.base import ParseResult, register
from tooltune.tools.call import ToolCall

NAME = "hermes"
OPEN, CLOSE = "<tool_call>", "</tool_call>"
_WHITESPACE = re.compile(r"\s*")


def render(calls: list[ToolCall]) -> str:
    """One ``<tool_call>`` block per call, as the Qwen2.5 chat template writes them."""
    check_renderable(calls, NAME)
    blocks = []
    for i, call in enumerate(calls):
        body = dumps({"name": call.name, "arguments": call.arguments}, f"{NAME}: call {i} ({call.name})")
        blocks.append(f"{OPEN}\n{body}\n{CLOSE}")
    return "\n".join(blocks)


def parse(text: str) -> ParseResult:
    """Calls from every ``<tool_call>`` block; prose around them becomes ``content``.

    Accepts ``"parameters"`` for ``"arguments"`` and arguments given as a JSON string, as vLLM's
    hermes parser does. A block that is unclosed at the end of the text (a truncated
    generation), holds invalid JSON, or is not a ``{"name", "arguments"}`` object makes the
    whole result malformed; the error names the block index."""
    start = text.find(OPEN)
    if start == -1:
        return ParseResult.no_call(text)
    try:
        calls, content = _read_blocks(text, start)
    except Malformed as e:
        return ParseResult.malformed(str(e), content=text[:start])
    return ParseResult.ok(calls, content)


def _read_blocks(text: str, start: int) -> tuple[list[ToolCall], str]:
    calls: list[ToolCall] = []
    prose = [text[:start]]
    while start != -1:
        call, pos = _read_block(text, start + len(OPEN), f"<tool_call> block {len(calls)}")
        calls.append(call)
        start = text.find(OPEN, pos)
        prose.append(text[pos:] if start == -1 else text[pos:start])
    return calls, "".join(prose)


def _read_block(text: str, pos: int, where: str) -> tuple[ToolCall, int]:
    """The call in the block whose body starts at ``pos``, and the index after its close tag."""
    body = _WHITESPACE.match(text, pos).end()
    try:
        obj, end = DECODER.raw_decode(text, body)
    except (ValueError, RecursionError) as e:
        if text.find(CLOSE, body) == -1:
            raise Malformed(_unclosed(where)) from None
        raise Malformed(f"{where}: invalid JSON: {decode_error(e)}") from None
    end = _WHITESPACE.match(text, end).end()
    if not text.startswith(CLOSE, end):
        if text.find(CLOSE, end) == -1:
            raise Malformed(_unclosed(where))
        raise Malformed(f"{where}: expected {CLOSE} after the JSON object, found {text[end:end + 30]!r}")
    call = call_from_object(obj, where, arguments_keys=("arguments", "parameters"))
    return call, end + len(CLOSE)


def _unclosed(where: str) -> str:
    return f"{where}: {OPEN} is not closed by {CLOSE} before the end of the text (generation truncated?)"


register(NAME, render=render, parse=parse, description="Hermes/Qwen: <tool_call>{json}</tool_call> blocks")
