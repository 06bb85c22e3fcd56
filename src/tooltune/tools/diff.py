"""Classify the differences between two catalogs, and rate each as breaking, minor or patch.

The rating decides the semantic version of a model trained on the new catalog: a breaking
change means data written against the old schema may now be wrong (major), an addition means
old data stays valid but is incomplete (minor), wording changes are patch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from tooltune.tools.catalog import Tool, ToolCatalog, canonical_json


class Rating(int, enum.Enum):
    NONE = 0
    PATCH = 1
    MINOR = 2
    BREAKING = 3

    def __str__(self) -> str:
        return self.name.lower()


class ChangeKind(str, enum.Enum):
    TOOL_ADDED = "tool_added"
    TOOL_REMOVED = "tool_removed"
    TOOL_DESCRIPTION_CHANGED = "tool_description_changed"
    PARAM_ADDED_OPTIONAL = "param_added_optional"
    PARAM_ADDED_REQUIRED = "param_added_required"
    PARAM_REMOVED = "param_removed"
    PARAM_RENAMED = "param_renamed"
    PARAM_TYPE_CHANGED = "param_type_changed"
    PARAM_ENUM_CHANGED = "param_enum_changed"
    PARAM_MADE_REQUIRED = "param_made_required"
    PARAM_MADE_OPTIONAL = "param_made_optional"
    PARAM_DESCRIPTION_CHANGED = "param_description_changed"
    PARAM_SCHEMA_CHANGED = "param_schema_changed"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    rating: Rating
    tool: str
    detail: str
    param: str | None = None
    new_param: str | None = None
    """For renames: the parameter's new name (``param`` holds the old one)."""

    def __str__(self) -> str:
        where = f"{self.tool}.{self.param}" if self.param else self.tool
        return f"[{self.rating}] {self.kind.value} {where}: {self.detail}"


@dataclass(frozen=True)
class CatalogDiff:
    changes: list[Change]

    @property
    def rating(self) -> Rating:
        return max((c.rating for c in self.changes), default=Rating.NONE)

    @property
    def breaking(self) -> bool:
        return self.rating is Rating.BREAKING

    def for_tool(self, name: str) -> list[Change]:
        return [c for c in self.changes if c.tool == name]


def diff(old: ToolCatalog, new: ToolCatalog) -> CatalogDiff:
    """Every change from ``old`` to ``new``, tools in ``new``'s order then removed ones."""
    old_by_name = {t.name: t for t in old.tools}
    new_names = set(new.names)
    changes: list[Change] = []
    for tool in new.tools:
        if tool.name not in old_by_name:
            changes.append(Change(ChangeKind.TOOL_ADDED, Rating.MINOR, tool.name, "new tool"))
        else:
            changes.extend(_tool_changes(old_by_name[tool.name], tool))
    for tool in old.tools:
        if tool.name not in new_names:
            changes.append(Change(ChangeKind.TOOL_REMOVED, Rating.BREAKING, tool.name, "tool no longer offered"))
    return CatalogDiff(changes)


def _tool_changes(old: Tool, new: Tool) -> list[Change]:
    changes = []
    if old.description != new.description:
        changes.append(Change(ChangeKind.TOOL_DESCRIPTION_CHANGED, Rating.PATCH, new.name, "description reworded"))
    old_props, new_props = old.properties, new.properties
    removed = [p for p in old_props if p not in new_props]
    added = [p for p in new_props if p not in old_props]
    renames = _match_renames(old_props, new_props, removed, added)
    for old_name, new_name in renames.items():
        changes.append(Change(
            ChangeKind.PARAM_RENAMED, Rating.BREAKING, new.name,
            f"renamed to {new_name!r} (same type and description)", param=old_name, new_param=new_name,
        ))
    for name in removed:
        if name not in renames:
            changes.append(Change(ChangeKind.PARAM_REMOVED, Rating.BREAKING, new.name, "parameter removed", param=name))
    renamed_to = set(renames.values())
    for name in added:
        if name in renamed_to:
            continue
        if name in new.required:
            changes.append(Change(ChangeKind.PARAM_ADDED_REQUIRED, Rating.BREAKING, new.name, "new required parameter", param=name))
        else:
            changes.append(Change(ChangeKind.PARAM_ADDED_OPTIONAL, Rating.MINOR, new.name, "new optional parameter", param=name))
    for name in old_props.keys() & new_props.keys():
        changes.extend(_param_changes(new.name, name, old_props[name], new_props[name],
                                      name in old.required, name in new.required))
    return changes


