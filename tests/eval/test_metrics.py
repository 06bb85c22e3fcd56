"""Metrics from hand-built results: each definition counts what docs/evaluation.md says."""

from __future__ import annotations

import json

from tooltune.data.examples import Behavior, Clarification, Example, ExpectedCall, Provenance, Source
from tooltune.eval.metrics import NONE, Failure, Metrics, compute_metrics
from tooltune.eval.score import score_output

TOOLS = [
    {"name": "get_weather", "description": "", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}},
    {"name": "get_time", "description": "", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}, "required": ["city"]}},
]


def example(calls=(), behavior=Behavior.CALLS, text="q", clarify=None) -> Example:
    return Example(messages=[{"role": "user", "content": text}], tools=["get_weather", "get_time"], inline_tools=TOOLS,
                   behavior=behavior, calls=list(calls), clarify=clarify, provenance=Provenance(source=Source.CURATED))


def score(ex: Example, text: str | None, split: str | None = "test"):
    return score_output(ex, text, "pythonic", ex.offered_tools(), split)


WEATHER = ExpectedCall(name="get_weather", arguments={"city": "Paris", "days": 2})
TIME = ExpectedCall(name="get_time", arguments={"city": "Oslo"})


def test_metrics_on_a_small_mixed_set():
    results = [
        score(example([WEATHER], text="a"), "[get_weather(city='Paris', days=2)]"),              # right
        score(example([WEATHER], text="b"), "[get_weather(city='Paris', days=3)]"),              # wrong value
        score(example([WEATHER], text="c"), "[get_time(city='Paris')]"),                          # wrong tool
        score(example([WEATHER, TIME], text="d"), "[get_time(city='Oslo'), get_weather(city='Paris', days=2)]"),
        score(example(behavior=Behavior.NO_CALL, text="e"), "No tool for that."),                 # right abstain
        score(example(behavior=Behavior.NO_CALL, text="f"), "[get_time(city='Oslo')]"),           # called anyway
        score(example(behavior=Behavior.CLARIFY, text="g", clarify=Clarification(question="?")), "Which city?"),
        score(example([TIME], text="h"), None, split="other"),                                    # no prediction
    ]
    m = compute_metrics(results)
    assert m.n == 8
    assert (m.exact_match.correct, m.exact_match.total) == (4, 8)
    # detection: 6 of 8 right (f called when it should abstain, h made no call)
    assert (m.tool_detection.correct, m.tool_detection.total) == (6, 8)
    assert (m.detection_call.correct, m.detection_call.total) == (4, 5)
    assert (m.detection_abstain.correct, m.detection_abstain.total) == (2, 3)
    # selection over the 4 expecting calls that parsed to calls: c picked the wrong tool
    assert (m.tool_selection.correct, m.tool_selection.total) == (3, 4)
    # parameters of same-name pairs: a (2 ok), b (1 ok, 1 wrong), d (3 ok)
    assert (m.parameter_accuracy.correct, m.parameter_accuracy.total) == (6, 7)
    assert m.per_parameter["get_weather.days"].model_dump() == {"correct": 2, "total": 3, "accuracy": 2 / 3}
    assert (m.parameter_example_accuracy.correct, m.parameter_example_accuracy.total) == (2, 3)
    assert (m.clarify_accuracy.correct, m.clarify_accuracy.total) == (1, 1)
    assert m.reasons == {"value_mismatch": 1, "wrong_function": 1, "unexpected_call": 1, "no_prediction": 1}
    assert m.failures == {"wrong": 3, "missing": 1}
    assert list(m.per_category) == ["multiple", "parallel_multiple", "irrelevance", "clarify"]
    assert m.per_category["irrelevance"].accuracy == 0.5
    assert {k: (v.correct, v.total) for k, v in m.per_split.items()} == {"other": (0, 1), "test": (4, 7)}
    assert (m.per_tool["get_weather"].calls.correct, m.per_tool["get_weather"].calls.total) == (2, 4)
    assert m.confusion["get_weather"] == {"get_time": 1, "get_weather": 3}
    assert m.confusion[NONE] == {NONE: 2, "get_time": 1}
    assert m.confusion["get_time"] == {NONE: 1, "get_time": 1}


def test_failure_classes():
    ex = example([WEATHER])
    assert score(ex, "[get_weather(city=").failure is Failure.MALFORMED
    # The pythonic parser sees prose, but a call is plainly there.
    assert score(ex, "Let me check: get_weather(city='Paris', days=2)").failure is Failure.PARSER_LOST
    # Another registered format reads the text: the model used the wrong format.
    hermes = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n</tool_call>'
    assert score(ex, hermes).failure is Failure.PARSER_LOST
    assert score(ex, "It will be sunny.").failure is Failure.WRONG
    assert score(ex, "[get_weather(city='Rome', days=2)]").failure is Failure.WRONG
    assert score(ex, None).failure is Failure.MISSING
    assert score(ex, "[get_weather(city='Paris', days=2)]").failure is None


def test_metrics_json_round_trips():
    m = compute_metrics([score(example([WEATHER]), "[get_weather(city='Paris', days=2)]")])
    data = json.loads(m.to_json())
    assert data["exact_match"] == {"correct": 1, "total": 1, "accuracy": 1.0}
    assert data["clarify_accuracy"]["accuracy"] is None
    assert data["latency_ms_p50"] is None
    assert Metrics.model_validate(data).exact_match.correct == 1
