"""The orchestrator against real publisher processes on 127.0.0.1: one answers slowly (the
router mounted in a team's own app), one returns a record its catalog rejects, one is down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.publish.services import (
    SECRET,
    free_port,
    read_json,
    start_publisher,
    stop,
    wait_ready,
    write_service,
)
from tooltune.collect import CollectConfig, collect_all
from tooltune.data.examples import read_jsonl
from tooltune.data.quarantine import read_quarantine
from tooltune.publish import AuditLog, issue_token
from tooltune.tools.catalog import ToolCatalog

TOOLTUNE = str(Path(sys.executable).parent / "tooltune")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """shop (anonymized, one corrupt record), calendar (slow: 0.4 s per request), weather (down)."""
    root = tmp_path_factory.mktemp("services")
    db = root / "audit.db"
    shop_dir = write_service(root, "shop", corrupt=True, anonymized=True, min_accuracy=0.9)
    calendar_dir = write_service(root, "calendar", min_accuracy=0.75)
    weather_dir = write_service(root, "weather")
    ports = {name: free_port() for name in ("shop", "calendar", "weather")}
    procs = {
        "shop": start_publisher(shop_dir, "shop", ports["shop"], db),
        "calendar": start_publisher(calendar_dir, "calendar", ports["calendar"], root / "calendar.db", slow_s=0.4),
        "weather": start_publisher(weather_dir, "weather", ports["weather"], root / "weather.db"),
    }
    try:
        for name, proc in procs.items():
            wait_ready(ports[name], proc)
        stop(procs["weather"])  # it ran; now it is down, as a crashed service would be
        yield {"root": root, "ports": ports, "db": db, "procs": procs}
    finally:
        for proc in procs.values():
            stop(proc)


def services_url(fleet, name: str) -> str:
    return f"http://127.0.0.1:{fleet['ports'][name]}"


def services_yaml(tmp_path: Path, ports: dict[str, int], **overrides) -> Path:
    token = issue_token(SECRET, subject="orchestrator", roles=["ml_orchestrator"], ttl_s=600,
                        audience=["shop", "calendar", "weather"])
    (tmp_path / "orchestrator.jwt").write_text(token)
    services = {
        "defaults": {"token_file": "orchestrator.jwt", "retries": 1, "backoff_s": 0.1, "timeout": 30, **overrides},
        "services": [f"http://127.0.0.1:{ports['shop']}",
                     {"url": f"http://127.0.0.1:{ports['calendar']}", "name": "calendar"},
                     f"http://127.0.0.1:{ports['weather']}"],
    }
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump(services))
    return path


def test_collects_the_others_quarantines_the_corrupt_record_and_reports_the_down_service(fleet, tmp_path):
    out = tmp_path / "collected"
    report = collect_all(CollectConfig.load(services_yaml(tmp_path, fleet["ports"])), out)
    by_service = {s.service or s.url: s for s in report.services}

    # The down service is reported, with the address and what was tried, and nothing is made up for it.
    [down] = report.failed
    assert down.url.endswith(str(fleet["ports"]["weather"])) and down.service is None
    assert "cannot connect" in down.error and "after 2 attempts" in down.error
    assert not (out / "weather").exists()

    shop, calendar = by_service["shop"], by_service["calendar"]
    assert shop.status == calendar.status == "ok"
    assert calendar.seconds >= 0.4 * 4  # well-known, catalog, two datasets: every request was slow, and waited for
    assert shop.received == {"training": 4, "test": 2} and shop.quarantined == {"training": 1, "test": 0}
    assert shop.held == {"training": 3, "test": 2} and calendar.held == {"training": 3, "test": 1}
    assert (shop.owner, shop.min_accuracy_required, shop.version) == ("shop-team@corp.io", 0.9, "shop-2026.11")
    assert shop.catalog_source.startswith("publisher:") and calendar.min_accuracy_required == 0.75

    [bad] = read_quarantine(out / "shop" / "quarantine.jsonl")
    assert bad.record["calls"][0]["name"] == "refund_everything"
    assert any("no tool named 'refund_everything'" in r for r in bad.reason)
    assert str(fleet["ports"]["shop"]) in bad.source

    # Anonymized at the source: the address in the request and in the call never left the service.
    collected = (out / "shop" / "training.jsonl").read_text()
    assert "ann.lee@corp.io" not in collected and "user1@example.com" in collected

    # One dataset: training of every service split train/val, each service's tests in holdout.
    dataset = out / "dataset"
    train = list(read_jsonl(dataset / "train.jsonl")) + list(read_jsonl(dataset / "val.jsonl"))
    holdout = list(read_jsonl(dataset / "holdout.jsonl"))
    assert sorted({e.service for e in train}) == ["calendar", "shop"] and len(train) == 6
    assert sorted(e.service for e in holdout) == ["calendar", "shop", "shop"]
    assert len(list(read_jsonl(dataset / "val.jsonl"))) >= 1  # small collections still leave training a val split
    assert all(e.meta["collected"]["url"].startswith("http://127.0.0.1:") for e in train)
    assert report.dataset["split_sizes"]["holdout"] == 3 and report.dataset["services_failed"] == [down.url]
    gates = read_json(dataset / "services.json")
    assert gates["shop"]["min_accuracy_required"] == 0.9 and gates["calendar"]["owner"] == "calendar-team@corp.io"
    assert {t["service"] for t in read_json(dataset / "catalog.json")["tools"]} == {"shop", "calendar"}
    assert read_json(out / "collect-report.json")["services"][2]["status"] == "failed"

    # Every pull was audited by the shop publisher, under the orchestrator's name.
    with_audit = AuditLog(f"sqlite:///{fleet['db']}")
    entries = with_audit.entries("shop")
    with_audit.close()
    assert {e.resource.split("?")[0] for e in entries} >= {"/mcp/catalog", "/mcp/training-dataset", "/mcp/test-dataset"}
    assert all(e.subject == "orchestrator" and e.outcome == "allowed" for e in entries)


def test_pulls_are_incremental_and_an_unchanged_dataset_answers_304(fleet, tmp_path):
    path = services_yaml(tmp_path, {k: v for k, v in fleet["ports"].items()})
    config = CollectConfig.load(path).model_copy(update={"services": CollectConfig.load(path).services[:1]})  # shop only
    out = tmp_path / "collected"
    first = collect_all(config, out)
    second = collect_all(config, out)  # since = the newest example held: nothing new, an empty page
    third = collect_all(config, out)  # the same query as last time, with its ETag: 304
    assert first.services[0].received == {"training": 4, "test": 2}
    assert second.services[0].received == {"training": 0, "test": 0} and second.services[0].status == "ok"
    assert third.services[0].status == "not_modified" and third.services[0].held == {"training": 3, "test": 2}
    state = read_json(out / "state.json")
    mark = state[config.services[0].url]["training"]
    assert mark["etag"] and mark["watermark"].startswith("2026-11-06")  # the newest record, the quarantined one included
    assert third.dataset["dataset_hash"] == first.dataset["dataset_hash"]


def test_a_timeout_is_retried_then_reported(fleet, tmp_path):
    config = CollectConfig.load(services_yaml(tmp_path, fleet["ports"], timeout=0.15))
    config = config.model_copy(update={"services": [config.services[1]]})  # the slow calendar only
    report = collect_all(config, tmp_path / "out")
    [failed] = report.failed
    assert failed.service == "calendar" and "no answer within 0.15 s" in failed.error and "2 attempts" in failed.error


def test_a_wrong_token_is_reported_not_retried(fleet, tmp_path):
    wrong = issue_token("another-key-of-the-right-length-32b+", subject="orchestrator", roles=["ml_orchestrator"],
                        audience="shop")
    config = CollectConfig.parse({"services": [{"url": f"http://127.0.0.1:{fleet['ports']['shop']}", "token": wrong,
                                                "retries": 3, "backoff_s": 5}]})
    report = collect_all(config, tmp_path / "out")
    [failed] = report.failed
    assert "HTTP 401" in failed.error and "signature" in failed.error and failed.seconds < 5  # no backoff waits


def test_collect_cli_reports_partial_failure_with_a_nonzero_status(fleet, tmp_path):
    path = services_yaml(tmp_path, fleet["ports"])
    run = subprocess.run([TOOLTUNE, "collect", "--services", str(path), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2, run.stderr
    assert "was not collected" in run.stdout and "cannot connect" in run.stdout
    assert json.loads((tmp_path / "out" / "dataset" / "report.json").read_text())["split_sizes"]["holdout"] == 3


def test_services_file_errors_name_the_field(tmp_path):
    from tooltune.errors import ConfigError

    path = tmp_path / "services.yaml"
    path.write_text("services:\n  - url: ftp://x\n  - {url: 'http://y', retries: -1, colour: red}\n")
    with pytest.raises(ConfigError) as info:
        CollectConfig.load(path)
    text = str(info.value)
    assert "services.0.url" in text and "http://" in text and "services.1.retries" in text and "services.1.colour" in text


# ---- the scheduled cycle on collected data: train on what the services publish, evaluate each
# service on its own tests, gate it on its own min_accuracy_required.

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    from tests.train.conftest import save_tiny_model

    torch.set_num_threads(1)
    return save_tiny_model(tmp_path_factory.mktemp("tiny_base"))


def pipeline_yaml(tmp_path: Path, services: Path, model: Path, **extra) -> Path:
    config = {
        "name": "assistant", "work_dir": "work", "collect": str(services),
        "registry_url": f"sqlite:///{tmp_path / 'registry.db'}",
        "train": {"base_model": str(model), "method": "full", "max_steps": 2, "batch_size": 2, "grad_accum": 1,
                  "eval_steps": 2, "save_steps": 2, "learning_rate": 1e-3, "gradient_checkpointing": False,
                  "max_length": 8192},  # the shop examples offer 8 long tool schemas
        "eval": {"limit": 3, "batch_size": 4, "max_new_tokens": 8, "agent": False},
        **extra,
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_pipeline_on_collected_data_gates_each_service_on_its_own_tests(fleet, tmp_path, tiny_model):
    from tooltune.pipeline import PipelineConfig, run_pipeline
    from tooltune.registry import Outcome, Registry

    services = services_yaml(tmp_path, fleet["ports"])
    raw = yaml.safe_load(services.read_text())
    raw["services"][1]["min_accuracy_required"] = 0.0  # calendar's bar, lowered here, is one a 2-step model meets
    services.write_text(yaml.safe_dump(raw))
    config = PipelineConfig.load(pipeline_yaml(tmp_path, services, tiny_model, gates={"min_irrelevance": None}))
    result = run_pipeline(config)

    names = [s.name for s in result.steps]
    assert names[:2] == ["collect", "data"] and "discover" not in names
    collect = result.steps[0].summary
    assert collect["services"]["shop"] == "ok" and [f["url"] for f in collect["failed"]] == [services_url(fleet, "weather")]
    decision = result.decision
    checks = {c.label: c for c in decision.checks}
    # Each service is held to its own publisher's bar, on its own tests.
    assert checks["shop/service_minimum"].threshold == 0.9 and not checks["shop/service_minimum"].passed
    assert checks["calendar/service_minimum"].threshold == 0.0 and checks["calendar/service_minimum"].passed
    assert decision.config.service_owners == {"shop": "shop-team@corp.io", "calendar": "calendar-team@corp.io"}
    # A 2-step random model cannot beat the base model it started from: the suite-wide check
    # blocks every service before any per-service fallback (the partial case is in test_fallback).
    assert decision.outcome is Outcome.BLOCKED and decision.fallback.strategy == "blocked_global"
    assert decision.fallback.failed_checks == {"overall": 1, "service_minimum": 1}
    with Registry(url=config.registry_url) as reg:
        [evaluation] = reg.evaluations("assistant", result.model.version)
        assert set(evaluation.metrics.per_service) == {"shop", "calendar"}
        assert reg.deployed("assistant", "calendar") is None and reg.deployed("assistant", "shop") is None

    # Nothing new published: the cycle re-runs without retraining, and the decision stands.
    again = run_pipeline(config)
    assert {s.name for s in again.steps if s.skipped} >= {"data", "train", "eval-base", "eval-candidate"}
    assert again.decision.id == decision.id


@pytest.mark.slow  # two more trainings and evaluations: minutes on a busy CPU
def test_specialize_trains_an_adapter_per_failing_service_on_its_own_data(fleet, tmp_path, tiny_model):
    from tooltune.pipeline import PipelineConfig, run_pipeline
    from tooltune.pipeline import collected
    from tooltune.registry import evaluate_gates

    services = services_yaml(tmp_path, fleet["ports"])
    config = PipelineConfig.load(pipeline_yaml(tmp_path, services, tiny_model, specialize=True, deploy=False,
                                               gates={"min_irrelevance": None}))
    first = run_pipeline(config)
    data = next(s for s in first.steps if s.name == "data")
    # Most services failing (both here) is the case for specialized adapters.
    gates = first.decision.config
    decision = evaluate_gates({"overall": 0.5, "per_service": {"shop": {"overall": 0.5}, "calendar": {"overall": 0.5}}},
                              None, gates.model_copy(update={"min_irrelevance": None}))
    assert decision.fallback.strategy == "specialize"
    catalog = ToolCatalog.load(data.path / "catalog.json")
    specialized = collected.specialize(config.model_copy(update={"gates": gates}), decision, data.path, catalog,
                                       data.summary, lambda step, state: None, [])
    assert sorted(s.service for s in specialized) == ["calendar", "shop"]
    for own in specialized:
        manifest = json.loads((own.run_dir / "manifest.json").read_text())
        assert "lora" in json.dumps(manifest)
        trained_on = list(read_jsonl(next(own.run_dir.parent.glob(f"data-{own.service}-*")) / "train.jsonl"))
        assert trained_on and {e.service for e in trained_on} == {own.service}
        check = next(c for c in own.decision.checks if c.name == "service_minimum")
        assert check.scope == own.service and check.threshold == gates.service_min_accuracy[own.service]
        assert not own.deployed  # deploy: false in this config; a pass would deploy to that service alone
