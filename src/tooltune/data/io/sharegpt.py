"""ShareGPT with tools, as LLaMA-Factory reads it (``formatting: sharegpt``, default tags).

    {"conversations": [{"from": "human", "value": "Weather in Paris?"},
                       {"from": "function_call", "value": "{\\"name\\": \\"get_weather\\", \\"arguments\\": {\\"city\\": \\"Paris\\"}}"},
                       {"from": "observation", "value": "{\\"temp\\": 21}"},
                       {"from": "gpt", "value": "It is 21 °C."}],
     "system": "You are a weather bot.",
     "tools": "[{\\"name\\": \\"get_weather\\", \\"description\\": \\"...\\", \\"parameters\\": {...}}]"}

A ``function_call`` value is one ``{"name", "arguments"}`` object, or a list of them for
parallel calls; ``tools`` is a JSON string (a list is accepted on import).
"""

from __future__ import annotations

import json
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
    decode_tools,
    encode_tools,
    parse_json_calls,
)
from tooltune.data.quarantine import QuarantineRecord
from tooltune.formats.chat import assistant_message
from tooltune.tools.catalog import Tool, ToolCatalog

NAME = "sharegpt"
ROLES = {"human": "user", "gpt": "assistant", "observation": "tool", "system": "system"}
FUNCTION_CALL = "function_call"


def read(
    path: str | Path, *, quality: Quality | str = Quality.MEDIUM, dataset: str | None = None
) -> Iterator[Example | QuarantineRecord]:
    """Examples from a ShareGPT file; bad lines come out as quarantine records."""
    return import_records(path, NAME, _example, ImportOptions.of(quality, dataset))


def _example(record: Any, ctx: RecordContext) -> Example:
    if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
        raise RecordError('expected an object with a "conversations" list of {"from", "value"} turns')
    messages = [{"role": "system", "content": record["system"]}] if record.get("system") else []
    messages += [_message(turn, f"conversations[{i}]") for i, turn in enumerate(record["conversations"])]
    return build_example(messages, decode_tools(record.get("tools")), ctx)


def _message(turn: Any, where: str) -> dict[str, Any]:
    if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
        raise RecordError(f'{where}: expected a {{"from", "value"}} turn with a text value')
    tag = turn.get("from")
    if tag == FUNCTION_CALL:
        return assistant_message(parse_json_calls(turn["value"], where))
    if tag not in ROLES:
        raise RecordError(f"{where}: unknown 'from' {tag!r}; expected one of {', '.join([*ROLES, FUNCTION_CALL])}")
    return {"role": ROLES[tag], "content": turn["value"]}


def write(examples: Iterable[Example], path: str | Path, catalog: ToolCatalog | None = None) -> ExportResult:
    """One ShareGPT record per example; tool schemas come from ``inline_tools`` or ``catalog``."""
    return export_records(examples, path, lambda example: _record(*conversation(example, catalog)))


def _record(messages: list[dict[str, Any]], tools: list[Tool]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if messages and messages[0].get("role") == "system":
        record["system"] = messages[0].get("content") or ""
        messages = messages[1:]
    turns: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        turn = _turn(message, i)
        if turn["from"] == "observation" and turns and turns[-1]["from"] == "observation":
            # LLaMA-Factory wants strictly alternating turns: parallel results share one observation.
            turns[-1]["value"] += "\n" + turn["value"]
        else:
            turns.append(turn)
    record["conversations"] = turns
    record["tools"] = encode_tools(tools)
    return record


def _turn(message: dict[str, Any], index: int) -> dict[str, str]:
    role = message.get("role")
    if role == "assistant" and message.get("tool_calls"):
        calls = [c.to_dict() for c in calls_of(message)]
        return {"from": FUNCTION_CALL, "value": json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)}
    tag = {"user": "human", "assistant": "gpt", "tool": "observation"}.get(role or "")
    if tag is None:
        raise Unexportable(f"messages[{index}]: role {role!r} has no ShareGPT tag (only a leading system message is kept).")
    content = message.get("content")
    return {"from": tag, "value": content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)}
