"""Typed tool specs and the catalog that every later stage consumes.

A tool's *content hash* covers what a model sees (name, description, parameter schema), so it
changes exactly when data written against the tool may stop being valid. The catalog hash is
the schema version that datasets, models and the registry carry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tooltune.errors import CatalogError, DocumentError, SchemaError
from tooltune.safeload import read_json
from tooltune.tools.schema_rules import check_limits, root_schema

CATALOG_FORMAT_VERSION = 1
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the bytes that content hashes are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


class ToolAnnotations(BaseModel):
    """MCP behaviour hints (``ToolAnnotations`` in the MCP spec); ``None`` means not stated."""

    model_config = ConfigDict(extra="allow")

    title: str | None = None
    read_only_hint: bool | None = Field(None, description="The tool does not modify its environment.")
    destructive_hint: bool | None = Field(None, description="The tool may perform destructive updates.")
    idempotent_hint: bool | None = Field(None, description="Repeated calls with the same arguments have no extra effect.")
    open_world_hint: bool | None = Field(None, description="The tool interacts with external entities.")


class Tool(BaseModel):
    """One callable tool. ``parameters`` is kept verbatim as the source gave it (never coerced)."""

    name: str = Field(min_length=1, description="Name the model must emit to call the tool.")
    description: str = Field("", description="What the tool does, as shown to the model.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: dict(EMPTY_PARAMETERS),
        description="JSON Schema of the arguments object.",
    )
    annotations: ToolAnnotations = Field(default_factory=ToolAnnotations)
    service: str | None = Field(None, description="The service (MCP server, API) offering the tool.")
    source: str | None = Field(None, description="Where the tool was discovered (command, URL, file).")

    @property
    def hash(self) -> str:
        """Content hash over what the model sees: name, description and parameter schema."""
        return content_hash({"name": self.name, "description": self.description, "parameters": self.parameters})

    @property
    def properties(self) -> dict[str, Any]:
        return root_schema(self.parameters).get("properties") or {}

    @property
    def required(self) -> list[str]:
        return list(root_schema(self.parameters).get("required") or [])

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI / Hugging Face ``tools=`` entry for this tool."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "tool") -> Tool:
        """Build a tool from tooltune's own shape, OpenAI's ``{"type": "function", "function": …}``,
        or MCP's ``inputSchema``; ``where`` prefixes error messages (file and index)."""
        if not isinstance(data, dict):
            raise CatalogError(f"{where}: expected an object with name/description/parameters, got {type(data).__name__}.")
        if "function" in data and isinstance(data["function"], dict):
            data = {**data["function"], **{k: v for k, v in data.items() if k not in ("type", "function")}}
        data = dict(data)
        if "inputSchema" in data and "parameters" not in data:
            data["parameters"] = data.pop("inputSchema")
        if "name" not in data:
            raise CatalogError(f"{where}: has no \"name\". Every tool needs the name the model will call it by.")
        params = data.get("parameters")
        if params is None:
            data["parameters"] = dict(EMPTY_PARAMETERS)
        known = set(cls.model_fields)
        try:
            tool = cls.model_validate({k: v for k, v in data.items() if k in known})
        except ValidationError as e:
            problems = "; ".join(_field_problem(err) for err in e.errors())
            raise CatalogError(f"{where}: {problems}.") from None
        check_schema(tool, where=f"{where} ({tool.name})")
        return tool


def _field_problem(err: Any) -> str:
    field = ".".join(str(p) for p in err["loc"]) or "(tool)"
    if field == "name" and err["type"] in ("string_too_short", "missing"):
        return 'name is empty; every tool needs the name the model will call it by (e.g. "get_weather")'
    return f"{field}: {err['msg']} (got {json.dumps(err.get('input'), default=str)[:60]})"


def check_schema(tool: Tool, *, where: str) -> None:
    """Fail with the tool's name when its parameters are not a valid object JSON Schema."""
    params = tool.parameters
    if not isinstance(params, dict):
        raise SchemaError(f"{where}: parameters must be a JSON Schema object, got {type(params).__name__}.")
    check_limits(params, where=where)  # before any recursive walk of it
    if root_schema(params).get("type", "object") != "object":
        raise SchemaError(
            f"{where}: parameters has type {params.get('type')!r}; tool arguments are an object, "
            'so use {"type": "object", "properties": {...}}.'
        )
    try:
        jsonschema.validators.validator_for(params, default=jsonschema.Draft202012Validator).check_schema(params)
    except jsonschema.SchemaError as e:
        path = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise SchemaError(f"{where}: invalid JSON Schema at parameters/{path}: {e.message}") from e
    missing = [r for r in tool.required if r not in tool.properties]
    if missing:
        raise SchemaError(
            f"{where}: parameters.required lists {', '.join(map(repr, missing))}, which is not in properties. "
            "Add it to properties or remove it from required."
        )


class ToolCatalog(BaseModel):
    """An ordered set of tools with unique names."""

    tools: list[Tool] = Field(default_factory=list)

    def model_post_init(self, _context: Any) -> None:
        seen: set[str] = set()
        for tool in self.tools:
            if tool.name in seen:
                raise CatalogError(
                    f"tool name {tool.name!r} appears twice; names must be unique across the catalog "
                    "(prefix them with the service name when two services share a name)."
                )
            seen.add(tool.name)

    @property
    def hash(self) -> str:
        """Schema version of the whole catalog: changes whenever any tool's content hash does."""
        return content_hash(sorted(t.hash for t in self.tools))

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tools]

    @property
    def services(self) -> list[str]:
        return sorted({t.service for t in self.tools if t.service})

    def __len__(self) -> int:
        return len(self.tools)

    def __iter__(self):  # type: ignore[override]  # iterate tools, not pydantic fields
        return iter(self.tools)

    def __contains__(self, name: object) -> bool:
        return any(t.name == name for t in self.tools)

    def get(self, name: str) -> Tool:
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise CatalogError(f"no tool named {name!r} in the catalog; known tools: {', '.join(self.names) or '(none)'}.")

    def for_service(self, service: str) -> ToolCatalog:
        return ToolCatalog(tools=[t for t in self.tools if t.service == service])

    def merge(self, other: ToolCatalog) -> ToolCatalog:
        return ToolCatalog(tools=[*self.tools, *other.tools])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": CATALOG_FORMAT_VERSION,
            "hash": self.hash,
            "tools": [
                {**t.model_dump(mode="json", exclude_none=True), "annotations": t.annotations.model_dump(exclude_none=True), "hash": t.hash}
                for t in self.tools
            ],
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "catalog") -> ToolCatalog:
        """Accepts ``{"tools": [...]}`` or a bare list of tools (tooltune, OpenAI or MCP shape)."""
        items = data.get("tools") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise CatalogError(f'{where}: expected an object with a "tools" list (or a list of tools).')
        return cls(tools=[Tool.from_dict(item, where=f"{where}: tools[{i}]") for i, item in enumerate(items)])

    @classmethod
    def load(cls, path: str | Path) -> ToolCatalog:
        path = Path(path)
        try:
            data = read_json(path)
        except DocumentError as e:
            raise CatalogError(str(e)) from e
        return cls.from_dict(data, where=str(path))
