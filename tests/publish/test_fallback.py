"""The fallback strategy of per-service gates: partial below 20% failing, blocked with the
failure pattern from 20% to 50%, blocked with specialized adapters suggested above 50%; and a
partial deployment in the registry that keeps the previous model for the failing service."""

from __future__ import annotations

import pytest

from tooltune.registry import GateConfig, Outcome, Registry, evaluate_gates
from tooltune.tools.catalog import ToolCatalog

from tests.publish.services import CATALOGS

SERVICES = ["billing", "calendar", "files", "search", "shop", "weather"]


def metrics(overall: float, services: dict[str, float], weak: dict[str, str] | None = None) -> dict:
    """A metrics.json shape; ``weak[service] = category`` puts that category 20 points lower."""
    weak = weak or {}
    per_service = {}
    for name, accuracy in services.items():
        categories = {"simple": accuracy, "parallel": accuracy}
        if name in weak:
            categories[weak[name]] = round(accuracy - 0.2, 6)
        per_service[name] = {"overall": accuracy, "per_category": categories}
    return {"suite_version": "collected-1", "overall": overall, "per_category": {"simple": overall, "irrelevance": 0.9},
            "per_service": per_service}


def gates(**kw) -> GateConfig:
    owners = {s: f"{s}-team@corp.io" for s in SERVICES}
    return GateConfig(service_min_accuracy={s: 0.8 for s in SERVICES}, service_owners=owners, **kw)


def test_one_of_six_failing_is_a_partial_deployment_with_its_owner_listed():
    candidate = metrics(0.9, {s: 0.9 for s in SERVICES} | {"files": 0.7})
    decision = evaluate_gates(candidate, None, gates())
    assert decision.outcome is Outcome.PARTIAL
    assert decision.keep_services == ["files"] and decision.deploy_services == [s for s in SERVICES if s != "files"]
    [failed] = decision.failed
    assert (failed.label, failed.observed, failed.threshold) == ("files/service_minimum", 0.7, 0.8)
    fallback = decision.fallback
    assert fallback.strategy == "partial" and fallback.owners == {"files": "files-team@corp.io"}
    assert fallback.failing_fraction == pytest.approx(1 / 6, abs=1e-6)
    assert "files (owner files-team@corp.io) keep their previous model" in fallback.message
    assert "fallback partial" in decision.summary()


def test_a_third_failing_is_blocked_and_the_shared_weak_category_is_named():
    services = {s: 0.9 for s in SERVICES} | {"files": 0.75, "search": 0.72}
    decision = evaluate_gates(metrics(0.88, services, weak={"files": "parallel", "search": "parallel"}), None, gates())
    assert decision.outcome is Outcome.BLOCKED and decision.deploy_services == []
    fallback = decision.fallback
    assert fallback.strategy == "blocked_pattern" and fallback.failing_services == ["files", "search"]
    assert fallback.common_categories["parallel"] == 2  # weak in both: the training data, not one service
    assert "parallel (2/2 services)" in fallback.message and fallback.failed_checks == {"service_minimum": 2}


def test_failures_without_anything_in_common_are_called_service_specific():
    services = {s: 0.9 for s in SERVICES} | {"files": 0.75, "search": 0.72}
    decision = evaluate_gates(metrics(0.88, services, weak={"files": "parallel", "search": "simple"}), None, gates())
    assert decision.fallback.strategy == "blocked_pattern"
    assert "service-specific" in decision.fallback.message


def test_most_services_failing_suggests_specialized_adapters():
    services = {s: 0.7 for s in SERVICES} | {"shop": 0.9, "weather": 0.9}
    decision = evaluate_gates(metrics(0.75, services), None, gates())
    assert decision.outcome is Outcome.BLOCKED
    assert decision.fallback.strategy == "specialize" and len(decision.fallback.failing_services) == 4
    assert "one adapter per failing service" in decision.fallback.message


