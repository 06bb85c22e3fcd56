"""Gated deploy, rollback, archive, per-service (partial) deployments and history, on both backends."""

import pytest

from tooltune.errors import GateError, RegistryError
from tooltune.registry import Action, GateConfig, ModelStatus, Outcome


@pytest.fixture
def deployed_v1(register, registry, metrics):
    register("v1", evaluation=metrics(0.90))
    registry.deploy("shop-agent", "1.0.0", actor="alice", notes="first")
    return registry.get_model("shop-agent", "1.0.0")


def test_first_deploy_runs_the_gates_and_records_history(deployed_v1, registry):
    assert deployed_v1.status is ModelStatus.DEPLOYED and deployed_v1.live_services == ["*"]
    assert registry.deployed("shop-agent").version == "1.0.0"
    [decision] = registry.decisions("shop-agent", "1.0.0")
    assert decision.outcome is Outcome.DEPLOY and decision.baseline is None and decision.candidate == "shop-agent@1.0.0"
    [row] = registry.history("shop-agent")
    assert (row.action, row.version, row.actor, row.notes, row.decision_id) == (Action.DEPLOY, "1.0.0", "alice", "first", decision.id)
    with pytest.raises(RegistryError, match="already live for every service"):
        registry.deploy("shop-agent", "1.0.0", actor="alice")


def test_forced_regression_blocks_deployment_and_the_decision_says_why(deployed_v1, register, registry, metrics):
    regressed = metrics(0.93, per_category={"simple": 0.99, "parallel": 0.80, "irrelevance": 0.95})
    register("v2", evaluation=regressed)
    with pytest.raises(GateError, match=r"(?s)blocked.*FAILED category_regression:parallel: parallel 80.0% vs deployed 90.0%") as info:
        registry.deploy("shop-agent", "1.1.0", actor="ci")
    assert info.value.decision.outcome is Outcome.BLOCKED
    [decision] = registry.decisions("shop-agent", "1.1.0")
    [failed] = decision.failed
    assert (failed.name, failed.subject, failed.observed, failed.baseline) == ("category_regression", "parallel", 0.80, 0.90)
    assert decision.baseline == "shop-agent@1.0.0"
    assert registry.deployed("shop-agent").version == "1.0.0"
    assert len(registry.history("shop-agent")) == 1
    # a stricter config re-runs the gates; force overrides and says so in the history
    registry.deploy("shop-agent", "1.1.0", actor="bob", notes="hotfix", force=True)
    assert registry.deployed("shop-agent").version == "1.1.0"
    assert registry.history("shop-agent")[0].config == {"forced": True}


def test_gate_config_change_reruns_the_gates(deployed_v1, register, registry, metrics):
    register("v2", evaluation=metrics(0.92))
    assert registry.check_gates("shop-agent", "1.1.0").passed
    with pytest.raises(GateError, match="does not beat deployed 90.0% by more than 5 points"):
        registry.deploy("shop-agent", "1.1.0", actor="ci", gate_config=GateConfig(min_improvement_points=5))
    assert len(registry.decisions("shop-agent", "1.1.0")) == 2


def test_gates_compare_like_with_like(deployed_v1, register, registry, metrics):
    register("v2", evaluation=metrics(0.95, suite="suite-2"))
    with pytest.raises(RegistryError, match="deployed shop-agent@1.0.0 has no evaluation on suite 'suite-2'"):
        registry.deploy("shop-agent", "1.1.0", actor="ci")
    registry.record_evaluation("shop-agent", "1.0.0", metrics(0.91, suite="suite-2"))
    registry.deploy("shop-agent", "1.1.0", actor="ci")
    assert registry.deployed("shop-agent").version == "1.1.0"


def test_rollback_walks_back_through_the_history(deployed_v1, register, registry, metrics):
    register("v1", config={"run": 2}, evaluation=metrics(0.92))
    registry.deploy("shop-agent", "1.0.1", actor="alice")
    register("v1", config={"run": 3}, evaluation=metrics(0.94))
    registry.deploy("shop-agent", "1.0.2", actor="alice")

    back = registry.rollback("shop-agent", actor="bob", notes="latency spike")
    assert (back.action, back.version, back.config) == (Action.ROLLBACK, "1.0.1", {"from_version": "1.0.2"})
    assert registry.deployed("shop-agent").version == "1.0.1"
    assert registry.rollback("shop-agent", actor="bob").version == "1.0.0"
    with pytest.raises(RegistryError, match="no earlier .* to roll back to; shop-agent@1.0.0 stays live"):
        registry.rollback("shop-agent", actor="bob")
    actions = [(r.action.value, r.version) for r in registry.history("shop-agent")]
    assert actions == [("rollback", "1.0.0"), ("rollback", "1.0.1"), ("deploy", "1.0.2"), ("deploy", "1.0.1"),
                       ("deploy", "1.0.0")]
    # rolling forward again goes through the gates like any deploy
    registry.deploy("shop-agent", "1.0.2", actor="alice")
    assert registry.deployed("shop-agent").version == "1.0.2"


def test_rollback_skips_archived_versions(deployed_v1, register, registry, metrics):
    for run, accuracy in ((2, 0.92), (3, 0.94)):
        model = register("v1", config={"run": run}, evaluation=metrics(accuracy))
        registry.deploy("shop-agent", model.version, actor="alice")
    registry.archive("shop-agent", "1.0.1", actor="alice", notes="bad data")
    assert registry.rollback("shop-agent", actor="bob").version == "1.0.0"
    assert registry.history("shop-agent")[1].action is Action.ARCHIVE


