"""Glaive function-calling v2: ``<functioncall>`` followed by a JSON-like object.

    <functioncall> {"name": "get_weather", "arguments": '{"city": "Paris"}'}

This is the form used in the glaive-function-calling-v2 dataset: the arguments are JSON text
wrapped in *single* quotes, so the object as a whole is not valid JSON (and the quoted JSON may
itself contain unescaped ``'``, as in ``'{"title": "Harry Potter and the Philosopher's Stone"}'``).
The parser therefore reads the object field by field and decodes a single-quoted value as the
JSON text between the quotes. Arguments given as a JSON object or a JSON string are accepted too.

Parallel calls are several ``<functioncall>`` segments, one per line. Text outside the segments
is prose (``content``); the dataset's ``<|endoftext|>`` end-of-turn marker is dropped from it.
"""

from __future__ import annotations

import re
from typing import Any

from tooltune.formats._calls import DECODER, Malformed, call_from_object, check_renderable, decode_error, dumps
from tooltune.formats.base import ParseResult, register
from tooltune.tools.call import ToolCall

NAME = "glaive"
OPEN = "<functioncall>"
END_OF_TEXT = "<|endoftext|>"
_WHITESPACE = re.compile(r"\s*")


def render(calls: list[ToolCall]) -> str:
    """One ``<functioncall> {"name": ..., "arguments": '<json>'}`` line per call."""
    check_renderable(calls, NAME)
    lines = []
    for i, call in enumerate(calls):
        where = f"{NAME}: call {i} ({call.name})"
        lines.append(f"{OPEN} {{\"name\": {dumps(call.name, where)}, \"arguments\": '{dumps(call.arguments, where)}'}}")
    return "\n".join(lines)


def parse(text: str) -> ParseResult:
    """Calls from every ``<functioncall>`` segment; text outside them becomes ``content``.

    A segment whose object is truncated, whose fields are not ``"key": value`` pairs, or whose
    arguments are not a JSON object makes the whole result malformed, naming the segment."""
    start = text.find(OPEN)
    if start == -1:
        return ParseResult.no_call(_drop_end_of_text(text))
    try:
        calls, content = _read_segments(text, start)
    except Malformed as e:
        return ParseResult.malformed(str(e), content=_drop_end_of_text(text[:start]))
    return ParseResult.ok(calls, content)


def _read_segments(text: str, start: int) -> tuple[list[ToolCall], str]:
    calls: list[ToolCall] = []
    prose = [text[:start]]
    while start != -1:
        where = f"<functioncall> {len(calls)}"
        obj, pos = _read_object(text, _skip(text, start + len(OPEN)), where)
        calls.append(call_from_object(obj, where, arguments_keys=("arguments",)))
        start = text.find(OPEN, pos)
        prose.append(text[pos:] if start == -1 else text[pos:start])
    return calls, _drop_end_of_text("".join(prose))


def _read_object(text: str, pos: int, where: str) -> tuple[dict[str, Any], int]:
    """A ``{"key": value, ...}`` object at ``pos`` whose values may be ``'<json>'``."""
    pos = _expect(text, pos, "{", where, after=OPEN)
    obj: dict[str, Any] = {}
    if text.startswith("}", pos):
        return obj, pos + 1
    while True:
        key, pos = _decode(text, pos, where, "a field name")
        if not isinstance(key, str):
            raise Malformed(f"{where}: field names must be double-quoted strings, got {key!r}")
        pos = _expect(text, pos, ":", where, after=repr(key))
        if text.startswith("'", pos):
            obj[key], pos = _decode(text, pos + 1, where, f"the single-quoted JSON of {key!r}")
            pos = _expect(text, pos, "'", where, after=f"the JSON of {key!r}")
        else:
            obj[key], pos = _decode(text, pos, where, f"the value of {key!r}")
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
        elif text.startswith("}", pos):
            return obj, pos + 1
        else:
            raise Malformed(f"{where}: expected ',' or '}}' after the value of {key!r}, found {_found(text, pos)}")


def _decode(text: str, pos: int, where: str, what: str) -> tuple[Any, int]:
    """The JSON value at ``pos`` and the index after it and any whitespace."""
    try:
        value, end = DECODER.raw_decode(text, pos)
    except (ValueError, RecursionError) as e:
        raise Malformed(f"{where}: {what} is not valid JSON: {decode_error(e)}") from None
    return value, _skip(text, end)


def _expect(text: str, pos: int, char: str, where: str, *, after: str) -> int:
    if not text.startswith(char, pos):
        raise Malformed(f"{where}: expected {char!r} after {after}, found {_found(text, pos)}")
    return _skip(text, pos + 1)


def _found(text: str, pos: int) -> str:
    return repr(text[pos : pos + 20]) if pos < len(text) else "the end of the text (generation truncated?)"


def _skip(text: str, pos: int) -> int:
    return _WHITESPACE.match(text, pos).end()


def _drop_end_of_text(text: str) -> str:
    return text.replace(END_OF_TEXT, "")


register(NAME, render=render, parse=parse, description="Glaive v2: <functioncall> {\"name\", \"arguments\": '<json>'}")
