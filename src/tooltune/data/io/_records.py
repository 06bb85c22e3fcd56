"""What the format modules share: records located by file and line, quarantine records, and the
two conversions every conversational format goes through.

Import: a format turns its record into OpenAI-shaped messages (tooltune's shape: assistant
``tool_calls`` carry ``arguments`` as a dict) plus the tool definitions verbatim, and
:func:`build_example` makes the imported :class:`Example`. Export: :func:`conversation` gives an
example's messages with the turn to predict appended, and the offered tools; the format writes
those in its own shape.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltune.data.examples import Behavior, Example, ExpectedCall, Provenance, Quality, Source, target_messages
from tooltune.data.io.dialects import to_json_schema_tool
from tooltune.data.quarantine import QuarantineRecord
from tooltune.errors import DataError, TemplateError, TooltuneError
from tooltune.formats import get_format
from tooltune.formats.chat import assistant_message, tool_call_from_message
from tooltune.safeload import loads_json, raw_decode
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool, ToolCatalog


SHAPE_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError, TooltuneError)
"""What converting a record of unexpected shape can raise; each quarantines that record alone."""


class RecordError(Exception):
    """Private control flow: a record that cannot become an example; ``reasons`` go to quarantine."""

    def __init__(self, *reasons: str):
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


class Unexportable(Exception):
    """Private control flow: an example the target format cannot express; the message says why."""


def quarantine_record(source: str, reasons: list[str], record: Any) -> QuarantineRecord:
    return QuarantineRecord(source=source, reason=list(reasons), record=record)


@dataclass
class ExportResult:
    written: int = 0
    skipped: list[QuarantineRecord] = field(default_factory=list)
    """Examples the format cannot express (``source`` is ``example <id>``), with the reason."""


@dataclass(frozen=True)
class ImportOptions:
    quality: Quality = Quality.MEDIUM
    dataset: str | None = None
    """Data set name: becomes ``Example.service`` and the first part of ``provenance.origin``."""

    @classmethod
    def of(cls, quality: Quality | str, dataset: str | None) -> ImportOptions:
        try:
            return cls(Quality(quality), dataset)
        except ValueError:
            raise DataError(f"quality {quality!r} is not one of {', '.join(q.value for q in Quality)}.") from None


@dataclass(frozen=True)
class RecordContext:
    """Where a record came from: the origin stored in provenance and the import options."""

    origin: str
    options: ImportOptions


def json_records(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(line, value, error)`` for each record of a JSONL file or of a JSON array file.

    A JSONL line that is not JSON gives ``(line, text, reason)`` so it can be quarantined and the
    rest read. A JSON array (the shape Hugging Face data sets often ship) cannot be resynchronised
    after a syntax error, so that raises DataError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the file: {e}.") from e
    if text.lstrip().startswith("["):
        yield from _array_records(path, text)
        return
    # split("\n"), not splitlines(): JSON strings may hold U+2028, which splitlines breaks on.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield lineno, loads_json(line), None
        except json.JSONDecodeError as e:
            yield lineno, line, f"not valid JSON ({e.msg}, column {e.colno})"


def _array_records(path: Path, text: str) -> Iterator[tuple[int, Any, None]]:
    lines = _LineCounter(text)
    pos = _skip_space(text, text.index("[") + 1)
    while not text.startswith("]", pos):
        try:
            value, end = raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg}); fix the file or convert it to JSONL.") from e
        yield lines.at(pos), value, None
        pos = _skip_space(text, end)
        if text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
        elif not text.startswith("]", pos):
            raise DataError(f"{path}:{lines.at(pos)}: expected ',' or ']' between the items of the JSON array.")
    rest = _skip_space(text, pos + 1)
    if rest < len(text):  # '[]' on the first line of a JSONL file would otherwise hide every line after it
        raise DataError(f"{path}:{lines.at(rest)}: more text after the JSON array that starts the file; a JSON array "
                        "file holds one array, a JSONL file one JSON object per line.")


class _LineCounter:
    """Line numbers of increasing offsets, counting each newline once (large files stay linear)."""

    def __init__(self, text: str):
        self.text, self.pos, self.line = text, 0, 1

    def at(self, pos: int) -> int:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def import_records(
    path: str | Path, fmt: str, to_example: Callable[[Any, RecordContext], Example], options: ImportOptions
) -> Iterator[Example | QuarantineRecord]:
    """Each record of ``path`` as an Example, or as a quarantine record saying file:line and why."""
    path = Path(path)
    for line, value, error in json_records(path):
        source = f"{path}:{line}"
        if error is not None:
            yield quarantine_record(source, [error], value)
            continue
        try:
            example = to_example(value, RecordContext(f"{options.dataset or fmt}:{path.name}:{line}", options))
        except RecordError as e:
            yield quarantine_record(source, e.reasons, value)
        except SHAPE_ERRORS as e:
            # A field of a type the format never has (a list where text belongs, say) trips the
            # converter itself: still this record's problem, quarantined, and the next one is read.
            yield quarantine_record(source, [f"a field has a shape the {fmt} format does not have "
                                             f"({type(e).__name__}: {e})"], value)
        else:
            yield example


def tool_names(tools: Any, dialect: str | None = None) -> list[str]:
    """Names of the offered tool definitions, after checking each is a valid tool (translated
    from ``dialect`` first) and that no name appears twice."""
    if not isinstance(tools, list):
        raise RecordError(f"tools must be a list of tool definitions, got {type(tools).__name__}")
    names: list[str] = []
    for i, item in enumerate(tools):
        try:
            name = _checked_tool_name(json.dumps(item, sort_keys=True), dialect)
        except (TooltuneError, TypeError, ValueError) as e:
            raise RecordError(f"tools[{i}]: {e}") from None
        if name in names:
            raise RecordError(f"tools[{i}]: the name {name!r} is offered twice, so a call to it is ambiguous")
        names.append(name)
    return names


@functools.lru_cache(maxsize=4096)
def _checked_tool_name(definition: str, dialect: str | None) -> str:
    """The name of a valid tool definition (JSON text). Cached because public sets repeat the
    same tools across thousands of records and the JSON Schema meta-check dominates import time."""
    item = loads_json(definition)
    return Tool.from_dict(to_json_schema_tool(item, dialect) if dialect else item, where="definition").name


def build_example(
    messages: list[dict[str, Any]],
    tools: list[Any],
    ctx: RecordContext,
    *,
    meta: dict[str, Any] | None = None,
    dialect: str | None = None,
) -> Example:
    """The imported example for a conversation: the last assistant turn that calls tools is the
    one to predict (later turns are dropped); without one, the last assistant reply is a no_call
    answer. ``tools`` are kept verbatim as ``inline_tools``."""
    names = tool_names(tools, dialect)
    target = _target_index(messages)
    context, reply = messages[:target], messages[target]
    if not any(m.get("role") == "user" for m in context):
        raise RecordError(f"messages[{target}]: the assistant turn has no user turn before it to answer")
    calls = calls_of(reply)
    for call in calls:
        if call.name not in names:
            raise RecordError(
                f"messages[{target}]: calls {call.name!r}, which is not among the offered tools "
                f"({', '.join(names) or 'none'})"
            )
    try:
        return Example(
            service=ctx.options.dataset,
            messages=context,
            tools=names,
            inline_tools=tools,
            behavior=Behavior.CALLS if calls else Behavior.NO_CALL,
            calls=[ExpectedCall(name=c.name, arguments=c.arguments) for c in calls],
            answer=None if calls else (reply.get("content") or None),
            provenance=Provenance(source=Source.IMPORTED, quality=ctx.options.quality, origin=ctx.origin),
            meta={**(meta or {}), **({"schema_dialect": dialect} if dialect else {})},
        )
    except ValueError as e:  # pydantic: a message or value of the wrong shape
        raise RecordError(f"not a valid example: {e}") from None


def _target_index(messages: list[dict[str, Any]]) -> int:
    assistant = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if not assistant:
        raise RecordError("no assistant turn: there is nothing for the model to learn to say")
    calling = [i for i in assistant if messages[i].get("tool_calls")]
    return calling[-1] if calling else assistant[-1]


def calls_of(message: dict[str, Any]) -> list[ToolCall]:
    """The calls of a tooltune-shaped assistant message (JSON-string arguments are decoded too)."""
    calls = []
    for i, item in enumerate(message.get("tool_calls") or []):
        try:
            calls.append(tool_call_from_message(item if isinstance(item, dict) else {}))
        except TemplateError as e:
            raise DataError(f"tool_calls[{i}]: {e}") from None
    return calls


def parse_json_calls(value: Any, where: str) -> list[ToolCall]:
    """Calls from ``{"name", "arguments"}`` objects (one, or a list), as JSON text or decoded.

    The shape is checked by the ``json`` tool-call format (as its ``{"tool_calls": [...]}``
    form), so the rules are the ones evaluation applies; a bad call raises RecordError naming ``where``."""
    if isinstance(value, str):
        try:
            value = loads_json(value)
        except json.JSONDecodeError as e:
            raise RecordError(f"{where}: not valid JSON ({e.msg}, column {e.colno})") from None
    items = value if isinstance(value, list) else [value]
    result = get_format("json").parse(json.dumps({"tool_calls": items}, ensure_ascii=False))
    if not result.has_calls:
        raise RecordError(f"{where}: {result.error or 'expected a {name, arguments} object or a list of them'}")
    return result.calls


def parse_calls_text(text: Any, fmt: str, where: str) -> dict[str, Any]:
    """The assistant message for model-written ``text`` in tool-call format ``fmt``."""
    if not isinstance(text, str):
        raise RecordError(f"{where}: expected text, got {type(text).__name__}")
    result = get_format(fmt).parse(text)
    if result.error is not None:
        raise RecordError(f"{where}: {fmt} tool call is malformed: {result.error}")
    if result.calls:
        return assistant_message(result.calls, result.content)
    return {"role": "assistant", "content": result.content}


def tool_dict(tool: Tool) -> dict[str, Any]:
    """The ``{"name", "description", "parameters"}`` definition that most data sets list."""
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters}


def decode_tools(tools: Any) -> list[Any]:
    """The tool list of a ``tools`` field: JSON text (LLaMA-Factory's form), a list, or absent."""
    if tools is None or tools == "":
        return []
    if isinstance(tools, str):
        try:
            tools = loads_json(tools)
        except json.JSONDecodeError as e:
            raise RecordError(f"tools: not valid JSON ({e.msg}, column {e.colno})") from None
    if not isinstance(tools, list):
        raise RecordError(f"tools: expected a list of tool definitions, got {type(tools).__name__}")
    return tools


def encode_tools(tools: list[Tool]) -> str:
    return json.dumps([tool_dict(t) for t in tools], ensure_ascii=False)


def conversation(example: Example, catalog: ToolCatalog | None) -> tuple[list[dict[str, Any]], list[Tool]]:
    """The example's messages with the assistant turn to predict appended, and the offered tools.

    Alternatives and optional markers of expected calls are not part of any conversation; only
    the canonical ``arguments`` are written."""
    if example.behavior is Behavior.SEQUENCE:
        if len(example.step_results) < len(example.calls) - 1:
            raise Unexportable(
                "sequence example without recorded step results: later calls reference earlier results "
                "({prev...}) that only execution fills in. Generate it with execution on (synthetic data does)."
            )
        # Executed sequences become call → tool result → call … with references resolved.
        messages = [{**m, "content": m["content"] if isinstance(m.get("content"), str) else json.dumps(m["content"], ensure_ascii=False)}
                    if m.get("role") == "tool" else m for m in target_messages(example)]
        while messages[-1].get("role") == "tool":  # the last call is the final target: end on it
            messages.pop()
        return messages, example.offered_tools(catalog)
    if example.behavior is Behavior.CALLS:
        reply = assistant_message([c.to_call() for c in example.calls])
    elif example.behavior is Behavior.CLARIFY and example.clarify is not None:
        reply = {"role": "assistant", "content": example.clarify.question}
    elif example.answer:
        reply = {"role": "assistant", "content": example.answer}
    else:
        raise Unexportable(
            f"{example.behavior.value} example has no reply text to train on; set `answer` (or `clarify.question`)."
        )
    return [*example.messages, reply], example.offered_tools(catalog)


def export_records(
    examples: Iterable[Example], path: str | Path, to_record: Callable[[Example], dict[str, Any]]
) -> ExportResult:
    """Write one JSON line per example; examples the format cannot express are skipped with why."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = ExportResult()
    with path.open("w", encoding="utf-8") as f:
        for example in examples:
            try:
                record = to_record(example)
            except (Unexportable, TooltuneError) as e:
                source = f"example {example.id}" + (f" ({example.provenance.origin})" if example.provenance.origin else "")
                record = example.model_dump(mode="json", exclude_none=True)
                result.skipped.append(quarantine_record(source, [str(e)], record))
                continue
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            result.written += 1
    return result
