import pytest

from tooltune.errors import ConfigError
from tooltune.registry.gates import GLOBAL, CheckName, GateConfig, Outcome, evaluate_gates
from tooltune.registry.metrics import EvalMetrics


def by_label(decision):
    return {c.label: c for c in decision.checks}


def test_defaults_are_the_documented_ones():
    config = GateConfig()
    assert config.min_improvement_points == 0.0
    assert config.max_regression_points == 2.0
    assert config.critical_min == 0.98
    assert config.min_irrelevance == 0.8
    assert config.min_zero_shot is None
    assert config.critical_tools == [] and config.critical_categories == []


def test_first_deployment_has_nothing_to_beat(metrics):
    decision = evaluate_gates(metrics(0.9), None)
    assert decision.outcome is Outcome.DEPLOY and decision.passed
    overall = by_label(decision)["overall"]
    assert overall.passed and overall.baseline is None and "nothing deployed" in overall.message


def test_candidate_must_beat_the_deployed_overall(metrics):
    same = evaluate_gates(metrics(0.9), metrics(0.9))
    check = by_label(same)["overall"]
    assert same.outcome is Outcome.BLOCKED and not check.passed
    assert (check.observed, check.baseline, check.delta_points) == (0.9, 0.9, 0.0)

    better = evaluate_gates(metrics(0.91), metrics(0.9))
    assert better.passed

    strict = evaluate_gates(metrics(0.91), metrics(0.9), GateConfig(min_improvement_points=2))
    check = by_label(strict)["overall"]
    assert not check.passed and check.threshold == pytest.approx(0.92) and check.delta_points == pytest.approx(1.0)


def test_forced_category_regression_blocks_and_names_the_check(metrics):
    candidate = metrics(0.93, per_category={"simple": 0.99, "parallel": 0.80, "irrelevance": 0.95})
    deployed = metrics(0.90, per_category={"simple": 0.90, "parallel": 0.90, "irrelevance": 0.95})
    decision = evaluate_gates(candidate, deployed)
    assert decision.outcome is Outcome.BLOCKED and not decision.passed
    [failed] = decision.failed
    assert failed.name is CheckName.CATEGORY_REGRESSION and failed.subject == "parallel" and failed.scope == GLOBAL
    assert failed.observed == 0.80 and failed.baseline == 0.90 and failed.delta_points == pytest.approx(-10.0)
    assert failed.threshold == pytest.approx(0.88)
    assert "category_regression:parallel" in decision.summary()
    # every check is recorded, passing ones included
    labels = set(by_label(decision))
    assert {"overall", "irrelevance", "category_regression:simple", "category_regression:irrelevance"} <= labels


def test_regression_within_the_allowance_passes(metrics):
    candidate = metrics(0.92, per_category={"simple": 0.99, "parallel": 0.885, "irrelevance": 0.95})
    deployed = metrics(0.90, per_category={"simple": 0.90, "parallel": 0.90, "irrelevance": 0.95})
    assert evaluate_gates(candidate, deployed).passed  # -1.5 points ≤ 2.0


def test_category_missing_from_the_candidate_fails(metrics):
    candidate = metrics(0.95, per_category={"simple": 0.95, "irrelevance": 0.95})
    deployed = metrics(0.90)
    check = by_label(evaluate_gates(candidate, deployed))["category_regression:parallel"]
    assert not check.passed and check.observed is None and "same suite" in check.message


def test_critical_tools_need_the_minimum_and_no_regression(metrics):
    config = GateConfig(critical_tools=["create_payment", "refund"])
    candidate = metrics(0.95, per_tool={"create_payment": 0.96, "get_orders": 0.95})
    decision = evaluate_gates(candidate, metrics(0.90), config)
    checks = by_label(decision)
    assert not checks["critical_tool:create_payment"].passed
    assert checks["critical_tool:create_payment"].threshold == 0.98
    assert not checks["critical_tool:refund"].passed and "tool refund was not measured" in checks["critical_tool:refund"].message
    regression = checks["critical_tool_regression:create_payment"]  # 99% → 96%
    assert not regression.passed and regression.delta_points == pytest.approx(-3.0)
    assert decision.outcome is Outcome.BLOCKED
    # exactly the allowance (-2.0 points) passes
    at_limit = by_label(evaluate_gates(metrics(0.95, per_tool={"create_payment": 0.98}),
                                       metrics(0.90, per_tool={"create_payment": 1.0}), config))
    assert at_limit["critical_tool_regression:create_payment"].passed
    assert at_limit["critical_tool:create_payment"].passed


