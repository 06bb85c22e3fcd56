"""Production logs, feedback and schema drift of `tooltune serve`, in process (TestClient) on the
packaged hermes base: what is logged is what the data build reads, feedback lands as its outcome
and corrections, a broken disk never fails a request, and a breaking change routes traffic away
from the stale version with a warning."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tooltune.data.feedback import ingest_logs, load_corrections
from tooltune.registry import Registry
from tooltune.serve.app import create_app
from tooltune.serve.settings import ServeSettings
from tooltune.tools.catalog import ToolCatalog
from tooltune.tools.sources import ServiceSource

FIXTURES = Path(__file__).parents[1] / "fixtures"
CATALOG = ToolCatalog.load(FIXTURES / "catalogs" / "shop.json")
OFFERED = [CATALOG.get(n) for n in ("get_customer_by_email", "get_orders")]  # a short prompt: a CPU generates it fast
EMAIL_QUERY = "Look up the customer maria.garcia@example.com"

LOOPBACK = "http://127.0.0.1"  # the server answers loopback Host names only (TestClient sends "testserver")


def ask(client: TestClient, model: str = "base", service: str | None = None, **body):
    return client.post("/v1/chat/completions", headers={"X-Tooltune-Service": service} if service else {}, json={
        "model": model, "messages": [{"role": "user", "content": EMAIL_QUERY}],
        "tools": [t.to_openai() for t in OFFERED], "max_tokens": 96,
        "tool_choice": {"type": "function", "function": {"name": "get_customer_by_email"}}, **body})


def logged(log_dir: Path) -> list[dict]:
    return [json.loads(line) for f in sorted((log_dir / "requests").glob("*.jsonl")) for line in f.read_text().splitlines()]


@pytest.fixture
def logging_app(hermes_base, tmp_path):
    app = create_app(ServeSettings(model=str(hermes_base), log_dir=tmp_path / "logs", device="cpu"))
    with TestClient(app, base_url=LOOPBACK) as client:
        yield client, app, tmp_path / "logs"


def test_every_response_is_logged_in_the_format_the_data_build_reads(logging_app):
    client, app, log_dir = logging_app
    response = ask(client)
    assert response.status_code == 200, response.text
    body = response.json()
    streamed = ask(client, stream=True)
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
    assert app.state.request_log.requests.flush()
    first, second = logged(log_dir)
    assert first["id"] == body["id"] and first["model"] == "base" and first["tools"] == [t.name for t in OFFERED]
    call = body["choices"][0]["message"]["tool_calls"][0]["function"]
    assert first["calls"][0]["name"] == call["name"] == "get_customer_by_email"
    assert first["catalog_hash"] == ToolCatalog(tools=OFFERED).hash and first["latency_ms"] > 0
    assert "get_customer_by_email" in first["raw_output"]
    assert "maria.garcia" not in json.dumps(first) and "user1@example.com" in first["messages"][0]["content"]
    assert second["id"].startswith("chatcmpl-") and second["id"] != first["id"]  # the streamed answer too
    assert first["outcome"] in ("unrated", "error")  # nobody has judged it yet; error if the call does not fit
    load = ingest_logs(log_dir / "requests", CATALOG)
    assert not load.examples and len(load.review) + len(load.unrated) == 2  # unjudged answers never train the model
    health = client.get("/health").json()["request_log"]
    assert health["requests"]["written"] == 2 and health["requests"]["errors"] == 0


def test_feedback_updates_the_turn_and_writes_a_correction(logging_app):
    client, app, log_dir = logging_app
    response_id = ask(client).json()["id"]
    right = {"name": "get_customer_by_email", "arguments": {"email": "maria.garcia@example.com"}}
    answer = client.post("/v1/feedback", json={
        "response_id": response_id, "outcome": "failure", "satisfaction": 2, "corrected_call": right,
        "tool_results": [{"name": "get_customer_by_email", "is_error": True, "result": "No customer has that email."}],
        "comment": "copy the address from the message", "author": "reviewer"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"object": "feedback", "response_id": response_id, "outcome": "failure", "correction": True}
    app.state.request_log.requests.flush()
    app.state.request_log.corrections.flush()
    lines = [r for r in logged(log_dir) if r["id"] == response_id]
    assert [r["outcome"] for r in lines] in (["unrated", "failure"], ["error", "failure"])
    load = ingest_logs(log_dir / "requests", CATALOG)
    assert not load.examples and len(load.superseded) == 1
    assert any("rejected by the tool" in r for r in load.review[0].reason)
    fixes = load_corrections(log_dir / "corrections", CATALOG)
    [example] = fixes.examples
    assert example.meta["log_id"] == response_id and example.calls[0].arguments == {"email": "user1@example.com"}
    assert example.meta["explanation"] == "copy the address from the message" and example.provenance.author == "reviewer"


@pytest.mark.parametrize("body, param", [
    ({"outcome": "failure"}, "response_id"),
    ({"response_id": "x", "outcome": "meh"}, "outcome"),
    ({"response_id": "x", "outcome": "failure", "satisfaction": 9}, "satisfaction"),
    ({"response_id": "x", "outcome": "failure", "corrected_call": {"arguments": {}}}, "corrected_call.name"),
    ({"response_id": "x", "outcome": "failure", "rating": 5}, "rating"),
])
def test_malformed_feedback_is_a_400_naming_the_field(logging_app, body, param):
    client, _, _ = logging_app
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_feedback_on_an_unknown_response_is_a_404_and_a_correction_must_use_an_offered_tool(logging_app, hermes_base,
                                                                                             tmp_path):
    client, app, log_dir = logging_app
    response = client.post("/v1/feedback", json={"response_id": "chatcmpl-nobody", "outcome": "success"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "response_not_found"
    assert response.json()["error"]["param"] == "response_id"
    response_id = ask(client).json()["id"]
    wrong_tool = client.post("/v1/feedback", json={"response_id": response_id, "outcome": "failure",
                                                   "corrected_call": {"name": "teleport", "arguments": {}}})
    assert wrong_tool.status_code == 400 and wrong_tool.json()["error"]["param"] == "corrected_call.name"
    # After a restart the id is found in the log files.
    app.state.request_log.requests.flush()
    with TestClient(create_app(ServeSettings(model=str(hermes_base), log_dir=log_dir, device="cpu")), base_url=LOOPBACK) as restarted:
        assert restarted.post("/v1/feedback", json={"response_id": response_id, "outcome": "success"}).status_code == 200
    without = create_app(ServeSettings(model=str(hermes_base), device="cpu"))
    with TestClient(without, base_url=LOOPBACK) as plain:
        off = plain.post("/v1/feedback", json={"response_id": response_id, "outcome": "success"})
        assert off.status_code == 404 and off.json()["error"]["code"] == "feedback_unavailable"


def test_a_full_disk_is_logged_as_an_error_and_requests_still_succeed(hermes_base, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full to stand in for a full disk")
    requests = tmp_path / "logs" / "requests"
    requests.mkdir(parents=True)
    (requests / f"{dt.datetime.now(dt.timezone.utc).date().isoformat()}-000.jsonl").symlink_to("/dev/full")
    app = create_app(ServeSettings(model=str(hermes_base), log_dir=tmp_path / "logs", device="cpu"))
    with TestClient(app, base_url=LOOPBACK) as client:
        assert all(ask(client).status_code == 200 for _ in range(2))
        app.state.request_log.requests.flush()
        stats = client.get("/health").json()["request_log"]["requests"]
    assert stats["errors"] == 2 and stats["written"] == 0 and "No space left on device" in stats["last_error"]


# ---- drift --------------------------------------------------------------------------------------------


def renamed(catalog: ToolCatalog) -> ToolCatalog:
    """get_customer_by_email's ``email`` renamed to ``address``: a breaking change."""
    tools = []
    for t in catalog.tools:
        if t.name == "get_customer_by_email":
            props = {("address" if k == "email" else k): v for k, v in t.properties.items()}
            t = t.model_copy(update={"parameters": {**t.parameters, "properties": props, "required": ["address"]}})
        tools.append(t)
    return ToolCatalog(tools=tools)


