"""BFCL v4 import: every case, every accepted value and optional marker, schemas kept verbatim."""

from __future__ import annotations

from pathlib import Path

import pytest

from tooltune.data.examples import Behavior, ExpectedCall
from tooltune.data.io import export_file, import_file
from tooltune.data.io.dialects import bfcl_to_json_schema, to_json_schema_tool
from tooltune.errors import DataError
from tooltune.tools.catalog import Tool

FIXTURES = Path(__file__).parents[2] / "fixtures" / "io" / "bfcl"


def by_origin(result):
    return {e.provenance.origin: e for e in result.examples}


def test_simple_python_from_the_installed_package():
    pytest.importorskip("bfcl_eval", reason="needs BFCL data: pip install --no-deps bfcl-eval==2026.3.23")
    result = import_file("bfcl", "simple_python")
    assert (len(result.examples), result.quarantine) == (400, [])
    assert all(e.behavior is Behavior.CALLS and e.meta["schema_dialect"] == "bfcl" for e in result.examples)
    case = by_origin(result)["simple_python_2"]  # {"x": [4], "y": [5], "z": ["", 0]}
    assert case.calls == [ExpectedCall(name="math.hypot", arguments={"x": 4, "y": 5}, alternatives={"z": [0]}, optional=["z"])]
    assert case.messages == [{"role": "user", "content": case.user_text}]


def test_accepted_values_and_optional_markers():
    result = import_file("bfcl", FIXTURES / "BFCL_v4_simple_python.json")
    cases = by_origin(result)
    # "unit": ["units", ""] -> canonical "units", may be left out.
    assert cases["simple_python_0"].calls[0] == ExpectedCall(
        name="calculate_triangle_area", arguments={"base": 10, "height": 5, "unit": "units"}, optional=["unit"])
    # Per-key values of a dict parameter expand to whole values; "" first means omitted by default.
    (db,) = cases["simple_python_89"].calls
    assert db.arguments["conditions"] == {"department": "Science", "school": "Bluebird High School"}
    assert db.alternatives == {"conditions": [{"department": "Science", "school": "Bluebird HS"}], "fetch_limit": [0]}
    assert "fetch_limit" not in db.arguments and db.optional == ["fetch_limit"]
    assert db.allowed("fetch_limit") == [0]
    # A list of dicts expands element by element.
    (query,) = cases["simple_python_96"].calls
    assert query.arguments["conditions"] == [{"field": "age", "operation": ">", "value": "25"},
                                             {"field": "job", "operation": "=", "value": "engineer"}]
    assert cases["simple_python_89"].meta["bfcl_ground_truth"][0]["db_fetch_records"]["fetch_limit"] == ["", 0]


def test_bad_cases_are_quarantined_with_file_and_line():
    result = import_file("bfcl", FIXTURES / "BFCL_v4_simple_python.json")
    path = FIXTURES / "BFCL_v4_simple_python.json"
    assert [(q.source, q.reason[0].split(" (")[0]) for q in result.quarantine] == [
        (f"{path}:5", "not valid JSON"),
        (f"{path}:6", "simple_python_no_answer: no possible answer with this id"),
    ]


def test_schemas_are_verbatim_and_tools_are_json_schema():
    case = by_origin(import_file("bfcl", FIXTURES / "BFCL_v4_simple_python.json"))["simple_python_89"]
    assert case.inline_tools[0]["parameters"]["type"] == "dict"
    (tool,) = case.offered_tools()
    assert tool.parameters["type"] == "object" and tool.properties["conditions"]["type"] == "object"


def test_irrelevance_is_no_call():
    result = import_file("bfcl", FIXTURES / "BFCL_v4_irrelevance.json")
    assert [(e.behavior, e.calls, e.provenance.origin) for e in result.examples] == [
        (Behavior.NO_CALL, [], "irrelevance_0"), (Behavior.NO_CALL, [], "irrelevance_1")]


def test_export_writes_the_json_schema_copy(tmp_path):
    result = import_file("bfcl", FIXTURES / "BFCL_v4_simple_python.json")
    out = tmp_path / "bfcl.jsonl"
    assert export_file("openai", result.examples, out).written == 4
    again = by_origin(import_file("openai", out, dataset="bfcl"))
    tool = again["bfcl:bfcl.jsonl:3"].offered_tools()[0]
    assert tool.parameters == bfcl_to_json_schema(result.examples[2].inline_tools[0]["parameters"])


@pytest.mark.parametrize(("category", "message"), [
    ("multi_turn_base", "multi-turn"),
    ("live_relevance", "no ground truth"),
    ("simple", "not a BFCL v4 category"),
])
def test_categories_that_cannot_be_imported_say_why(category, message):
    with pytest.raises(DataError, match=message):
        import_file("bfcl", category)


def test_bfcl_types_translate_to_json_schema():
    params = {"type": "dict", "required": ["a"], "properties": {
        "a": {"type": "float"}, "b": {"type": "tuple", "items": {"type": "dict", "properties": {"c": {"type": "any"}}}},
        "d": {"type": "HashMap"}, "e": {"type": "String"}, "f": {"type": "any", "description": "anything"},
    }}
    assert bfcl_to_json_schema(params) == {"type": "object", "required": ["a"], "properties": {
        "a": {"type": "number"}, "b": {"type": "array", "items": {"type": "object", "properties": {"c": {}}}},
        "d": {"type": "object"}, "e": {"type": "string"}, "f": {"description": "anything"},
    }}
    Tool.from_dict(to_json_schema_tool({"name": "t", "parameters": params}, "bfcl"))  # valid JSON Schema
    with pytest.raises(DataError, match=r"parameters.properties.x.type: BFCL type 'complex'"):
        bfcl_to_json_schema({"type": "dict", "properties": {"x": {"type": "complex"}}})
