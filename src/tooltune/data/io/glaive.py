"""glaive-function-calling-v2: a ``system`` text listing the functions and a ``chat`` text.

    system: SYSTEM: You are a helpful assistant with access to the following functions. Use them if required -
            {
                "name": "get_weather", ...
            }
    chat:   USER: Weather in Paris?


            ASSISTANT: <functioncall> {"name": "get_weather", "arguments": '{"city": "Paris"}'} <|endoftext|>


            FUNCTION RESPONSE: {"temp": 21}


            ASSISTANT: It is 21 °C. <|endoftext|>

Functions are pretty-printed JSON objects one after another; assistant turns are read and
written by the ``glaive`` tool-call format. The original is one JSON array file; it is read as
is, and written as JSONL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tooltune.data.examples import Example, Quality
from tooltune.data.io._records import (
    ExportResult,
    ImportOptions,
    RecordContext,
    RecordError,
    Unexportable,
    build_example,
    calls_of,
    conversation,
    export_records,
    import_records,
    parse_calls_text,
    tool_dict,
)
from tooltune.data.quarantine import QuarantineRecord
from tooltune.formats import get_format
from tooltune.formats.glaive import END_OF_TEXT
from tooltune.tools.catalog import Tool, ToolCatalog

NAME = "glaive"
SYSTEM_PREFIX = "SYSTEM:"
LEAD_IN = "You are a helpful assistant with access to the following functions. Use them if required -"
TURN_SEPARATOR = "\n\n\n"
_TURN = re.compile(r"^(USER|ASSISTANT|FUNCTION RESPONSE):[ \t]?", re.MULTILINE)
_ROLES = {"USER": "user", "ASSISTANT": "assistant", "FUNCTION RESPONSE": "tool"}
_MARKERS = {role: marker for marker, role in _ROLES.items()}


def read(
    path: str | Path, *, quality: Quality | str = Quality.MEDIUM, dataset: str | None = None
) -> Iterator[Example | QuarantineRecord]:
    """Examples from a glaive-v2 file (JSON array or JSONL); bad records come out as quarantine records."""
    return import_records(path, NAME, _example, ImportOptions.of(quality, dataset))


def _example(record: Any, ctx: RecordContext) -> Example:
    if not isinstance(record, dict) or not isinstance(record.get("chat"), str):
        raise RecordError('expected an object with "system" and "chat" texts')
    system, tools = system_and_tools(record.get("system") or "")
    messages = [{"role": "system", "content": system}] if system else []
    return build_example(messages + chat_messages(record["chat"]), tools, ctx)


def system_and_tools(text: str) -> tuple[str, list[Any]]:
    """The system prompt and the function definitions of a glaive ``system`` text.

    Every word that is neither the ``SYSTEM:`` tag, the lead-in sentence nor a function stays in
    the system prompt; text without the lead-in is all system prompt."""
    text = text.strip().removeprefix(SYSTEM_PREFIX).strip()
    before, found, after = text.partition(LEAD_IN)
    if not found:
        return text, []
    decoder = json.JSONDecoder()
    tools: list[Any] = []
    pos = _skip(after, 0)
    while after.startswith("{", pos):
        try:
            tool, end = decoder.raw_decode(after, pos)
        except json.JSONDecodeError as e:
            raise RecordError(f"system: function {len(tools)} is not valid JSON ({e.msg})") from None
        tools.append(tool)
        pos = _skip(after, end)
    rest = after[pos:].strip()
    return "\n\n".join(part for part in (before.strip(), rest) if part), tools


def _skip(text: str, pos: int) -> int:
    """Past whitespace and the commas some rows put between functions."""
    while pos < len(text) and (text[pos].isspace() or text[pos] == ","):
        pos += 1
    return pos


def chat_messages(chat: str) -> list[dict[str, Any]]:
    """The turns of a glaive ``chat`` text as messages; assistant turns parsed as glaive calls."""
    marks = list(_TURN.finditer(chat))
    if not marks:
        raise RecordError("chat: no USER:/ASSISTANT: turns")
    messages = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(chat)
        body = chat[mark.end():end]
        role = _ROLES[mark.group(1)]
        if role == "assistant":
            messages.append(parse_calls_text(body, NAME, f"chat turn {i} (ASSISTANT)"))
        else:
            messages.append({"role": role, "content": body.replace(END_OF_TEXT, "").strip()})
    return messages


def write(examples: Iterable[Example], path: str | Path, catalog: ToolCatalog | None = None) -> ExportResult:
    """One ``{"system", "chat"}`` record per example; tool schemas from ``inline_tools`` or ``catalog``."""
    return export_records(examples, path, lambda example: _record(*conversation(example, catalog)))


def _record(messages: list[dict[str, Any]], tools: list[Tool]) -> dict[str, str]:
    system = ""
    if messages and messages[0].get("role") == "system":
        system, messages = messages[0].get("content") or "", messages[1:]
    chat = "".join(_turn(m, i) + TURN_SEPARATOR for i, m in enumerate(messages))
    return {"system": system_text(system, tools), "chat": chat}


def system_text(system: str, tools: list[Tool]) -> str:
    """The glaive ``system`` field: the prompt, then the lead-in and each function pretty-printed."""
    parts = [system] if system else []
    if tools:
        parts.append(LEAD_IN + "\n" + "\n\n".join(json.dumps(tool_dict(t), indent=4, ensure_ascii=False) for t in tools))
    return f"{SYSTEM_PREFIX} " + "\n\n".join(parts) + "\n" if parts else ""


def _turn(message: dict[str, Any], index: int) -> str:
    role = message.get("role")
    if role not in _MARKERS:
        raise Unexportable(f"messages[{index}]: role {role!r} has no glaive turn (only a leading system message is kept).")
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = json.dumps(content, ensure_ascii=False)
    if role != "assistant":
        return f"{_MARKERS[role]}: {content}"
    calls = calls_of(message)
    if calls:
        rendered = get_format(NAME).render(calls)
        content = f"{content}\n{rendered}" if content else rendered
    return f"ASSISTANT: {content} {END_OF_TEXT}"