def test_a_suite_wide_failure_blocks_before_any_fallback():
    decision = evaluate_gates(metrics(0.9, {s: 0.9 for s in SERVICES}), metrics(0.95, {s: 0.9 for s in SERVICES}), gates())
    assert decision.outcome is Outcome.BLOCKED and decision.fallback.strategy == "blocked_global"


def test_partial_deployment_keeps_the_previous_model_for_the_service_below_its_threshold(tmp_path):
    catalog = ToolCatalog(tools=[*CATALOGS["calendar"].tools, *CATALOGS["weather"].tools])
    config = gates()
    with Registry(f"sqlite:///{tmp_path / 'registry.db'}") as reg:
        def register(run: str, evaluation: dict):
            return reg.register_model("assistant", kind="adapter", base_model="tiny", artifact_path=f"runs/{run}",
                                      catalog=catalog, config={"run": run}, dataset_version="collected-1",
                                      artifact_hash=run, evaluation=evaluation)

        reg.register_dataset(content_hash="collected-1", catalog_hash=catalog.hash, path=str(tmp_path))
        v1 = register("v1", metrics(0.85, {s: 0.85 for s in SERVICES}))
        reg.deploy("assistant", v1.version, actor="ci")
        v2 = register("v2", metrics(0.9, {s: 0.9 for s in SERVICES} | {"weather": 0.78}))
        decision = reg.check_gates("assistant", v2.version, config, actor="pipeline")
        reg.apply_decision(decision, actor="pipeline", notes="weekly cycle")

        assert reg.deployed("assistant", "weather").version == v1.version  # below its 0.8: keeps what it had
        for service in SERVICES:
            if service != "weather":
                assert reg.deployed("assistant", service).version == v2.version
        # The recorded decision says which service and why, and reads the same from the database.
        [stored] = reg.decisions("assistant", v2.version)
        assert stored.outcome is Outcome.PARTIAL and stored.keep_services == ["weather"]
        why = {c.label: c for c in stored.failed}
        assert set(why) == {"weather/service_minimum", "weather/service_regression",
                            "weather/category_regression:simple", "weather/category_regression:parallel"}
        assert "78.0% < required 80.0%" in why["weather/service_minimum"].message
        assert why["weather/service_regression"].delta_points == pytest.approx(-7.0)
        assert stored.fallback.strategy == "partial" and stored.fallback.owners == {"weather": "weather-team@corp.io"}
        assert stored.fallback == decision.fallback
        assert stored.model_dump(mode="json")["fallback"]["failing_services"] == ["weather"]


def test_each_service_is_scored_on_its_own_test_scenarios(tmp_path):
    """The evaluation's per_service breakdown comes from results.jsonl joined with the holdout's service."""
    import json

    from tests.publish.services import REQUESTS, example
    from tooltune.data.examples import write_jsonl
    from tooltune.pipeline.steps import eval_metrics

    tests = [example("shop", *REQUESTS["shop"][3]), example("shop", *REQUESTS["shop"][4]),
             example("calendar", *REQUESTS["calendar"][3])]
    write_jsonl(tests, tmp_path / "holdout.jsonl")
    outcomes = [True, False, True]
    results = [{"id": e.id, "correct": ok, "category": e.category.value, "split": "holdout",
                "calls": [{"expected": e.calls[0].name, "predicted": e.calls[0].name if ok else None, "correct": ok}]}
               for e, ok in zip(tests, outcomes)]
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps(
        {"n": 3, "exact_match": {"correct": 2, "total": 3}, "per_category": {"multiple": {"correct": 2, "total": 3}}}))
    metrics = eval_metrics(tmp_path / "eval", "collected-1", tmp_path)
    assert metrics.overall == pytest.approx(2 / 3)
    assert metrics.per_service["shop"].overall == 0.5 and metrics.per_service["calendar"].overall == 1.0
    assert metrics.per_service["shop"].per_tool == {"get_latest_order": 1.0, "get_payment_status": 0.0}
    assert metrics.per_service["calendar"].per_category == {"multiple": 1.0}
