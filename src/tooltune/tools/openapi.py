"""OpenAPI 3.0 / 3.1 document -> one tool per operation.

Each operation's arguments become one flat object schema, because a model calls a tool with a
single JSON object: path, query, header and cookie parameters become properties, and so do the
properties of a JSON request body. Schemas are kept verbatim apart from resolving local
``$ref``s (``#/components/...``), so ``nullable``, ``format``, ``example`` and friends survive.

Name clashes inside one operation are resolved by prefixing the later property with where it
comes from: a query parameter ``id`` next to a path parameter ``id`` becomes ``query_id``, and a
body property ``name`` next to a parameter ``name`` becomes ``body_name``. Whoever executes the
calls maps those prefixes back.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tooltune.errors import DiscoveryError
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.tools.documents import load_document

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SAFE_METHODS = {"get", "head", "options", "trace"}  # RFC 9110 §9.2.1: read-only by definition
IDEMPOTENT_UNSAFE_METHODS = {"put", "delete"}  # RFC 9110 §9.2.2


def discover_openapi(path_or_dict: str | Path | dict[str, Any], *, service: str | None = None) -> ToolCatalog:
    """One tool per operation of an OpenAPI 3.x document (a JSON/YAML file, or an already parsed dict).

    ``service`` defaults to ``info.title``. Errors name the file and the JSON pointer of the
    offending operation, e.g. ``petstore.yaml#/paths/~1pets/post``.
    """
    if isinstance(path_or_dict, dict):
        doc, where, source = path_or_dict, "OpenAPI document", "openapi: <dict>"
    else:
        doc, where, source = load_document(path_or_dict), str(path_or_dict), f"openapi: {path_or_dict}"
    _check_document(doc, where)
    service = service or (doc.get("info") or {}).get("title") or _stem(path_or_dict)
    tools: list[Tool] = []
    pointers: dict[str, str] = {}
    for pointer, method, operation, path_item in _operations(doc, where):
        tool = _operation_tool(doc, f"{where}{pointer}", pointer, method, operation, path_item)
        if tool.name in pointers:
            raise DiscoveryError(
                f"{where}{pointer}: tool name {tool.name!r} is also used by {pointers[tool.name]}. "
                "Give each operation a unique operationId."
            )
        pointers[tool.name] = pointer
        tools.append(tool.model_copy(update={"service": service, "source": source}))
    if not tools:
        raise DiscoveryError(
            f'{where}: the document has no operations under "paths", so there are no tools to discover.'
        )
    return ToolCatalog(tools=tools)


def _check_document(doc: Any, where: str) -> None:
    if not isinstance(doc, dict):
        raise DiscoveryError(f"{where}: expected an OpenAPI document (a mapping), got {type(doc).__name__}.")
    version = str(doc.get("openapi", ""))
    if "swagger" in doc:
        raise DiscoveryError(
            f"{where}: this is a Swagger {doc['swagger']} document; only OpenAPI 3.0/3.1 is supported. "
            "Convert it first (e.g. with swagger2openapi)."
        )
    if not version.startswith("3."):
        raise DiscoveryError(
            f'{where}: not an OpenAPI 3 document ("openapi" is {doc.get("openapi")!r}, expected "3.0.x" or "3.1.x"). '
            "For a plain list of tools use --file instead of --openapi."
        )


def _stem(path_or_dict: Any) -> str:
    return "openapi" if isinstance(path_or_dict, dict) else Path(path_or_dict).stem


def _operations(doc: dict[str, Any], where: str):
    """Yield ``(pointer, method, operation, path_item)`` in document order."""
    paths = doc.get("paths") or {}
    if not isinstance(paths, dict):
        raise DiscoveryError(f"{where}#/paths: expected a mapping of path -> path item, got {type(paths).__name__}.")
    for path, path_item in paths.items():
        item_pointer = f"#/paths/{_escape(path)}"
        if isinstance(path_item, dict) and "$ref" in path_item:
            path_item = _Inliner(doc, f"{where}{item_pointer}").lookup(path_item["$ref"])
        if not isinstance(path_item, dict):
            raise DiscoveryError(
                f"{where}{item_pointer}: expected a path item (a mapping), got {type(path_item).__name__}."
            )
        for method, operation in path_item.items():
            if method in HTTP_METHODS:
                yield f"{item_pointer}/{method}", method, operation, path_item


def _operation_tool(doc: dict[str, Any], loc: str, pointer: str, method: str, operation: Any, path_item: dict) -> Tool:
    if not isinstance(operation, dict):
        raise DiscoveryError(f"{loc}: expected an operation (a mapping), got {type(operation).__name__}.")
    inliner = _Inliner(doc, loc)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in _parameters(path_item, operation, inliner, loc):
        name = _add_property(properties, param["name"], param["in"], _parameter_schema(param, inliner, loc), loc)
        if param.get("required") or param["in"] == "path":  # path parameters are always required
            required.append(name)
    _add_body(operation.get("requestBody"), properties, required, inliner, loc)
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    if inliner.defs:
        parameters["$defs"] = inliner.defs
    return Tool.from_dict(
        {
            "name": operation.get("operationId") or _slug(method, pointer),
            "description": _description(operation) or f"{method.upper()} {_api_path(pointer)}",
            "parameters": parameters,
            "annotations": _annotations(method),
        },
        where=loc,
    )


def _parameters(path_item: dict, operation: dict, inliner: _Inliner, loc: str) -> list[dict[str, Any]]:
    """Path-level parameters overridden by operation-level ones with the same name and location."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in [*(path_item.get("parameters") or []), *(operation.get("parameters") or [])]:
        param = inliner.lookup(raw["$ref"]) if isinstance(raw, dict) and "$ref" in raw else raw
        if not isinstance(param, dict) or "name" not in param or "in" not in param:
            raise DiscoveryError(f'{loc}: a parameter has no "name" or "in": {raw!r}. Every parameter needs both.')
        merged[(param["name"], param["in"])] = param
    return list(merged.values())