def test_live_models_cannot_be_archived(deployed_v1, registry):
    with pytest.raises(RegistryError, match=r"shop-agent@1.0.0 is live for every service \('\*'\); deploy another"):
        registry.archive("shop-agent", "1.0.0", actor="alice")


def test_nothing_to_roll_back(register, registry):
    register("v1")
    with pytest.raises(RegistryError, match="nothing is deployed"):
        registry.rollback("shop-agent", actor="bob")


def _services(shop: float, calendar: float) -> dict:
    return {
        "shop": {"overall": shop, "per_category": {"simple": shop}, "per_tool": {"create_payment": 0.99}},
        "calendar": {"overall": calendar, "per_category": {"simple": calendar}},
    }


def test_partial_decision_keeps_the_previous_model_for_failing_services(register, registry, metrics):
    register("v1", evaluation=metrics(0.90, per_service=_services(0.90, 0.90)))
    registry.deploy("shop-agent", "1.0.0", actor="alice")
    register("v2", evaluation=metrics(0.93, per_service=_services(0.97, 0.85)))

    # One of two services failing is 50%: partial only where the gate config allows that many.
    decision = registry.check_gates("shop-agent", "1.1.0", GateConfig(partial_below=0.51), actor="ci")
    assert decision.outcome is Outcome.PARTIAL and decision.deploy_services == ["shop"]
    assert decision.keep_services == ["calendar"] and decision.id is not None
    with pytest.raises(GateError, match=r"(?s)partial: it allows only services shop.*services=\['shop'\]"):
        registry.deploy("shop-agent", "1.1.0", actor="ci")

    [row] = registry.apply_decision(decision, actor="ci")
    assert (row.service, row.version, row.previous_version) == ("shop", "1.1.0", "1.0.0")
    assert row.config == {"kept_services": ["calendar"]} and row.decision_id == decision.id
    assert registry.deployed("shop-agent", "shop").version == "1.1.0"
    assert registry.deployed("shop-agent", "calendar").version == "1.0.0"
    assert registry.deployed("shop-agent").version == "1.0.0"
    assert {k: m.version for k, m in registry.deployments("shop-agent").items()} == {"*": "1.0.0", "shop": "1.1.0"}

    # The next candidate is compared, per service, with the version serving that service.
    register("v3", evaluation=metrics(0.95, per_service=_services(0.96, 0.95)))
    decision = registry.check_gates("shop-agent", "2.0.0")
    shop = next(c for c in decision.checks if c.scope == "shop" and c.name == "service_regression")
    assert shop.baseline == 0.97 and shop.passed  # 1.1.0's shop accuracy, -1 point
    registry.apply_decision(decision, actor="ci")
    assert {k: m.version for k, m in registry.deployments("shop-agent").items()} == {"*": "2.0.0"}
    assert registry.history("shop-agent")[0].config == {"cleared_services": ["shop"]}

    # A service pointer rolls back on its own.
    back = registry.rollback("shop-agent", actor="bob")
    assert back.version == "1.0.0"


def test_service_rollback(register, registry, metrics):
    register("v1", evaluation=metrics(0.90, per_service=_services(0.90, 0.90)))
    registry.deploy("shop-agent", "1.0.0", actor="alice")
    register("v2", evaluation=metrics(0.93, per_service=_services(0.97, 0.85)))
    registry.deploy("shop-agent", "1.1.0", actor="ci", services=["shop"], gate_config=GateConfig(partial_below=0.51))
    assert registry.rollback("shop-agent", actor="bob", service="shop").version == "1.0.0"
    assert registry.deployed("shop-agent", "shop").version == "1.0.0"
    with pytest.raises(RegistryError, match="service 'calendar' has no deployment of its own"):
        registry.rollback("shop-agent", actor="bob", service="calendar")


def test_record_decision_from_the_pure_function(deployed_v1, register, registry, metrics):
    from tooltune.registry import evaluate_gates

    register("v2", evaluation=metrics(0.95))
    decision = evaluate_gates(metrics(0.95), metrics(0.90))
    stored = registry.record_decision("shop-agent", "1.1.0", decision, baseline_version="1.0.0", actor="pipeline")
    assert stored.id is not None and stored.baseline == "shop-agent@1.0.0"
    assert registry.decisions("shop-agent", "1.1.0") == [stored]
    registry.apply_decision(stored, actor="pipeline")  # uses the recorded decision: no new one
    assert len(registry.decisions("shop-agent", "1.1.0")) == 1
    assert registry.deployed("shop-agent").version == "1.1.0"


def test_a_newer_evaluation_reruns_the_gates(deployed_v1, register, registry, metrics):
    register("v2", evaluation=metrics(0.93, per_category={"simple": 0.99, "parallel": 0.80, "irrelevance": 0.95}))
    with pytest.raises(GateError):
        registry.deploy("shop-agent", "1.1.0", actor="ci")
    registry.record_evaluation("shop-agent", "1.1.0", metrics(0.93))  # fixed and re-evaluated
    registry.deploy("shop-agent", "1.1.0", actor="ci")
    assert [d.outcome.value for d in registry.decisions("shop-agent", "1.1.0")] == ["deploy", "blocked"]
