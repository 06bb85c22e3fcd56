"""OpenAI chat fine-tuning JSONL: one conversation per line.

    {"messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]}],
     "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {...}}}],
     "parallel_tool_calls": true}

Assistant calls carry ``arguments`` as a JSON *string*; they are read and written by the
``openai`` tool-call format (:func:`tooltune.formats.openai.from_message` / ``to_message``).

:func:`line_problem` checks one line the way a fine-tuning provider validates an uploaded file,
and :func:`check_file` a whole file, naming each bad line; the ``cloud`` training backend runs
it before it uploads anything (a provider reports a bad line only after the job was queued).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
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
from tooltune.errors import DataError
from tooltune.formats import openai as openai_calls
from tooltune.formats.chat import assistant_message
from tooltune.safeload import loads_json, read_text
from tooltune.tools.catalog import Tool, ToolCatalog

NAME = "openai"
ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_REPORTED_LINES = 5


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


# ---------------------------------------------------------------- the provider's line check
# Written by hand: OpenAI publishes the format but no validator for it (its cookbook has a
# notebook of the same checks), and the SDK sends files unchecked.


def check_file(path: str | Path, *, origins: Sequence[str] | None = None) -> None:
    """Raise :class:`DataError` naming ``path:line`` and the problem of every line (up to
    :data:`MAX_REPORTED_LINES`) that a fine-tuning provider would reject. ``origins``: what
    each line was made from (``example 0edbf4c0 of data/train.jsonl``), named with its problem."""
    problems = line_problems(read_text(path).splitlines())
    if not problems:
        return
    shown = "\n".join(f"{path}:{n}: {problem}" + (f" ({origins[n - 1]})" if origins and n <= len(origins) else "")
                      for n, problem in problems[:MAX_REPORTED_LINES])
    more = f"\n... and {len(problems) - MAX_REPORTED_LINES} more" if len(problems) > MAX_REPORTED_LINES else ""
    raise DataError(f"{shown}{more}\n{len(problems)} line(s) of {path} would be rejected by a fine-tuning provider "
                    "(OpenAI's chat format); fix or remove those examples and run again.")


def line_problems(lines: Iterable[str]) -> list[tuple[int, str]]:
    """``(line number, problem)`` of every non-blank line :func:`line_problem` rejects, numbered from 1."""
    found = []
    for n, line in enumerate(lines, 1):
        problem = line_problem(line) if line.strip() else None
        if problem:
            found.append((n, problem))
    return found


def line_problem(line: str) -> str | None:
    """The first problem a provider would report for one JSONL line of a chat fine-tuning file."""
    try:
        record = loads_json(line)
    except json.JSONDecodeError as e:
        return f"not valid JSON ({e.msg})"
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list) or not record["messages"]:
        return 'expected an object with a non-empty "messages" list'
    names: set[str] | None = None
    if "tools" in record:
        names, problem = _tool_names(record["tools"])
        if problem:
            return problem
    call_ids: set[str] = set()
    assistant_turns = 0
    for i, message in enumerate(record["messages"]):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"{where}.role: expected one of {', '.join(ROLES)}, got {_shown(message)}"
        role, content = message["role"], message.get("content")
        if role == "assistant":
            assistant_turns += 1
            calls = message.get("tool_calls")
            if calls is not None:
                problem = _calls_problem(calls, f"{where}.tool_calls", names, call_ids)
                if problem:
                    return problem
            if not isinstance(content, str) and not calls:
                return f"{where}: an assistant message needs text content or tool_calls"
        elif role == "tool":
            if message.get("tool_call_id") not in call_ids:
                return f"{where}.tool_call_id: {message.get('tool_call_id')!r} answers no earlier tool call"
            if not isinstance(content, str):
                return f"{where}.content: a tool message's content must be a string"
        elif not isinstance(content, str):
            return f"{where}.content: a {role} message's content must be a string"
    if not assistant_turns:
        return "no assistant message to train on"
    return None


def _tool_names(tools: Any) -> tuple[set[str], str | None]:
    if not isinstance(tools, list):
        return set(), "tools: expected a list"
    names = set()
    for j, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            return set(), f'tools[{j}]: expected {{"type": "function", "function": {{"name": ...}}}}'
        if "parameters" in fn and not isinstance(fn["parameters"], dict):
            return set(), f"tools[{j}].function.parameters: expected a JSON Schema object"
        names.add(fn["name"])
    return names, None


def _calls_problem(calls: Any, where: str, names: set[str] | None, call_ids: set[str]) -> str | None:
    if not isinstance(calls, list) or not calls:
        return f"{where}: expected a non-empty list"
    for k, call in enumerate(calls):
        at = f"{where}[{k}]"
        if not isinstance(call, dict) or call.get("type") != "function" or not isinstance(call.get("id"), str):
            return f'{at}: expected {{"id": "...", "type": "function", "function": {{...}}}}'
        fn = call.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            return f"{at}.function.name: expected a string"
        if not isinstance(fn.get("arguments"), str):
            return f"{at}.function.arguments: must be a string holding JSON, got {_shown(fn.get('arguments'))}"
        try:
            args = loads_json(fn["arguments"])
        except json.JSONDecodeError as e:
            return f"{at}.function.arguments: not valid JSON ({e.msg})"
        if not isinstance(args, dict):
            return f"{at}.function.arguments: must encode a JSON object"
        if names is not None and fn["name"] not in names:
            return f"{at}.function.name: {fn['name']!r} is not in this line's tools"
        call_ids.add(call["id"])
    return None


def _shown(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    kind = names.get(type(value), type(value).__name__)
    return kind if isinstance(value, (dict, list)) else f"{kind} {json.dumps(value)}" if value is not None else kind
