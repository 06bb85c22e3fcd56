"""Tool-schema dialects of public data sets that are not JSON Schema, translated to JSON Schema.

Imported examples keep every tool definition verbatim in ``Example.inline_tools`` and name the
dialect in ``Example.meta["schema_dialect"]``. :meth:`Example.offered_tools` translates a copy
with :func:`to_json_schema_tool` before building ``Tool`` objects, so validation, rendering and
export see valid JSON Schema while the stored record stays exactly as the set published it.

- ``bfcl``: BFCL writes Python/Java/JavaScript type names (``dict``, ``float``, ``tuple``,
  ``HashMap``, ``String`` …) where JSON Schema has ``object``, ``number``, ``array``.
- ``xlam``: APIGen/xLAM writes ``parameters`` as ``{param: {"type": "str, optional", ...}}``,
  Python type hints per parameter instead of an object schema.
"""

from __future__ import annotations

from typing import Any

from tooltune.errors import DataError

# BFCL type name -> JSON Schema type; None means "any value" (no type keyword). Follows BFCL's
# own GORILLA_TO_OPENAPI (bfcl_eval/constants/type_mappings.py) except "any"/"Any", which BFCL
# maps to "string" but whose ground-truth values are not always strings, and "" (one JavaScript
# case leaves the type empty).
BFCL_TYPES: dict[str, str | None] = {
    "string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
    "array": "array", "object": "object", "null": "null",
    "dict": "object", "float": "number", "tuple": "array", "bool": "boolean", "list": "array",
    "any": None, "Any": None, "": None,
    # Java
    "String": "string", "byte": "integer", "short": "integer", "long": "integer", "double": "number",
    "char": "string", "Array": "array", "ArrayList": "array", "Queue": "array", "Stack": "array",
    "Set": "array", "HashMap": "object", "Hashtable": "object",
    # JavaScript
    "Boolean": "boolean", "Bigint": "integer",
}

# Base of an xLAM type hint ("List[int]" -> "List") -> JSON Schema type; other hints ("Any",
# "Callable", "Union[...]") constrain nothing.
XLAM_TYPES: dict[str, str] = {
    "str": "string", "int": "integer", "float": "number", "bool": "boolean",
    "list": "array", "List": "array", "tuple": "array", "Tuple": "array", "set": "array", "Set": "array",
    "dict": "object", "Dict": "object",
}
XLAM_OPTIONAL = ", optional"


def to_json_schema_tool(tool: Any, dialect: str) -> Any:
    """A copy of ``tool`` (a ``{"name", "description", "parameters"}`` dict) whose parameters are
    JSON Schema; anything that is not such a dict is returned as is for ``Tool.from_dict`` to reject."""
    translate = _DIALECTS.get(dialect)
    if translate is None:
        raise DataError(f'meta.schema_dialect {dialect!r} is not known; known dialects: {", ".join(sorted(_DIALECTS))}.')
    if not isinstance(tool, dict) or not isinstance(tool.get("parameters"), dict):
        return tool
    return {**tool, "parameters": translate(tool["parameters"], where=f"tool {tool.get('name')!r}: parameters")}


def bfcl_to_json_schema(schema: dict[str, Any], *, where: str = "parameters") -> dict[str, Any]:
    """A copy of a BFCL parameter schema with BFCL type names replaced by JSON Schema types,
    in nested ``properties``, ``items``, ``additionalProperties`` and ``anyOf``/``oneOf``/``allOf`` too."""
    out = dict(schema)
    kind = schema.get("type")
    if isinstance(kind, str):
        if kind not in BFCL_TYPES:
            raise DataError(
                f"{where}.type: BFCL type {kind!r} has no JSON Schema equivalent; known BFCL types: "
                f"{', '.join(sorted(t for t in BFCL_TYPES if t))}. Add it to BFCL_TYPES in tooltune/data/io/dialects.py."
            )
        if BFCL_TYPES[kind] is None:
            del out["type"]
        else:
            out["type"] = BFCL_TYPES[kind]
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {
            name: bfcl_to_json_schema(sub, where=f"{where}.properties.{name}") if isinstance(sub, dict) else sub
            for name, sub in schema["properties"].items()
        }
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            out[key] = bfcl_to_json_schema(schema[key], where=f"{where}.{key}")
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list):
            out[key] = [bfcl_to_json_schema(s, where=f"{where}.{key}[{i}]") if isinstance(s, dict) else s
                        for i, s in enumerate(schema[key])]
    return out


def xlam_to_json_schema(parameters: dict[str, Any], *, where: str = "parameters") -> dict[str, Any]:
    """The object schema for xLAM's ``{param: {"type": hint, "description", "default"}}``.

    A parameter is required unless its hint ends in ", optional" (xLAM's own marker); the
    ``default`` is kept as the JSON Schema annotation of the same name."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in parameters.items():
        if not isinstance(spec, dict):
            raise DataError(f"{where}.{name}: expected an object with type/description, got {type(spec).__name__}.")
        hint = str(spec.get("type", ""))
        if not hint.endswith(XLAM_OPTIONAL):
            required.append(name)
        kind = XLAM_TYPES.get(hint.removesuffix(XLAM_OPTIONAL).split("[", 1)[0].strip())
        prop = {"type": kind} if kind else {}
        prop.update({key: spec[key] for key in ("description", "default") if key in spec})
        properties[name] = prop
    return {"type": "object", "properties": properties, "required": required}


_DIALECTS = {"bfcl": bfcl_to_json_schema, "xlam": xlam_to_json_schema}
