"""Four-level validation (detection, parsing, tool, parameters) per example, per service, in the
metrics table, the comparison and the HTML report."""

from __future__ import annotations

import json

from rich.console import Console

from tooltune.data.examples import Behavior, Example, ExpectedCall, Provenance, Source
from tooltune.eval.compare import LEVELS, compare
from tooltune.eval.metrics import Level, compute_metrics, per_service
from tooltune.eval.present import metrics_table
from tooltune.eval.report import levels_table, render_html
from tooltune.eval.score import ScoreResult, score_output, write_results

TOOLS = [
    {"name": "Read", "description": "", "parameters": {"type": "object", "properties": {
        "file_path": {"type": "string"}}, "required": ["file_path"]}},
    {"name": "Grep", "description": "", "parameters": {"type": "object", "properties": {
        "pattern": {"type": "string"}}, "required": ["pattern"]}},
]
READ = ExpectedCall(name="Read", arguments={"file_path": "/workspace/README.md"})


def example(i: int, service: str, calls=(READ,), behavior=Behavior.CALLS) -> Example:
    return Example(service=service, messages=[{"role": "user", "content": f"{service} q{i}"}],
                   tools=["Read", "Grep"], inline_tools=TOOLS, behavior=behavior, calls=list(calls),
                   provenance=Provenance(source=Source.CURATED))


OUTPUTS = {
    "right": "[Read(file_path='/workspace/README.md')]",
    "wrong_value": "[Read(file_path='README.md')]",
    "wrong_tool": "[Grep(pattern='README')]",
    "malformed": "[Read(file_path=",
    "prose": "The README is at the root.",
}


def scored(service: str, kinds: list[str]):
    return [score_output(example(i, service), OUTPUTS[k], "pythonic", example(i, service).offered_tools())
            for i, k in enumerate(kinds)]


def test_each_output_passes_the_levels_up_to_its_first_failure():
    right, wrong_value, wrong_tool, malformed, prose = scored("code", list(OUTPUTS))
    assert right.levels == {Level.DETECTION: True, Level.PARSING: True, Level.TOOL: True, Level.PARAMETERS: True}
    assert list(wrong_value.levels.values()) == [True, True, True, False]
    assert list(wrong_tool.levels.values()) == [True, True, False, False]
    assert list(malformed.levels.values()) == [True, False, False, False]
    assert list(prose.levels.values()) == [False, False, False, False]
    abstain = example(9, "code", calls=(), behavior=Behavior.NO_CALL)
    assert score_output(abstain, "No tool needed.", "pythonic", abstain.offered_tools()).levels is None

    # The result line carries the four outcomes right after the reason code.
    line = wrong_tool.record()
    assert list(line)[:7] == ["id", "correct", "reason", "detection", "parsing", "tool", "parameters"]
    assert (line["reason"], line["detection"], line["tool"], line["service"]) == ("wrong_function", True, False, "code")
    assert score_output(abstain, "x", "pythonic", abstain.offered_tools()).record()["detection"] is None


def test_metrics_count_levels_overall_and_per_service():
    results = scored("code", ["right", "wrong_value", "wrong_tool", "malformed", "prose"]) + scored("shop", ["right", "right"])
    m = compute_metrics(results)
    assert [(getattr(m.levels, level.value).correct, getattr(m.levels, level.value).total) for level in Level] == [
        (6, 7), (5, 7), (4, 7), (3, 7)]
    code = m.per_service_levels["code"]
    assert [getattr(code.levels, level.value).correct for level in Level] == [4, 3, 2, 1]
    assert code.exact_match.total == 5 and code.reasons == {
        "value_mismatch": 1, "wrong_function": 1, "parse_failed": 1, "no_call": 1}
    assert m.per_service_levels["shop"].levels.parameters.accuracy == 1.0 and m.per_service_levels["shop"].reasons == {}
    # metrics.json keeps them, and the CLI table shows a row per service beside its reason codes.
    assert json.loads(m.to_json())["per_service_levels"]["code"]["levels"]["parsing"]["correct"] == 3
    console = Console(record=True, width=200)
    console.print(metrics_table(m))
    text = console.export_text()
    assert "four-level validation" in text
    code_row = next(line for line in text.splitlines() if line.strip("│ ").startswith("code"))
    assert "80.0%" in code_row and "20.0%" in code_row and "value_mismatch 1" in code_row


def test_comparison_and_report_show_levels_per_service(tmp_path):
    base = scored("code", ["prose", "malformed", "wrong_tool", "wrong_value"]) + scored("shop", ["prose", "right"])
    tuned = scored("code", ["right", "right", "wrong_value", "right"]) + scored("shop", ["right", "right"])
    for name, results in (("base", base), ("tuned", tuned)):
        write_results(ScoreResult(results=results, metrics=compute_metrics(results)), tmp_path / name)
    c = compare(tmp_path / "base", tmp_path / "tuned")
    assert [r.service for r in c.levels] == ["all", "code", "shop"]
    code = c.levels[1]
    assert code.n == 4 and list(code.levels) == list(LEVELS) == [level.value for level in Level]
    assert (code.levels["detection"].a, code.levels["detection"].b) == (0.75, 1.0)
    assert (code.levels["parsing"].a, code.levels["tool"].a, code.levels["parameters"].a) == (0.5, 0.25, 0.0)
    assert code.levels["parameters"].b == 0.75
    assert (code.reasons["value_mismatch"].a, code.reasons["value_mismatch"].b) == (1, 1)
    assert c.levels[0].n == 6 and c.levels[0].levels["parameters"].b == 5 / 6

    console = Console(record=True, width=220)
    console.print(levels_table(c))
    assert "75.0% → 100.0%" in console.export_text()
    page = render_html(c)
    assert "Four-level validation per service" in page and "<td>code</td><td>4</td>" in page


def test_old_result_lines_without_levels_leave_the_levels_out(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.jsonl").write_text(json.dumps({"id": "x", "correct": True, "reason": None, "category": "simple"}) + "\n")
    c = compare(tmp_path / "a", tmp_path / "b")
    assert c.levels == [] and "Four-level" not in render_html(c)


def test_per_service_scores_from_result_lines_are_the_metrics_own():
    """The registry's per-service breakdown (read back from results.jsonl) and metrics.json's
    per_service_levels are one computation: the same numbers from the same results."""
    results = scored("code", ["right", "wrong_value", "wrong_tool", "malformed", "prose"]) + scored("shop", ["right", "wrong_tool"])
    own = compute_metrics(results).per_service_levels
    lines = [json.loads(json.dumps(r.record())) for r in results]
    assert per_service(lines) == own
    code = own["code"]
    assert (code.exact_match.correct, code.exact_match.total) == (1, 5)
    # Read's calls: right, wrong value, wrong tool, not made (malformed markup pairs no call).
    assert (code.per_tool["Read"].correct, code.per_tool["Read"].total) == (1, 4) and code.per_category["multiple"].total == 5
    # Naming the services by example id instead: ids it does not list are left out.
    assert set(per_service(lines, {results[0].id: "other"})) == {"other"}
