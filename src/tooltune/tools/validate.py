"""Validate tool-call arguments against the tool's JSON Schema.

Messages read ``create_payment.amount: expected integer, got "50.00"``: the tool and parameter
path first, then what the schema wanted and what the call gave.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema

from tooltune.errors import ArgumentError
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool, ToolCatalog, canonical_json
from tooltune.tools.schema_rules import root_schema


def argument_problems(tool: Tool, arguments: Any, *, allow_extra: bool = False) -> list[str]:
    """Every way ``arguments`` breaks ``tool``'s schema; empty when the call is valid.

    Unknown top-level parameters count as problems unless ``allow_extra`` is set or the schema
    explicitly allows them: JSON Schema permits extra keys by default, but a model inventing a
    parameter is a wrong call (BFCL's checker rejects it too)."""
    if not isinstance(arguments, dict):
        return [f"{tool.name}: arguments must be an object, got {_show(arguments)}"]
    problems = [_message(tool.name, e) for e in _validator(canonical_json(tool.parameters)).iter_errors(arguments)]
    root = root_schema(tool.parameters)
    if not allow_extra and "additionalProperties" not in root and "patternProperties" not in root:
        known = tool.properties
        problems += [
            f"{tool.name}: unexpected parameter {_show(name)}; known parameters: {', '.join(known) or '(none)'}"
            for name in arguments if name not in known
        ]
    return sorted(set(problems), key=problems.index)


def validate_call(call: ToolCall, catalog: ToolCatalog, *, allow_extra: bool = False) -> None:
    """Raise :class:`ArgumentError` listing every problem of ``call`` against ``catalog``."""
    if call.name not in catalog:
        raise ArgumentError([f"{call.name}: no such tool; known tools: {', '.join(catalog.names)}"])
    problems = argument_problems(catalog.get(call.name), call.arguments, allow_extra=allow_extra)
    if problems:
        raise ArgumentError(problems)


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    # Keyed by the schema's canonical JSON so identical schemas share one compiled validator.
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _message(tool: str, error: jsonschema.ValidationError) -> str:
    path = _path(tool, error.absolute_path)
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return f"{path}: missing required parameter {_show(missing[0] if len(missing) == 1 else missing)}"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{path}: expected {expected}, got {_show(error.instance)}"
    if error.validator == "enum":
        allowed = ", ".join(_show(v) for v in error.validator_value)
        return f"{path}: expected one of {allowed}, got {_show(error.instance)}"
    if error.validator == "additionalProperties":
        return f"{path}: {error.message}"
    return f"{path}: {error.message}"


def _path(tool: str, parts) -> str:
    out = tool
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