@pytest.fixture
def deployed_registry(tmp_path, hermes_base, loras):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry(url) as registry:
        model = registry.register_model("shop-assistant", kind="adapter", base_model=str(hermes_base),
                                        artifact_path=str(loras["a"]), catalog=CATALOG, config={"run": "a"},
                                        evaluation={"suite_version": "s1", "split": "all", "overall": 0.5})
        registry.deploy("shop-assistant", model.version, actor="test", force=True)
    return url


def test_a_breaking_change_found_at_start_routes_the_service_to_the_base_with_a_warning(hermes_base, deployed_registry,
                                                                                         tmp_path):
    live = renamed(CATALOG).save(tmp_path / "live-tools.json")
    settings = ServeSettings(model=str(hermes_base), registry_url=deployed_registry, log_dir=tmp_path / "logs",
                             device="cpu", watch=[ServiceSource(file=live)], drift_interval=0)
    app = create_app(settings)
    before = None
    with TestClient(app, base_url=LOOPBACK) as client:
        deadline = time.monotonic() + 60
        while app.state.drift.last["checked_at"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        stale = ask(client, "shop-assistant", service="shop")
        other = ask(client, "shop-assistant", service="calendar")
        before = client.get("/health").json()["drift"]
    assert stale.status_code == 200 and stale.json()["model"] == "base"
    warning = stale.headers["X-Tooltune-Warning"]
    assert "shop-assistant@1.0.0 is stale for service shop" in warning and "answered by the base model" in warning
    assert "get_customer_by_email.email renamed to 'address'" in warning and "tooltune data migrate" in warning
    # Calendar's tools did not change (it has none here): its requests keep the deployed version.
    assert other.json()["model"] == "shop-assistant@1.0.0" and "X-Tooltune-Warning" not in other.headers
    assert before["stale"] == ["shop-assistant@1.0.0 (shop)"] and before["error"] is None
    with Registry(deployed_registry) as registry:
        assert registry.get_model("shop-assistant").stale_services == ["shop"]
    requested = [r for r in logged(tmp_path / "logs") if r.get("requested_model")]
    assert requested and requested[0]["model"] == "base" and requested[0]["requested_model"] == "shop-assistant"


def test_a_live_source_that_is_down_is_reported_and_the_last_result_stands(deployed_registry, tmp_path, caplog):
    from tooltune.serve.drift import DriftMonitor

    live = renamed(CATALOG).save(tmp_path / "live-tools.json")
    with Registry(deployed_registry) as registry:
        monitor = DriftMonitor(registry, [ServiceSource(file=live)], interval_minutes=0)
        [found] = monitor.check()
        live.unlink()  # the source is gone: the check fails, serving goes on with what was known
        assert monitor.check() == [found]
        status = monitor.status()
    assert status["stale"] == ["shop-assistant@1.0.0 (shop)"] and "live-tools.json" in status["error"]
    assert any("cannot read the live tools" in r.getMessage() for r in caplog.records)


def test_a_drift_is_logged_when_found_not_at_every_check(caplog, monkeypatch):
    from dataclasses import dataclass

    from tooltune.serve.drift import DriftMonitor

    @dataclass
    class Drift:  # the fields DriftMonitor reads of the registry's drift records
        model: str
        service: str
        stale: bool
        rating: str = "breaking"
        migrate_command: str = "tooltune data migrate ..."

        def summary(self) -> str:
            return f"{self.rating}: param_renamed"

    class Registry:
        drift = [Drift("shop-assistant@1.0.0", "shop", stale=True)]

        def check_live_models(self, catalogs):
            return list(self.drift)

    import tooltune.serve.drift as drift_module

    monkeypatch.setattr(drift_module, "discover_sources", lambda sources: {})
    monitor = DriftMonitor(Registry(), [], interval_minutes=0)
    with caplog.at_level("WARNING", logger=drift_module.logger.name):
        for _ in range(3):
            monitor.check()
        Registry.drift = [*Registry.drift, Drift("shop-assistant@1.0.0", "billing", stale=False, rating="minor")]
        monitor.check()
    stale = [r for r in caplog.records if "is stale" in r.getMessage()]
    changed = [r for r in caplog.records if "changed for" in r.getMessage()]
    assert len(stale) == 1 and len(changed) == 1
    assert monitor.status()["stale"] == ["shop-assistant@1.0.0 (shop)"]
