"""Rich tables for catalogs and catalog diffs (used by the CLI; kept out of the data classes)."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from tooltune.tools.catalog import ToolCatalog
from tooltune.tools.diff import CatalogDiff, Rating

_RATING_STYLE = {Rating.BREAKING: "bold red", Rating.MINOR: "yellow", Rating.PATCH: "dim", Rating.NONE: ""}


def catalog_table(catalog: ToolCatalog, *, title: str | None = None) -> Table:
    table = Table(title=title, show_lines=True)
    table.add_column("tool", style="bold cyan", no_wrap=True)
    table.add_column("parameters")
    table.add_column("hints", no_wrap=True)
    table.add_column("description")
    for tool in catalog:
        params = "\n".join(
            _param_line(name, schema, name in tool.required) for name, schema in tool.properties.items()
        ) or "[dim](none)[/]"
        table.add_row(tool.name, params, _hints(tool.annotations), _short(tool.description, 90))
    return table


def diff_table(result: CatalogDiff) -> Table:
    table = Table(show_lines=False)
    table.add_column("rating", no_wrap=True)
    table.add_column("change", no_wrap=True)
    table.add_column("where", no_wrap=True)
    table.add_column("detail")
    for change in result.changes:
        where = f"{change.tool}.{change.param}" if change.param else change.tool
        table.add_row(f"[{_RATING_STYLE[change.rating]}]{change.rating}[/]", change.kind.value, where, change.detail)
    return table


def _param_line(name: str, schema: Any, required: bool) -> str:
    schema = schema if isinstance(schema, dict) else {}
    kind = _type_name(schema)
    text = f"{name}{'*' if required else ''}: [green]{kind}[/]"
    if "enum" in schema:
        text += " ∈ {" + ", ".join(json.dumps(v) for v in schema["enum"]) + "}"
    if "default" in schema:
        text += f" = {json.dumps(schema['default'])}"
    if "format" in schema:
        text += f" [dim]({schema['format']})[/]"
    return text


def _type_name(schema: dict) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array[{_type_name(schema['items'])}]"
    if kind:
        return kind
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type_name(s) for s in schema[key] if isinstance(s, dict))
    return "any"


def _hints(annotations) -> str:
    marks = {"read_only_hint": "read-only", "destructive_hint": "destructive", "idempotent_hint": "idempotent",
             "open_world_hint": "open-world"}
    return "\n".join(label for field, label in marks.items() if getattr(annotations, field)) or ""


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
