"""OpenAI chat fine-tuning JSONL: one conversation per line.

    {"messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]}],
     "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {...}}}],
     "parallel_tool_calls": true}

Assistant calls carry ``arguments`` as a JSON *string*; they are read and written by the
``openai`` tool-call format (:func:`tooltune.formats.openai.from_message` / ``to_message``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tooltune.data.examples import Example, Quality
from tooltune.data.io._records import (
    ExportResult,
    ImportOptions,
    RecordContext,
    RecordError,
    build_example,
    calls_of,
    conversation,
    export_records,
    import_records,
)
from tooltune.data.quarantine import QuarantineRecord
from tooltune.formats import openai as openai_calls
from tooltune.formats.chat import assistant_message
from tooltune.tools.catalog import Tool, ToolCatalog

NAME = "openai"


def read(
    path: str | Path, *, quality: Quality | str = Quality.MEDIUM, dataset: str | None = None
) -> Iterator[Example | QuarantineRecord]:
    """Examples from an OpenAI fine-tuning file; bad lines come out as quarantine records."""
    return import_records(path, NAME, _example, ImportOptions.of(quality, dataset))


def _example(record: Any, ctx: RecordContext) -> Example:
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        raise RecordError('expected an object with a "messages" list')
    messages = [_message(m, f"messages[{i}]") for i, m in enumerate(record["messages"])]
    meta = {"parallel_tool_calls": record["parallel_tool_calls"]} if "parallel_tool_calls" in record else None
    return build_example(messages, record.get("tools") or [], ctx, meta=meta)


def _message(message: Any, where: str) -> dict[str, Any]:
    """The message with its tool calls' arguments decoded to dicts (tooltune's message shape)."""
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise RecordError(f"{where}: expected a message object with a role")
    if message["role"] != "assistant" or not message.get("tool_calls"):
        return message
    result = openai_calls.from_message(message)
    if result.error is not None:
        raise RecordError(f"{where}: {result.error}")
    rest = {k: v for k, v in message.items() if k not in ("content", "tool_calls")}
    return {**assistant_message(result.calls, message.get("content") or ""), **rest}


def write(examples: Iterable[Example], path: str | Path, catalog: ToolCatalog | None = None) -> ExportResult:
    """One ``{"messages", "tools"}`` line per example; tool schemas come from ``inline_tools`` or ``catalog``."""
    return export_records(examples, path, lambda example: _record(*conversation(example, catalog)))


def _record(messages: list[dict[str, Any]], tools: list[Tool]) -> dict[str, Any]:
    return {"messages": [_openai_message(m) for m in messages], "tools": [t.to_openai() for t in tools]}


def _openai_message(message: dict[str, Any]) -> dict[str, Any]:
    if message.get("role") != "assistant" or not message.get("tool_calls"):
        return message
    rest = {k: v for k, v in message.items() if k not in ("content", "tool_calls")}
    return {**openai_calls.to_message(calls_of(message), message.get("content") or None), **rest}
