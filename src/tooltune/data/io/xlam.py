"""APIGen / xLAM (Salesforce xlam-function-calling-60k): one query, its tools and its answers.

    {"id": 0, "query": "Where can I find live giveaways for beta access and games?",
     "tools": "[{\\"name\\": \\"live_giveaways_by_type\\", \\"description\\": \\"...\\",
                \\"parameters\\": {\\"type\\": {\\"description\\": \\"...\\", \\"type\\": \\"str\\", \\"default\\": \\"game\\"}}}]",
     "answers": "[{\\"name\\": \\"live_giveaways_by_type\\", \\"arguments\\": {\\"type\\": \\"beta\\"}}, ...]"}

``tools`` and ``answers`` are JSON text (lists are accepted on import). Tool ``parameters`` map
each parameter to a Python type hint (``"str, optional"``), not a JSON Schema: they are kept
verbatim with ``meta["schema_dialect"] = "xlam"`` (see :mod:`tooltune.data.io.dialects`). An
empty ``answers`` list (as in xlam-irrelevance) is a no_call example.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tooltune.data.examples import Behavior, Example, Quality
from tooltune.data.io._records import (
    ExportResult,
    ImportOptions,
    RecordContext,
    RecordError,
    Unexportable,
    build_example,
    decode_tools,
    export_records,
    import_records,
    parse_json_calls,
)
from tooltune.data.io.dialects import XLAM_OPTIONAL
from tooltune.data.quarantine import QuarantineRecord
from tooltune.formats.chat import assistant_message
from tooltune.tools.catalog import Tool, ToolCatalog

NAME = "xlam"
DIALECT = "xlam"
# JSON Schema type -> the Python type hint xLAM writes.
HINTS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "array": "List", "object": "dict"}


def read(
    path: str | Path, *, quality: Quality | str = Quality.MEDIUM, dataset: str | None = None
) -> Iterator[Example | QuarantineRecord]:
    """Examples from an xLAM file (JSON array or JSONL); bad records come out as quarantine records."""
    return import_records(path, NAME, _example, ImportOptions.of(quality, dataset))


def _example(record: Any, ctx: RecordContext) -> Example:
    if not isinstance(record, dict) or not isinstance(record.get("query"), str):
        raise RecordError('expected an object with "query", "tools" and "answers"')
    answers = record.get("answers")
    if isinstance(answers, str):
        answers = answers.strip() or "[]"
    calls = parse_json_calls(answers if answers is not None else "[]", "answers")
    reply = assistant_message(calls) if calls else {"role": "assistant", "content": ""}
    meta = {"xlam_id": record["id"]} if "id" in record else None
    return build_example([{"role": "user", "content": record["query"]}, reply], decode_tools(record.get("tools")), ctx,
                         meta=meta, dialect=DIALECT)


def write(examples: Iterable[Example], path: str | Path, catalog: ToolCatalog | None = None) -> ExportResult:
    """One xLAM record per example: a single user query with calls, or with no calls (no_call).
    Tools already in the xLAM dialect are written verbatim; others are converted to type hints."""
    return export_records(examples, path, lambda example: _record(example, catalog))


def _record(example: Example, catalog: ToolCatalog | None) -> dict[str, Any]:
    if [m.get("role") for m in example.messages] != ["user"] or not isinstance(example.messages[0].get("content"), str):
        raise Unexportable("xlam holds one user query (no system prompt, no earlier turns); export it as sharegpt or openai.")
    if example.behavior not in (Behavior.CALLS, Behavior.NO_CALL):
        raise Unexportable(f"xlam answers are calls or nothing; a {example.behavior.value} example has no xlam form.")
    if example.meta.get("schema_dialect") == DIALECT and len(example.inline_tools) == len(example.tools):
        tools = example.inline_tools
    else:
        tools = [xlam_tool(t) for t in example.offered_tools(catalog)]
    answers = [c.to_call().to_dict() for c in example.calls]
    return {
        "query": example.messages[0]["content"],
        "tools": json.dumps(tools, ensure_ascii=False),
        "answers": json.dumps(answers, ensure_ascii=False),
    }


def xlam_tool(tool: Tool) -> dict[str, Any]:
    """A JSON-Schema tool in xLAM's shape: each parameter's type as a Python hint, ", optional"
    when not required. Constraints a hint cannot say (enum, nested properties, formats) are dropped."""
    params = {}
    for name, schema in tool.properties.items():
        schema = schema if isinstance(schema, dict) else {}
        kind = schema.get("type")
        hint = HINTS.get(kind, "Any") if isinstance(kind, str) else "Any"
        spec: dict[str, Any] = {"description": schema.get("description", "")}
        spec["type"] = hint if name in tool.required else hint + XLAM_OPTIONAL
        if "default" in schema:
            spec["default"] = schema["default"]
        params[name] = spec
    return {"name": tool.name, "description": tool.description, "parameters": params}