def _parameter_schema(param: dict[str, Any], inliner: _Inliner, loc: str) -> dict[str, Any]:
    schema = param.get("schema")
    if schema is None and isinstance(param.get("content"), dict) and param["content"]:
        schema = next(iter(param["content"].values())).get("schema")  # OpenAPI allows exactly one entry
    schema = dict(inliner.inline(schema if schema is not None else {}))
    if param.get("description") and "description" not in schema:
        schema["description"] = param["description"]
    return schema


def _add_body(body: Any, properties: dict, required: list[str], inliner: _Inliner, loc: str) -> None:
    """Merge a request body's properties into the arguments (prefixed ``body_`` on a clash).

    A body that is not an object with properties (an array, a oneOf, raw text) goes in whole
    as a single ``body`` argument. Body properties are required only when the body itself is
    (``requestBody.required`` defaults to false in OpenAPI).
    """
    if body is None:
        return
    if isinstance(body, dict) and "$ref" in body:
        body = inliner.lookup(body["$ref"])
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, dict) or not content:
        raise DiscoveryError(f'{loc}/requestBody: has no "content"; give at least one media type with a schema.')
    media = next((m for m in content if "json" in m.lower()), next(iter(content)))
    schema = inliner.inline((content[media] or {}).get("schema") or {})
    body_required = bool(body.get("required"))
    if (
        isinstance(schema, dict)
        and isinstance(schema.get("properties"), dict)
        and schema.get("type", "object") == "object"
    ):
        for prop, prop_schema in schema["properties"].items():
            name = _add_property(properties, prop, "body", prop_schema, loc)
            if body_required and prop in (schema.get("required") or []):
                required.append(name)
    else:
        _add_property(properties, "body", "body", schema, loc)
        if body_required:
            required.append("body")


