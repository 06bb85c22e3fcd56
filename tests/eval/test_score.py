"""Offline scoring: predictions file + data file -> results.jsonl + metrics.json."""

from __future__ import annotations

import json

import pytest

from tooltune.data.examples import Behavior, Example, ExpectedCall, Provenance, Source, write_jsonl
from tooltune.errors import DataError
from tooltune.eval.score import read_predictions, run_score, score_predictions
from tooltune.tools.catalog import Tool, ToolCatalog

CATALOG = ToolCatalog(tools=[
    Tool(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    Tool(name="get_time", parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
])


def example(city: str | None, origin: str) -> Example:
    calls = [ExpectedCall(name="get_weather", arguments={"city": city})] if city else []
    return Example(messages=[{"role": "user", "content": f"weather in {city}?"}], tools=["get_weather", "get_time"],
                   behavior=Behavior.CALLS if city else Behavior.NO_CALL, calls=calls,
                   provenance=Provenance(source=Source.CURATED, origin=origin))


EXAMPLES = [example("Paris", "cases.yaml:1"), example("Rome", "cases.yaml:2"), example(None, "cases.yaml:3")]


def write_predictions(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_run_score_writes_one_line_per_example_and_metrics(tmp_path):
    data = tmp_path / "test_phrasing.jsonl"
    write_jsonl(EXAMPLES, data)
    catalog = CATALOG.save(tmp_path / "catalog.json")
    predictions = write_predictions(tmp_path / "pred.jsonl", [
        {"id": EXAMPLES[0].id, "output": "[get_weather(city='paris')]"},
        {"id": "cases.yaml:3", "output": "[get_time(city='Oslo')]"},  # by provenance.origin
    ])
    metrics = run_score(data, predictions, "pythonic", tmp_path / "out", catalog_path=catalog)

    lines = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [(r["id"], r["correct"], r["reason"], r["category"]) for r in lines] == [
        (EXAMPLES[0].id, True, None, "multiple"),
        (EXAMPLES[1].id, False, "no_prediction", "multiple"),  # missing prediction: a failure, not skipped
        (EXAMPLES[2].id, False, "unexpected_call", "irrelevance"),
    ]
    assert {r["split"] for r in lines} == {"test_phrasing"}
    assert lines[1]["failure"] == "missing"
    assert lines[2]["predicted"] == ["get_time"]
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["exact_match"] == {"correct": 1, "total": 3, "accuracy": 1 / 3}
    assert saved == json.loads(metrics.to_json())


def test_unknown_prediction_id_is_an_error():
    with pytest.raises(DataError, match=r"1 prediction id\(s\) name no example: 'nope'"):
        score_predictions(EXAMPLES, {"nope": "[]"}, "pythonic", CATALOG)


def test_unknown_format_and_missing_catalog_fail_clearly():
    with pytest.raises(Exception, match="unknown tool-call format 'pythnic'"):
        score_predictions(EXAMPLES, {}, "pythnic", CATALOG)
    with pytest.raises(DataError, match="has no inline definition; pass the catalog"):
        score_predictions(EXAMPLES, {}, "pythonic")


@pytest.mark.parametrize("content, message", [
    ('{"id": "a", "output": "x"}\n{"id": "a", "output": "y"}\n', r"pred.jsonl:2: id 'a' appears twice"),
    ('{"id": "a", "output": "x"}\nnot json\n', r"pred.jsonl:2: not valid JSON"),
    ('{"id": "a", "text": "x"}\n', r'pred.jsonl:1: expected \{"id"'),
])
def test_bad_predictions_file_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "pred.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_predictions(path)
