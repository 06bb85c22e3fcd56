"""Tool schemas users really write (pydantic's ``$defs``/``$ref``, recursive models) work in
rendering, validation, constrained decoding and ``tooltune serve``; schemas built to hurt (deep,
huge, remote refs, reference bombs) are refused up front with a 400 naming the limit — never a
500, never a generation that holds the model for a prompt that cannot fit."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import BaseModel

from tooltune.errors import CatalogError, SchemaError
from tooltune.tools.catalog import Tool
from tooltune.tools.schema_rules import SCHEMA_LIMITS, inline_refs
from tooltune.tools.validate import argument_problems


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    name: str
    home: Address
    friends: list["Person"] = []  # recursive: "$ref": "#/$defs/Person"


def pydantic_tool() -> Tool:
    schema = Person.model_json_schema()
    # pydantic writes a recursive model as {"$defs": {"Person": ..., "Address": ...}, "$ref": "#/$defs/Person"}.
    assert schema["$ref"] == "#/$defs/Person" and "properties" not in schema
    return Tool.from_dict({"name": "add_person", "description": "Add a person.", "parameters": schema})


def nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def ref_bomb(levels: int) -> dict[str, Any]:
    """$defs where each definition uses the next one twice: 2**levels nodes once inlined."""
    defs = {f"d{i}": {"type": "object", "properties": {"l": {"$ref": f"#/$defs/d{i + 1}"}, "r": {"$ref": f"#/$defs/d{i + 1}"}}}
            for i in range(levels)}
    defs[f"d{levels}"] = {"type": "string"}
    return {"type": "object", "properties": {"root": {"$ref": "#/$defs/d0"}}, "$defs": defs}


# -- what users write works ----------------------------------------------------------------


def test_refs_validate_including_recursion() -> None:
    tool = pydantic_tool()
    good = {"name": "Ann", "home": {"street": "Main 1", "city": "Oslo"},
            "friends": [{"name": "Bo", "home": {"street": "x", "city": "y"}, "friends": []}]}
    assert argument_problems(tool, good) == []
    bad = {"name": "Ann", "home": {"street": "Main 1"}, "friends": [{"name": 5, "home": {"street": "x", "city": "y"}}]}
    problems = argument_problems(tool, bad)
    assert any('home: missing required parameter "city"' in p for p in problems)
    assert any("friends[0].name: expected string" in p for p in problems)


def test_refs_render_in_every_listing(make_tokenizer) -> None:
    from tooltune.formats.chat import COMPACT_TEMPLATE, render_chat

    tool = Tool.from_dict({"name": "ship", "description": "Ship a parcel.", "parameters": {
        "type": "object", "required": ["unit"],
        "properties": {"unit": {"$ref": "#/$defs/Unit"}, "box": {"$ref": "#/$defs/Box"},
                       "items": {"type": "array", "items": {"$ref": "#/$defs/Unit"}}},
        "$defs": {"Unit": {"enum": ["kg", "lb"]}, "Box": {"type": "object", "properties": {"inner": {"$ref": "#/$defs/Box"}}}}}})
    messages = [{"role": "user", "content": "ship it"}]
    compact = render_chat(make_tokenizer(COMPACT_TEMPLATE), messages, [tool], add_generation_prompt=True)
    assert "ship(unit: kg|lb, box?: dict, items?: list[kg|lb])" in compact  # the refs' types, not 'str'
    schema_listing = render_chat(make_tokenizer(None), messages, [tool, pydantic_tool()], add_generation_prompt=True)
    assert '"$defs"' in schema_listing and '"#/$defs/Person"' in schema_listing  # JSON Schema listed as written


def test_inlining_stops_at_recursion_and_at_reference_bombs() -> None:
    tool = pydantic_tool()
    assert list(tool.properties) == ["name", "home", "friends"] and tool.required == ["name", "home"]
    recursive = inline_refs(tool.parameters)
    assert recursive["properties"]["home"]["properties"]["city"] == {"title": "City", "type": "string"}
    assert recursive["properties"]["friends"]["items"] == {"$ref": "#/$defs/Person"}  # inside its own expansion: kept
    started = time.monotonic()
    inlined = inline_refs(ref_bomb(40))
    assert time.monotonic() - started < 2 and len(json.dumps(inlined)) < 1_000_000


def test_refs_compile_and_constrain_decoding(tiny_tokenizer) -> None:
    llguidance = pytest.importorskip("llguidance")
    import llguidance.hf

    from tooltune.runtime.constrained import tool_call_grammar
    from tooltune.formats import get_format

    tool = pydantic_tool()
    grammar = tool_call_grammar(get_format("hermes"), [tool, Tool.from_dict({"name": "bomb", "parameters": ref_bomb(30)})],
                                allow_text=False)
    ll = llguidance.hf.from_tokenizer(tiny_tokenizer, n_vocab=len(tiny_tokenizer), eos_token=[tiny_tokenizer.eos_token_id])

    def accepts(arguments: str) -> bool:
        matcher = llguidance.LLMatcher(ll, grammar, log_level=0)
        assert not matcher.is_error(), matcher.get_error()
        text = '<tool_call>\n{"name": "add_person", "arguments": ' + arguments + '}\n</tool_call>'
        ids = tiny_tokenizer.encode(text, add_special_tokens=False)
        return matcher.try_consume_tokens(ids) == len(ids)

    friend = '{"name": "Bo", "home": {"street": "x", "city": "y"}, "friends": []}'
    assert accepts('{"name": "Ann", "home": {"street": "Main 1", "city": "Oslo"}, "friends": [' + friend + "]}")
    assert not accepts('{"name": "Ann", "home": {"street": 5}}')  # $defs/Address says street is a string


# -- what is built to hurt is refused, naming the limit ------------------------------------------


@pytest.mark.parametrize("parameters, limit", [
    (nested(30), "max_depth"),                                                       # 61 levels of JSON
    (nested(500), "max_depth"),                                                      # a RecursionError before
    ({"type": "object", "properties": {"x": {"enum": [f"v{i}" for i in range(5000)]}}}, "max_enum_values"),
    ({"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(600)}}, "max_properties"),
    ({"type": "object", "properties": {"x": {"type": "string", "description": "d" * 70_000}}}, "max_bytes"),
    ({"type": "object", "properties": {"x": {"$ref": "https://example.com/schema.json"}}}, "not a local reference"),
    ({"type": "object", "properties": {"x": {"$ref": "other.json#/a"}}}, "not a local reference"),
    ({"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}}, "not a local reference that exists"),
    ({"type": "object", "properties": {"x": {"$dynamicRef": "#node"}}}, "$dynamicRef"),
    ({"type": "object", "properties": {"x": {"allOf": [{"$recursiveRef": "#"}]}}}, "$recursiveRef"),
])
def test_hostile_schemas_are_refused_fast_naming_the_limit(parameters: dict[str, Any], limit: str) -> None:
    started = time.monotonic()
    with pytest.raises(SchemaError, match="tool \\(hostile\\).*" + limit.replace("$", r"\$")):
        Tool.from_dict({"name": "hostile", "parameters": parameters}, where="tool")
    assert time.monotonic() - started < 1


def test_property_names_that_look_like_keywords_are_just_names() -> None:
    schema = {"type": "object", "properties": {"$ref": {"type": "string"}, "enum": {"type": "string"}}}
    assert Tool.from_dict({"name": "odd", "parameters": schema}).properties.keys() == {"$ref", "enum"}


def test_limits_are_far_above_real_schemas() -> None:
    assert SCHEMA_LIMITS.max_depth >= 40 and SCHEMA_LIMITS.max_enum_values >= 1000
    Tool.from_dict({"name": "ok", "parameters": nested(20)})
    Tool.from_dict({"name": "ok", "parameters": {"type": "object", "properties": {"x": {"enum": list(range(1000))}}}})


@pytest.mark.parametrize("name", ["", None, 5, ["x"]])
def test_a_tool_without_a_usable_name_is_a_catalog_error(name: Any) -> None:
    with pytest.raises(CatalogError, match="name"):
        Tool.from_dict({"name": name, "parameters": {"type": "object"}})


# -- tooltune serve: 200 or 400, never 500 ----------------------------------------------------------


def chat(client, tools: list[dict[str, Any]], **extra: Any):
    body = {"model": "base", "messages": [{"role": "user", "content": "Add Ann from Oslo"}], "tools": tools,
            "max_tokens": 16, **extra}
    return client.post("/v1/chat/completions", json=body)


def function(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": "d", "parameters": parameters}}


def test_serve_decodes_a_pydantic_schema_under_tool_choice_required(serve_client) -> None:
    pytest.importorskip("llguidance")
    response = chat(serve_client, [function("add_person", Person.model_json_schema())], tool_choice="required")
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    if choice["finish_reason"] == "tool_calls":
        assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["add_person"]
    else:  # the token cap cut the call short: what was written is still the grammar's
        assert choice["finish_reason"] == "length"
        assert choice["message"]["content"].startswith('<tool_call>\n{"name": "add_person')


@pytest.mark.parametrize("parameters, words", [
    (nested(100), "max_depth"),
    ({"type": "object", "properties": {"x": {"enum": [f"v{i}" for i in range(5000)]}}}, "max_enum_values"),
    ({"type": "object", "properties": {"x": {"$ref": "http://169.254.169.254/latest"}}}, "not a local reference"),
])
def test_serve_answers_400_naming_the_limit(serve_client, parameters: dict[str, Any], words: str) -> None:
    response = chat(serve_client, [function("t", parameters)], tool_choice="required")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "tools[0].function.parameters" and words in error["message"]


def test_serve_refuses_a_prompt_over_the_context_saying_by_how_much(serve_client) -> None:
    # 900 enum values pass the schema limits but render far past the base's 1,024 positions.
    tool = function("pick", {"type": "object", "properties": {"x": {"enum": [f"value-{i}" for i in range(900)]}}})
    started = time.monotonic()
    response = chat(serve_client, [tool])
    assert response.status_code == 400 and time.monotonic() - started < 10
    error = response.json()["error"]
    assert error["param"] == "messages" and error["code"] == "context_length_exceeded"
    assert "over the model's context of 1024 tokens by" in error["message"]


def test_serve_refuses_too_many_tools(serve_client) -> None:
    response = chat(serve_client, [function(f"t{i}", {"type": "object"}) for i in range(129)])
    assert response.status_code == 400 and "at most 128" in response.json()["error"]["message"]


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,                                    # nesting past Python's recursion limit
    '{"model": "base", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1' + "0" * 100_000 + "}",
    '{"model": "base", "messages": [{"role": "assistant", "tool_calls": [{"type": "function", "function": '
    '{"name": "x", "arguments": "' + "[" * 5000 + "]" * 5000 + '"}}]}]}',   # arguments: JSON inside JSON
])
def test_serve_hostile_bodies_are_4xx(serve_client, body: str) -> None:
    response = serve_client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text[:300]


# -- tools discover: a hostile server's tool list is a clear error, not a traceback ----------------


@pytest.mark.parametrize("kind, words", [
    ("empty-name", "name is empty"), ("deep", "max_depth"), ("enum", "max_enum_values"),
    ("remote-ref", "not a local reference"),
])
def test_discover_refuses_hostile_tools_with_a_clear_error(kind: str, words: str) -> None:
    import sys
    from pathlib import Path

    from tooltune.tools.discover import discover_mcp_stdio

    server = Path(__file__).parent / "servers" / "hostile_tools_server.py"
    with pytest.raises(CatalogError, match=words):
        discover_mcp_stdio([sys.executable, str(server), kind], timeout=60)


def test_tools_discover_prints_one_line_not_a_traceback(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from tooltune.tools.discover import discover_file

    server = Path(__file__).parent / "servers" / "hostile_tools_server.py"
    done = subprocess.run([str(Path(sys.executable).with_name("tooltune")), "tools", "discover", "-o", str(tmp_path / "c.json"),
                           "--mcp-stdio", f"{sys.executable} {server} empty-name", "--timeout", "60"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "CatalogError:" in done.stderr and "name is empty" in " ".join(done.stderr.split())  # rich wraps lines
    empty = tmp_path / "tools.json"
    empty.write_text(json.dumps({"tools": [{"name": "", "description": "x"}]}))
    with pytest.raises(CatalogError, match=r"tools\[0\]: name is empty"):
        discover_file(empty)


# -- property test: whatever a schema holds, each stage answers or refuses the documented way ------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KEYWORDS = ["type", "properties", "required", "items", "enum", "const", "$ref", "$defs", "definitions", "anyOf", "oneOf",
            "allOf", "not", "additionalProperties", "pattern", "format", "minimum", "maxLength", "default", "description",
            "prefixItems", "patternProperties", "if", "then", "else", "$id", "$anchor", "$schema"]
leaf = (st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6)
        | st.sampled_from(["object", "string", "integer", "array", "#", "#/$defs/a", "#/properties/x", "(?<", "[a-", "date",
                           "http://example.com/x", "a"]))
schemas = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(KEYWORDS) | st.sampled_from(["a", "x", "y"]), inner, max_size=4), max_leaves=20)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(schemas, st.dictionaries(st.sampled_from(["a", "x", "y"]), leaf | st.lists(leaf, max_size=2), max_size=3))
def test_any_schema_is_a_tool_or_a_catalog_error_and_never_breaks_a_later_stage(schema: Any, arguments: dict) -> None:
    from tooltune.runtime.constrained import tool_call_grammar
    from tooltune.formats import get_format
    from tooltune.formats.chat import COMPACT_TEMPLATE, render_chat
    from tests.conftest import build_tiny_tokenizer

    try:
        tool = Tool.from_dict({"name": "t", "parameters": schema})
    except CatalogError:
        return
    argument_problems(tool, arguments)  # a list of problems, whatever the arguments
    for template in (None, COMPACT_TEMPLATE):
        render_chat(_TOKENIZERS.setdefault(template, build_tiny_tokenizer(template)), [{"role": "user", "content": "x"}], [tool])
    if pytest.importorskip("llguidance"):
        tool_call_grammar(get_format("hermes"), [tool])


_TOKENIZERS: dict = {}