def test_critical_categories_and_irrelevance_minimums(metrics):
    config = GateConfig(critical_categories=["simple"], min_irrelevance=0.9)
    candidate = metrics(0.95, per_category={"simple": 0.95, "parallel": 0.95, "irrelevance": 0.85})
    checks = by_label(evaluate_gates(candidate, None, config))
    assert not checks["critical_category:simple"].passed
    assert not checks["irrelevance"].passed and checks["irrelevance"].observed == 0.85
    no_irrelevance = metrics(0.95, per_category={"simple": 0.99})
    assert not by_label(evaluate_gates(no_irrelevance, None))["irrelevance"].passed
    assert evaluate_gates(no_irrelevance, None, GateConfig(min_irrelevance=None)).passed


def test_zero_shot_is_checked_only_when_configured(metrics):
    assert "zero_shot:test_zero_shot" not in by_label(evaluate_gates(metrics(0.9), None))
    decision = evaluate_gates(metrics(0.9), None, GateConfig(min_zero_shot=0.75))
    check = by_label(decision)["zero_shot:test_zero_shot"]
    assert not check.passed and check.observed == 0.7 and check.threshold == 0.75


def _services(shop: float, calendar: float) -> dict:
    return {
        "shop": {"overall": shop, "per_category": {"simple": shop}, "per_tool": {"create_payment": 0.99}},
        "calendar": {"overall": calendar, "per_category": {"simple": calendar}, "per_tool": {"book": calendar}},
    }


def test_partial_decision_deploys_only_passing_services(metrics):
    candidate = metrics(0.93, per_service=_services(0.97, 0.85))
    deployed = metrics(0.90, per_service=_services(0.90, 0.90))
    # One of two services failing is 50%: partial only where the config allows that many.
    decision = evaluate_gates(candidate, deployed, GateConfig(critical_tools=["create_payment"], partial_below=0.51))
    assert decision.outcome is Outcome.PARTIAL and not decision.passed
    assert decision.deploy_services == ["shop"] and decision.keep_services == ["calendar"]
    assert {c.scope for c in decision.failed} == {"calendar"}
    checks = by_label(decision)
    assert not checks["calendar/service_regression"].passed
    assert checks["calendar/service_regression"].delta_points == pytest.approx(-5.0)
    assert checks["shop/critical_tool:create_payment"].passed  # critical tools are checked in their service


def test_global_failure_blocks_every_service(metrics):
    candidate = metrics(0.89, per_service=_services(0.97, 0.95))
    decision = evaluate_gates(candidate, metrics(0.90, per_service=_services(0.90, 0.90)))
    assert decision.outcome is Outcome.BLOCKED and decision.deploy_services == []
    assert decision.keep_services == ["calendar", "shop"]


def test_every_service_failing_blocks(metrics):
    candidate = metrics(0.93, per_service=_services(0.80, 0.80))
    decision = evaluate_gates(candidate, metrics(0.90, per_service=_services(0.90, 0.90)))
    assert decision.outcome is Outcome.BLOCKED


def test_service_baselines_override_the_deployed_breakdown(metrics):
    candidate = metrics(0.93, per_service=_services(0.93, 0.95))
    deployed = metrics(0.90, per_service=_services(0.90, 0.90))
    shop_now = {"overall": 0.97, "per_category": {"simple": 0.97}}  # shop runs a newer version
    decision = evaluate_gates(candidate, deployed, GateConfig(partial_below=0.51), service_baselines={"shop": shop_now})
    assert decision.outcome is Outcome.PARTIAL and decision.keep_services == ["shop"]