def _match_renames(old_props: dict, new_props: dict, removed: list[str], added: list[str]) -> dict[str, str]:
    """Pair removed with added parameters that have the same type and description.

    A pair counts only when the match is unambiguous both ways, so two look-alike parameters
    are reported as removed + added rather than guessed at."""
    def signature(schema: Any) -> str:
        if not isinstance(schema, dict):
            return canonical_json(schema)
        return canonical_json({"type": schema.get("type"), "description": schema.get("description"), "enum": schema.get("enum")})

    old_sigs = {name: signature(old_props[name]) for name in removed}
    new_sigs = {name: signature(new_props[name]) for name in added}
    renames = {}
    for old_name, sig in old_sigs.items():
        candidates = [n for n, s in new_sigs.items() if s == sig]
        if len(candidates) == 1 and list(old_sigs.values()).count(sig) == 1:
            renames[old_name] = candidates[0]
    return renames


def _param_changes(tool: str, name: str, old: Any, new: Any, was_required: bool, is_required: bool) -> list[Change]:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [] if old == new else [Change(ChangeKind.PARAM_SCHEMA_CHANGED, Rating.BREAKING, tool, "schema changed", param=name)]
    changes = []
    if old.get("type") != new.get("type"):
        changes.append(Change(ChangeKind.PARAM_TYPE_CHANGED, Rating.BREAKING, tool,
                              f"type {old.get('type')!r} → {new.get('type')!r}", param=name))
    if old.get("enum") != new.get("enum"):
        changes.append(_enum_change(tool, name, old.get("enum"), new.get("enum")))
    if not was_required and is_required:
        changes.append(Change(ChangeKind.PARAM_MADE_REQUIRED, Rating.BREAKING, tool, "now required", param=name))
    elif was_required and not is_required:
        changes.append(Change(ChangeKind.PARAM_MADE_OPTIONAL, Rating.MINOR, tool, "now optional", param=name))
    if old.get("description") != new.get("description"):
        changes.append(Change(ChangeKind.PARAM_DESCRIPTION_CHANGED, Rating.PATCH, tool, "description reworded", param=name))
    rest = ("type", "enum", "description")
    if {k: v for k, v in old.items() if k not in rest} != {k: v for k, v in new.items() if k not in rest}:
        # Bounds, formats, item schemas…: tightening may reject old data, so rate it breaking.
        changes.append(Change(ChangeKind.PARAM_SCHEMA_CHANGED, Rating.BREAKING, tool, "constraints changed", param=name))
    return changes


def _enum_change(tool: str, name: str, old: list | None, new: list | None) -> Change:
    if new is None:
        return Change(ChangeKind.PARAM_ENUM_CHANGED, Rating.MINOR, tool, "enum restriction removed", param=name)
    if old is None:
        return Change(ChangeKind.PARAM_ENUM_CHANGED, Rating.BREAKING, tool, f"values now restricted to {new}", param=name)
    dropped = [v for v in old if v not in new]
    gained = [v for v in new if v not in old]
    if dropped:
        return Change(ChangeKind.PARAM_ENUM_CHANGED, Rating.BREAKING, tool,
                      f"values removed: {dropped}" + (f"; added: {gained}" if gained else ""), param=name)
    if not gained:
        return Change(ChangeKind.PARAM_ENUM_CHANGED, Rating.PATCH, tool, "values reordered", param=name)
    return Change(ChangeKind.PARAM_ENUM_CHANGED, Rating.MINOR, tool, f"values added: {gained}", param=name)
