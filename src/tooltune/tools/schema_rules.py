"""What a tool's parameter schema may hold, checked before anything walks it, and how local
``$ref`` s are read.

Schemas come from users (catalog files, OpenAPI documents, ``tools`` in a serve request) and are
walked by recursive code: the JSON Schema meta-check, argument validation, grammar compilation,
prompt rendering. :func:`check_limits` refuses, up front and naming the limit, a schema nested
too deep (a RecursionError later), too large or with too many properties or enum values (a
prompt too long for any context), and any ``$ref`` other than a local one that resolves
(``#/$defs/Address``, ``#/definitions/…``, ``#`` for the whole schema, recursion included):
remote references would make validation fetch URLs, and ``$dynamicRef`` is not implemented by
the grammar compiler.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tooltune.errors import SchemaError

# Keywords whose value is a map of name → subschema, a list of subschemas, or one subschema.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
               "unevaluatedItems", "unevaluatedProperties", "additionalItems")
_UNSUPPORTED = ("$dynamicRef", "$recursiveRef", "$dynamicAnchor", "$recursiveAnchor")


@dataclass(frozen=True)
class SchemaLimits:
    """Upper bounds on one tool's parameter schema (far above hand-written and generated schemas)."""

    max_depth: int = 48
    """JSON nesting levels (an object property is two: ``properties`` and the property)."""
    max_properties: int = 512
    """Entries of every ``properties`` map in the schema, added up."""
    max_enum_values: int = 1000
    """Values of any one ``enum``."""
    max_bytes: int = 65_536
    """Size of the schema as compact JSON."""


SCHEMA_LIMITS = SchemaLimits()
MAX_INLINED = 256
"""References :func:`inline_refs` expands in one schema at most."""


def check_limits(schema: Any, *, where: str, limits: SchemaLimits = SCHEMA_LIMITS) -> None:
    """Raise :class:`SchemaError` naming the first limit ``schema`` breaks, or a ``$ref`` that is
    not local or points at nothing. Iterative, so it is safe on any depth."""
    depth = _depth(schema)
    if depth > limits.max_depth:
        raise SchemaError(f"{where}: parameters nest {depth} levels deep; the limit is {limits.max_depth} "
                          "(max_depth). Flatten the schema or move repeated parts to $defs.")
    size = len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > limits.max_bytes:
        raise SchemaError(f"{where}: parameters take {size} bytes as JSON; the limit is {limits.max_bytes} "
                          "(max_bytes). Shorten descriptions or split the tool.")
    properties = 0
    for path, node in _subschemas(schema):
        if isinstance(node.get("properties"), dict):
            properties += len(node["properties"])
        enum = node.get("enum")
        if isinstance(enum, list) and len(enum) > limits.max_enum_values:
            raise SchemaError(f"{where}: parameters{path}.enum lists {len(enum)} values; the limit is "
                              f"{limits.max_enum_values} (max_enum_values). Take free text and check it in the tool.")
        for keyword in ("$schema", "$id", "$anchor"):
            if keyword in node and not isinstance(node[keyword], str):
                raise SchemaError(f"{where}: parameters{path}.{keyword} must be a string, got "
                                  f"{type(node[keyword]).__name__}.")
        if path and ("$id" in node or "$schema" in node):
            # A nested $id moves the base that '#/...' resolves against; one resource per tool keeps refs checkable.
            raise SchemaError(f"{where}: parameters{path} sets {'$id' if '$id' in node else '$schema'}; only the "
                              "root of a tool's schema may. Move the definition to $defs and refer to it with $ref.")
        for keyword in _UNSUPPORTED:
            if keyword in node:
                raise SchemaError(f"{where}: parameters{path} uses {keyword}, which tooltune does not support; "
                                  "use $ref to a local definition ('#/$defs/Name').")
        ref = node.get("$ref")
        if ref is not None and resolve(schema, ref) is None:
            raise SchemaError(f"{where}: parameters{path}.$ref {ref!r} is not a local reference that exists; "
                              "tooltune reads only references into the schema itself ('#/$defs/Name' or '#').")
    if properties > limits.max_properties:
        raise SchemaError(f"{where}: parameters define {properties} properties; the limit is "
                          f"{limits.max_properties} (max_properties). Split the tool.")


def resolve(root: Any, ref: Any) -> dict[str, Any] | None:
    """The subschema a local ``$ref`` (a JSON pointer after ``#``) points at, or ``None``."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    pointer = ref[1:]
    if pointer and not pointer.startswith("/"):
        return None  # '#name' anchors are not followed
    node = root
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node if isinstance(node, dict) else None


def root_schema(schema: Any) -> Any:
    """``schema`` with a root ``$ref`` taken in: pydantic writes a recursive model as
    ``{"$defs": {...}, "$ref": "#/$defs/Model"}``, whose properties live in the definition. The
    ``$defs`` stay, so the references inside still resolve."""
    target = resolve(schema, schema.get("$ref")) if isinstance(schema, dict) and "$ref" in schema else None
    if target is None:
        return schema
    return {**{k: v for k, v in schema.items() if k != "$ref"}, **target}


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with every local ``$ref`` replaced by what it points at (keywords
    written next to the ``$ref``, such as a description, win). A reference met again inside its
    own expansion (a recursive schema) is left as it is, and so is every reference after the first
    :data:`MAX_INLINED`: definitions that each use the next twice would otherwise double the
    schema at every level. For listings that show one property at a time (compact signatures),
    where ``{"$ref": …}`` alone says nothing."""
    budget = [MAX_INLINED]

    def expand(node: Any, active: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [expand(item, active) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        target = resolve(schema, ref) if ref not in active and budget[0] > 0 else None
        if target is not None:
            budget[0] -= 1
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return expand(merged, active | {ref})
        return {k: v if k in ("enum", "const", "default", "examples") else expand(v, active) for k, v in node.items()}

    return expand(schema, frozenset())


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _subschemas(schema: Any):
    """``(path, node)`` for every subschema object, by keyword position (never inside enum/const/default)."""
    stack = [("", schema)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, node
        for key in _SCHEMA_MAPS:
            if isinstance(node.get(key), dict):
                stack.extend((f"{path}.{key}.{name}", sub) for name, sub in node[key].items())
        for key in _SCHEMA_LISTS:
            if isinstance(node.get(key), list):
                stack.extend((f"{path}.{key}[{i}]", sub) for i, sub in enumerate(node[key]))
        for key in _SCHEMA_ONE:
            value = node.get(key)
            if isinstance(value, dict):
                stack.append((f"{path}.{key}", value))
            elif key == "items" and isinstance(value, list):  # draft-7 tuple items
                stack.extend((f"{path}.items[{i}]", sub) for i, sub in enumerate(value))