def _add_property(properties: dict[str, Any], name: str, origin: str, schema: Any, loc: str) -> str:
    """Add ``name``, or ``{origin}_{name}`` when ``name`` is taken; return the name used."""
    for candidate in (name, f"{origin}_{name}"):
        if candidate not in properties:
            properties[candidate] = schema
            return candidate
    raise DiscoveryError(
        f"{loc}: argument names {name!r} and {origin}_{name!r} are both taken by other parameters. "
        "Rename one of the parameters or body properties."
    )


def _description(operation: dict[str, Any]) -> str:
    """Summary and description both, since the model sees nothing else; empty when neither is given."""
    summary = (operation.get("summary") or "").strip()
    detail = (operation.get("description") or "").strip()
    if detail and summary and not detail.startswith(summary):
        return f"{summary}\n\n{detail}"
    return detail or summary


def _annotations(method: str) -> dict[str, Any]:
    annotations: dict[str, Any] = {"read_only_hint": method in SAFE_METHODS}
    if method == "delete":
        annotations["destructive_hint"] = True
    if method in IDEMPOTENT_UNSAFE_METHODS:
        annotations["idempotent_hint"] = True
    return annotations


def _slug(method: str, pointer: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{method}_{_api_path(pointer)}").strip("_")


def _api_path(pointer: str) -> str:
    """``#/paths/~1pets~1{petId}/get`` -> ``/pets/{petId}``."""
    return _unescape(pointer.split("/")[2])


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _unescape(segment: str) -> str:
    return unquote(segment).replace("~1", "/").replace("~0", "~")


class _Inliner:
    """Resolves local ``$ref``s by inlining them.

    A recursive schema cannot be inlined, so a ``$ref`` met again inside its own expansion is
    rewritten to ``#/$defs/<Name>`` and the definition is added to ``defs``, which the caller
    puts at the root of the tool's parameters schema.
    """

    def __init__(self, doc: dict[str, Any], loc: str):
        self.doc = doc
        self.loc = loc
        self.defs: dict[str, Any] = {}
        self._def_names: dict[str, str] = {}

    def lookup(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise DiscoveryError(
                f"{self.loc}: $ref {ref!r} points outside this document; only local refs (#/components/...) "
                "are supported. Bundle the spec into one file first (e.g. `redocly bundle`)."
            )
        node: Any = self.doc
        for segment in ref[2:].split("/"):
            key = _unescape(segment)
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise DiscoveryError(f"{self.loc}: $ref {ref!r} does not resolve: there is nothing at {key!r}.")
        return node

    def inline(self, value: Any) -> Any:
        result = self._inline(value, ())
        pending = [ref for ref in self._def_names if self._def_names[ref] not in self.defs]
        while pending:  # definitions can themselves reach further recursive refs
            ref = pending.pop()
            self.defs[self._def_names[ref]] = self._inline(self.lookup(ref), (ref,))
            pending = [r for r in self._def_names if self._def_names[r] not in self.defs]
        return result

    def _inline(self, value: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(value, list):
            return [self._inline(item, stack) for item in value]
        if not isinstance(value, dict):
            return value
        ref = value.get("$ref")
        if not isinstance(ref, str):
            return {key: self._inline(item, stack) for key, item in value.items()}
        siblings = {key: self._inline(item, stack) for key, item in value.items() if key != "$ref"}
        if ref in stack:
            return {"$ref": f"#/$defs/{self._def_name(ref)}", **siblings}
        resolved = self._inline(self.lookup(ref), (*stack, ref))
        # OpenAPI 3.1 lets keywords such as description sit beside $ref; they refine the target.
        return {**resolved, **siblings} if isinstance(resolved, dict) else resolved

    def _def_name(self, ref: str) -> str:
        if ref not in self._def_names:
            base = _unescape(ref.rsplit("/", 1)[-1]) or "def"
            name, n = base, 2
            while name in self._def_names.values():
                name, n = f"{base}{n}", n + 1
            self._def_names[ref] = name
        return self._def_names[ref]
