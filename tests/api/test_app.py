"""The job API in process (TestClient): auth, validation errors, datasets, evaluations,
comparisons, deploy and rollback. Training jobs in real worker processes: test_jobs_live.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AUTH, TOKEN

REPO = Path(__file__).resolve().parents[2]
SHOP_CATALOG = REPO / "tests" / "fixtures" / "catalogs" / "shop.json"
SHOP_CURATED = REPO / "src" / "tooltune" / "demo" / "curated" / "shop.yaml"


@pytest.fixture
def make_client(tmp_path, sqlite_url):
    from tooltune.api.app import create_app
    from tooltune.api.settings import ApiSettings

    clients = []

    def make(**settings) -> TestClient:
        fields = {"token": TOKEN, "registry_url": sqlite_url, "work_dir": tmp_path / "work", **settings}
        client = TestClient(create_app(ApiSettings(**fields)), base_url="http://127.0.0.1")
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


MUTATING = [
    ("post", "/v1/jobs", {}), ("post", "/v1/jobs/1/cancel", None), ("post", "/v1/datasets", {"action": "export"}),
    ("post", "/v1/models/m/1.0.0/deploy", {}), ("post", "/v1/models/m/rollback", {}),
    ("post", "/v1/evaluations", {"model": "m", "dataset": "d"}),
]


@pytest.mark.parametrize("method,path,body", MUTATING)
def test_mutating_routes_need_the_token(client, method, path, body):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (path, headers, response.text)
        assert "bearer token" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


def test_reads_are_open_on_loopback_only(make_client):
    assert make_client().get("/v1/jobs").status_code == 200
    closed = make_client(host="0.0.0.0")
    assert closed.get("/v1/jobs").status_code == 401
    assert closed.get("/v1/jobs", headers=AUTH).status_code == 200


def test_no_configured_token_refuses_every_change(make_client):
    response = make_client(token=None).post("/v1/jobs/1/cancel", headers=AUTH)
    assert response.status_code == 401
    assert "TOOLTUNE_API_TOKEN" in response.json()["detail"]


def test_train_config_errors_are_400_naming_each_field(client, job_config):
    body = job_config(0, lora={"r": -1}, epocs=3)
    response = client.post("/v1/jobs", json=body, headers=AUTH)
    assert response.status_code == 400
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(fields) == {"max_steps", "lora.r", "epocs"}
    assert "greater than 0" in fields["max_steps"] and "got 0" in fields["max_steps"]
    assert "Extra inputs" in fields["epocs"]
    # The TrainConfig's own cross-field check, under its field, as for `tooltune train`.
    combo = client.post("/v1/jobs", json=job_config(4, eval_steps=3, save_steps=4, early_stopping_patience=2), headers=AUTH)
    assert combo.status_code == 400
    assert combo.json()["errors"][0]["field"] == "save_steps"
    assert "multiple of eval_steps" in combo.json()["errors"][0]["message"]
    bad_json = client.post("/v1/jobs", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert bad_json.status_code == 400


def test_a_pypi_base_is_checked_not_resolved_while_the_body_is_parsed(client, job_config, tmp_path, monkeypatch):
    """Parsing a job body stays cheap: a pypi: spec is checked by name and package (a bad one is a
    400 naming base_model); hashing and dequantizing the model is the worker's, when the job runs."""
    from tooltune.runtime import pretrained

    def refuse(*args, **kwargs):
        raise RuntimeError("a pypi: model was resolved while the request was parsed")

    monkeypatch.setattr(pretrained, "resolve_pypi_model", refuse)
    monkeypatch.setitem(pretrained.PACKAGED_MODELS, "fake", pretrained.PackagedModel(
        module="json", gguf="fake.gguf", install="pip install fake-gguf", license="none"))
    unknown = client.post("/v1/jobs", json=job_config(4, base_model="pypi:no-such-model"), headers=AUTH)
    assert unknown.status_code == 400
    [problem] = unknown.json()["errors"]
    assert problem["field"] == "base_model" and "not a packaged model" in problem["message"]
    # A known spec passes parsing untouched; this job is then refused for its data, before any worker.
    known = client.post("/v1/jobs", json=job_config(4, base_model="pypi:fake", data_dir=str(tmp_path / "nowhere")),
                        headers=AUTH)
    assert known.status_code == 400 and "data_dir" in known.json()["detail"]
    assert client.get("/v1/jobs").json() == []


def test_job_without_training_data_is_refused_before_any_worker(client, job_config, tmp_path):
    response = client.post("/v1/jobs", json=job_config(4, data_dir=str(tmp_path / "nowhere")), headers=AUTH)
    assert response.status_code == 400
    assert "data_dir" in response.json()["detail"] and "train.jsonl" in response.json()["detail"]
    assert client.get("/v1/jobs").json() == []


