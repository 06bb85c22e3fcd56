"""Alpaca: ``instruction``/``input``/``output``, the output being the rendered call.

    {"instruction": "Weather in Paris?", "input": "",
     "output": "<tool_call>\\n{\\"name\\": \\"get_weather\\", \\"arguments\\": {\\"city\\": \\"Paris\\"}}\\n</tool_call>",
     "system": "You are a weather bot.",
     "tools": "[{\\"name\\": \\"get_weather\\", \\"description\\": \\"...\\", \\"parameters\\": {...}}]",
     "history": [["Hi", "Hello! How can I help?"]]}

``system``, ``tools`` (JSON text, as LLaMA-Factory's alpaca columns) and ``history`` (earlier
user/assistant pairs) are optional. The output is read and written with one tool-call format,
``call_format`` (default ``hermes``). Rows without ``tools`` whose system prompt lists functions
the glaive way (as in glaive-derived alpaca sets) get their tools from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tooltune.data.examples import Example, Quality
from tooltune.data.io import glaive
from tooltune.data.io._records import (
    ExportResult,
    ImportOptions,
    RecordContext,
    RecordError,
    Unexportable,
    build_example,
    calls_of,
    conversation,
    decode_tools,
    encode_tools,
    export_records,
    import_records,
    parse_calls_text,
)
from tooltune.data.quarantine import QuarantineRecord
from tooltune.formats import get_format
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool, ToolCatalog

NAME = "alpaca"
DEFAULT_CALL_FORMAT = "hermes"


def read(
    path: str | Path,
    *,
    quality: Quality | str = Quality.MEDIUM,
    dataset: str | None = None,
    call_format: str = DEFAULT_CALL_FORMAT,
) -> Iterator[Example | QuarantineRecord]:
    """Examples from an alpaca file whose outputs are in ``call_format``; bad lines are quarantined."""
    get_format(call_format)  # fail on an unknown format name before reading anything
    options = ImportOptions.of(quality, dataset)
    return import_records(path, NAME, lambda record, ctx: _example(record, ctx, call_format), options)


def _example(record: Any, ctx: RecordContext, call_format: str) -> Example:
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("instruction", "output")):
        raise RecordError('expected an object with "instruction" and "output" texts')
    system, tools = record.get("system") or "", decode_tools(record.get("tools"))
    if not tools and glaive.LEAD_IN in system:
        system, tools = glaive.system_and_tools(system)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for i, pair in enumerate(record.get("history") or []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise RecordError(f"history[{i}]: expected a [user text, assistant text] pair")
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    request = "\n".join(part for part in (record["instruction"], record.get("input") or "") if part)
    messages.append({"role": "user", "content": request})
    messages.append(parse_calls_text(record["output"], call_format, "output"))
    return build_example(messages, tools, ctx)


def write(
    examples: Iterable[Example],
    path: str | Path,
    catalog: ToolCatalog | None = None,
    *,
    call_format: str = DEFAULT_CALL_FORMAT,
) -> ExportResult:
    """One alpaca record per example, calls rendered in ``call_format``; examples whose context
    holds tool calls or results (not plain user/assistant pairs) are skipped with the reason."""
    fmt = get_format(call_format)
    return export_records(examples, path, lambda example: _record(*conversation(example, catalog), fmt.render))


def _record(messages: list[dict[str, Any]], tools: list[Tool], render: Callable[[list[ToolCall]], str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if messages and messages[0].get("role") == "system":
        record["system"], messages = messages[0].get("content") or "", messages[1:]
    history, request, reply = messages[:-2], (messages[-2] if len(messages) > 1 else {}), messages[-1]
    pairs = list(zip(history[::2], history[1::2]))
    plain = len(history) % 2 == 0 and request.get("role") == "user" and all(
        u.get("role") == "user" and a.get("role") == "assistant" and not a.get("tool_calls") for u, a in pairs
    )
    if not plain:
        raise Unexportable(
            "alpaca holds one request plus earlier plain user/assistant text pairs; this conversation has "
            "tool calls or results before the reply. Export it as sharegpt or openai."
        )
    calls = calls_of(reply)
    output = render(calls) if calls else reply.get("content") or ""
    record.update({"instruction": request.get("content") or "", "input": "", "output": output, "tools": encode_tools(tools)})
    if pairs:
        record["history"] = [[u.get("content") or "", a.get("content") or ""] for u, a in pairs]
    return record