def test_gate_config_loads_from_yaml(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text("gates:\n  max_regression_points: 1.5\n  critical_tools: [create_payment]\n  min_zero_shot: 0.6\n")
    config = GateConfig.load(path)
    assert config.max_regression_points == 1.5 and config.critical_tools == ["create_payment"]
    assert config.min_zero_shot == 0.6 and config.critical_min == 0.98


def test_gate_config_errors_list_every_bad_field(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text("critical_min: 98\nmax_regression_points: -1\ncritcal_tools: [x]\n")
    with pytest.raises(ConfigError) as info:
        GateConfig.load(path)
    message = str(info.value)
    assert str(path) in message
    for field in ("critical_min", "max_regression_points", "critcal_tools"):
        assert field in message


def test_metrics_accept_report_shapes_and_refuse_percentages(metrics):
    parsed = EvalMetrics.coerce({"overall": {"correct": 45, "total": 50}, "n": 50,
                                 "per_category": {"simple": {"accuracy": 0.8, "n": 10}}})
    assert parsed.overall == 0.9 and parsed.per_category["simple"] == 0.8 and parsed.examples == 50
    with pytest.raises(ConfigError, match=r"per_tool.*93.*fractions"):
        EvalMetrics.coerce({"overall": 0.9, "per_tool": {"create_payment": 93}})


def test_metrics_load_from_an_eval_directory(tmp_path, metrics):
    import json

    (tmp_path / "metrics.json").write_text(json.dumps(metrics(0.88)))
    assert EvalMetrics.load(tmp_path).overall == 0.88
    with pytest.raises(ConfigError, match="metrics.json"):
        EvalMetrics.load(tmp_path / "missing")


def test_metrics_read_tooltune_eval_output_as_written(tmp_path):
    """The shape ``tooltune eval`` writes (rates, exact_match, per_tool calls/parameters, n)."""
    import json

    rate = lambda c, t: {"correct": c, "total": t, "accuracy": c / t if t else None}  # noqa: E731
    report = {
        "n": 40, "exact_match": rate(36, 40), "tool_detection": rate(39, 40),
        "per_category": {"simple": rate(19, 20), "irrelevance": rate(9, 10), "clarify": rate(0, 0)},
        "per_split": {"test_zero_shot": rate(36, 40)},
        "per_tool": {"create_payment": {"calls": rate(10, 10), "parameters": rate(28, 30)},
                     "refund": {"calls": rate(0, 0), "parameters": rate(0, 0)}},
        "confusion": {}, "latency_ms_p50": 120.5,
    }
    (tmp_path / "metrics.json").write_text(json.dumps(report))
    loaded = EvalMetrics.load(tmp_path, suite_version="data-3f2a")
    assert loaded.overall == 0.9 and loaded.examples == 40 and loaded.suite_version == "data-3f2a"
    assert loaded.per_category == {"simple": 0.95, "irrelevance": 0.9}   # clarify: nothing counted
    assert loaded.per_tool == {"create_payment": 1.0}                     # the calls rate
    assert loaded.split == "test_zero_shot"                               # the only split in the file
    assert EvalMetrics.load(tmp_path, split="holdout").split == "holdout"


def test_comparison_reads_tooltune_eval_rows():
    from tooltune.registry.metrics import ComparisonResult

    row = lambda kind, group, delta, w, l, t: {"kind": kind, "group": group, "delta": delta,  # noqa: E731
                                                "wins": w, "losses": l, "ties": t, "n": w + l + t}
    result = ComparisonResult.coerce({"label_a": "base", "label_b": "cand", "rows": [
        row("overall", "all", 0.05, 12, 2, 86), row("category", "parallel", -0.02, 1, 2, 17)]},)
    assert (result.wins, result.losses, result.ties) == (12, 2, 86)
    assert result.deltas == {"overall": 0.05, "category:parallel": -0.02}