def test_unknown_ids_are_404_and_bad_parameters_400(client):
    for path in ("/v1/jobs/99", "/v1/datasets/nope", "/v1/comparisons/7", "/v1/jobs/99/events"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["detail"].startswith("no ")
    assert client.post("/v1/jobs/99/cancel", headers=AUTH).status_code == 404
    assert client.post("/v1/models/none/1.0.0/deploy", json={}, headers=AUTH).status_code == 404
    response = client.get("/v1/jobs/0")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "job_id"
    assert client.get("/v1/jobs", params={"limit": 100000}).status_code == 400
    assert client.post("/v1/jobs?register=bad%20name", json={}, headers=AUTH).status_code == 400


def test_datasets_build_export_and_import(client, tmp_path):
    built = client.post("/v1/datasets", headers=AUTH, json={
        "action": "build", "version": "shop-v1",
        "config": {"catalog": str(SHOP_CATALOG), "curated": [str(SHOP_CURATED)], "dedup_backend": "lexical"}})
    assert built.status_code == 200, built.text
    dataset = built.json()["dataset"]
    assert dataset["version"] == "shop-v1"
    assert dataset["counts"]["train"] > 0
    assert (Path(dataset["path"]) / "train.jsonl").is_file()
    assert built.json()["report"]["split_sizes"] == dataset["counts"]
    assert [d["version"] for d in client.get("/v1/datasets").json()] == ["shop-v1"]
    assert client.get("/v1/datasets/shop-v1").json()["content_hash"] == dataset["content_hash"]

    exported = client.post("/v1/datasets", headers=AUTH, json={"action": "export", "dataset": "shop-v1", "split": "train",
                                                               "format": "openai"})
    assert exported.status_code == 200, exported.text
    export = exported.json()["export"]
    lines = Path(export["path"]).read_text().splitlines()
    assert export["written"] == len(lines) > 0
    assert "messages" in json.loads(lines[0])

    imported = client.post("/v1/datasets", headers=AUTH, json={"action": "import", "format": "openai",
                                                               "source": export["path"], "catalog": str(SHOP_CATALOG)})
    assert imported.status_code == 200, imported.text
    record = imported.json()["dataset"]
    assert record["counts"]["train"] == export["written"]
    assert (Path(record["path"]) / "train.jsonl").is_file() and (Path(record["path"]) / "catalog.json").is_file()
    assert len(client.get("/v1/datasets").json()) == 2

    missing = client.post("/v1/datasets", headers=AUTH, json={"action": "export", "dataset": "shop-v1", "format": "bfcl"})
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"].endswith("format")
    no_catalog = client.post("/v1/datasets", headers=AUTH, json={"action": "build", "config": {"curated": [str(SHOP_CURATED)]}})
    assert no_catalog.status_code == 400 and "catalog is required" in no_catalog.json()["detail"]


def register_models(url: str, tiny_model: Path, data_dir: Path) -> None:
    """v1.0.0 is the random tiny Llama, v1.0.1 the tests' tiny base model (both full-weight
    directories): two real models that answer differently."""
    from tests.fixtures.tiny_base.recipe import TINY_BASE_DIR
    from tooltune.registry import Registry
    from tooltune.tools.catalog import ToolCatalog

    catalog = ToolCatalog.load(data_dir / "catalog.json")
    with Registry(url) as registry:
        registry.register_dataset(content_hash="fixture-data", catalog_hash=catalog.hash, path=data_dir, version="fixture")
        registry.register_model("assistant", kind="full", base_model="tiny", artifact_path=tiny_model, catalog=catalog,
                                config={"seed": 1}, dataset_version="fixture")
        registry.register_model("assistant", kind="full", base_model="tiny-base", artifact_path=TINY_BASE_DIR,
                                catalog=catalog, config={"seed": 2}, dataset_version="fixture")


def record_pipeline_comparison(url: str, api_comparison_id: int):
    """Record what `tooltune pipeline` records, from an API comparison's evaluation folders:
    assistant@1.0.1 against the base model `tiny-base`, whose scores here are 1.0.0's."""
    from tooltune.registry import Registry

    with Registry(url) as registry:
        made = registry.get_comparison(api_comparison_id)
        base_scores = registry.evaluations("assistant", "1.0.0")[0].metrics
        return registry.record_comparison(
            "tiny-base", "assistant@1.0.1", {"suite_version": made.suite_version, "wins": made.wins, "losses": made.losses,
                                          "ties": made.ties, "deltas": made.deltas},
            base_metrics=base_scores, details={**made.details, "split": None})


def test_evaluate_compare_deploy_and_roll_back(client, sqlite_url, tiny_model, data_dir):
    register_models(sqlite_url, tiny_model, data_dir)
    first = client.post("/v1/evaluations", headers=AUTH, json={
        "model": "assistant@1.0.0", "dataset": "fixture", "split": "test_phrasing", "max_new_tokens": 24})
    assert first.status_code == 200, first.text
    assert first.json()["comparison"] is None and "no baseline" in first.json()["notes"][0]
    assert first.json()["evaluation"]["examples"] == 11
    forced = client.post("/v1/models/assistant/1.0.0/deploy", headers=AUTH, json={"force": True, "notes": "first"})
    assert forced.status_code == 200, forced.text

    second = client.post("/v1/evaluations", headers=AUTH, json={
        "model": "assistant@1.0.1", "dataset": "fixture", "split": "test_phrasing", "max_new_tokens": 24})
    assert second.status_code == 200, second.text
    comparison = second.json()["comparison"]
    assert (comparison["base"], comparison["candidate"]) == ("assistant@1.0.0", "assistant@1.0.1")
    assert comparison["wins"] + comparison["losses"] + comparison["ties"] == 11
    decision = second.json()["decision"]
    assert decision["baseline"] == "assistant@1.0.0" and decision["checks"]

    view = client.get(f"/v1/comparisons/{comparison['id']}").json()
    assert [c["id"] for c in client.get("/v1/comparisons").json()] == [comparison["id"]]
    assert {b["category"] for b in view["per_category"]} >= {"simple", "irrelevance"}
    assert all(b["base"] is not None and b["candidate"] is not None for b in view["per_category"])
    assert view["decision"]["id"] == decision["id"]
    assert view["latency"]["latency_ms_p50"]["base"] > 0 and view["latency"]["latency_ms_p50"]["candidate"] > 0
    wrong = 11 - round(view["candidate_evaluation"]["overall"] * 11)
    assert len(view["failing"]) == wrong > 0
    assert all(f["output"] is not None and f["request"] for f in view["failing"])

    # As the pipeline records it: the candidate against the base model (outside the registry), its
    # scores kept with the comparison, the evaluation folders (every split) in its details.
    piped = record_pipeline_comparison(sqlite_url, comparison["id"])
    shown = client.get(f"/v1/comparisons/{piped.id}").json()
    assert shown["base"] is None and shown["comparison"]["base"] == "tiny-base"
    assert not shown["comparison"]["base_in_registry"]
    base_scores = piped.base_metrics["per_category"]
    assert {b["category"]: b["base"] for b in shown["per_category"]} == {c: base_scores.get(c) for c in
                                                                         [b["category"] for b in shown["per_category"]]}
    assert shown["base_evaluation"]["overall"] == piped.base_metrics["overall"]
    assert len(shown["failing"]) == wrong and shown["latency"]["latency_ms_p50"]["candidate"] > 0

    deploy = client.post("/v1/models/assistant/1.0.1/deploy", headers=AUTH, json={})
    if decision["outcome"] == "blocked":
        assert deploy.status_code == 409
        assert deploy.json()["decision"]["outcome"] == "blocked"
        deploy = client.post("/v1/models/assistant/1.0.1/deploy", headers=AUTH, json={"force": True})
    assert deploy.status_code == 200, deploy.text
    models = {m["version"]: m for m in client.get("/v1/models").json()}
    assert models["1.0.1"]["live_services"] == ["*"] and models["1.0.1"]["status"] == "deployed"
    assert models["1.0.0"]["live_services"] == []
    assert client.get("/v1/stats").json()["deployed"] == ["assistant@1.0.1"]

    again = client.post("/v1/models/assistant/1.0.1/deploy", headers=AUTH, json={"force": True})
    assert again.status_code == 409 and "already live" in again.json()["detail"]
    rolled = client.post("/v1/models/assistant/rollback", headers=AUTH, json={"notes": "back"})
    assert rolled.status_code == 200 and rolled.json()["version"] == "1.0.0"
    assert {m["version"]: m["live_services"] for m in client.get("/v1/models").json()} == {"1.0.1": [], "1.0.0": ["*"]}


def test_dashboard_and_schema_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "tooltune dashboard" in page.text
    assert client.get("/static/app.js").status_code == 200
    chart = client.get("/static/vendor/chart.umd.min.js")
    assert chart.status_code == 200 and "Chart.js v4" in chart.text[:200]
    schema = client.get("/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/{job_id}/events", "/v1/evaluations", "/v1/comparisons/{comparison_id}"} <= set(schema["paths"])
    assert "TrainConfig" in schema["components"]["schemas"]
