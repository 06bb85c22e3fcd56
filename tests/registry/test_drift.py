"""Catalog drift of deployed versions, the fallback it triggers, portable base specs and
comparisons with a base outside the registry, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3

import pytest

from tooltune.registry import Registry
from tooltune.tools.catalog import ToolCatalog


def _with_service(catalog: ToolCatalog, service: str = "shop") -> ToolCatalog:
    return ToolCatalog(tools=[t.model_copy(update={"service": service}) for t in catalog.tools])


def _renamed(catalog: ToolCatalog, tool: str, old: str, new: str) -> ToolCatalog:
    tools = []
    for t in catalog.tools:
        if t.name == tool:
            props = {(new if k == old else k): v for k, v in t.properties.items()}
            required = [new if r == old else r for r in t.required]
            t = t.model_copy(update={"parameters": {**t.parameters, "properties": props, "required": required}})
        tools.append(t)
    return ToolCatalog(tools=tools)


@pytest.fixture
def shop(catalogs):
    """v1 of the shop's tools, named service 'shop', and the same with a parameter renamed (breaking)."""
    v1 = _with_service(catalogs["v1"])
    return {"v1": v1, "renamed": _renamed(v1, "create_payment", "customer_id", "customer"),
            "reworded": _with_service(catalogs["v1b"]), "calendar": ToolCatalog.from_dict(
                {"tools": [{"name": "create_event", "description": "Add an event.", "service": "calendar"}]})}


def _deploy(registry, catalog, *, run: str, metrics) -> str:
    model = registry.register_model("shop-agent", kind="adapter", base_model="tiny", artifact_path=f"runs/{run}",
                                    catalog=catalog, config={"run": run}, evaluation=metrics(0.9))
    registry.deploy("shop-agent", model.version, actor="test", force=True)
    return model.version


def test_a_breaking_change_makes_the_deployed_version_stale_and_serving_falls_back(registry, shop, metrics):
    both = shop["v1"].merge(shop["calendar"])
    old = _deploy(registry, both, run="a", metrics=metrics)                    # 1.0.0, trained on v1
    new = _deploy(registry, both, run="b", metrics=metrics)                    # 1.0.1, same tools
    assert registry.serving("shop-agent", "shop").model.version == new

    drift = registry.check_drift("shop-agent", new, shop["renamed"].merge(shop["calendar"]))
    [shop_drift] = drift  # calendar is unchanged: no row for it
    assert shop_drift.service == "shop" and shop_drift.stale and shop_drift.rating == "breaking"
    assert shop_drift.changes[0]["kind"] == "param_renamed" and shop_drift.changes[0]["new_param"] == "customer"
    assert "create_payment.customer_id renamed to 'customer'" in shop_drift.summary()
    record = registry.get_model("shop-agent", new)
    assert record.stale_services == ["shop"]

    # Every earlier deployed version was trained on the same tools: nothing compatible, the base answers.
    serving = registry.serving("shop-agent", "shop")
    assert serving.fell_back and serving.model is None and serving.deployed.version == new
    assert serving.drift.summary() == shop_drift.summary()
    # Another service of the same model is not affected, nor are requests without a service.
    assert registry.serving("shop-agent", "calendar").model.version == new
    assert registry.serving("shop-agent").model.version == new
    assert registry.serving("nobody", "shop").deployed is None
    # The live tools are stored, so the catalog to migrate the data to can be rebuilt anywhere.
    live = registry.live_catalog("shop-agent", new)
    assert "customer" in live.get("create_payment").properties and "create_event" in live
    assert registry.catalog(shop_drift.live_catalog_hash).get("create_payment").required[-1] == "customer"
    assert old != new


def test_fallback_picks_the_newest_earlier_version_compatible_with_the_live_tools(registry, shop, metrics):
    _deploy(registry, shop["v1"], run="a", metrics=metrics)                    # 1.0.0: old tools
    compatible = _deploy(registry, shop["renamed"], run="b", metrics=metrics)  # 2.0.0: trained on the rename
    newest = _deploy(registry, shop["v1"], run="c", metrics=metrics)           # 3.0.0: back on the old tools
    registry.check_drift("shop-agent", newest, shop["renamed"])
    serving = registry.serving("shop-agent", "shop")
    assert serving.fell_back and serving.model.version == compatible


def test_minor_drift_warns_without_falling_back_and_a_match_clears_it(registry, shop, metrics):
    version = _deploy(registry, shop["v1"], run="a", metrics=metrics)
    [drift] = registry.check_drift("shop-agent", version, shop["reworded"])
    assert drift.rating == "patch" and not drift.stale
    serving = registry.serving("shop-agent", "shop")
    assert not serving.fell_back and serving.drift.rating == "patch"
    assert registry.check_drift("shop-agent", version, shop["v1"]) == []       # in sync again
    assert registry.get_model("shop-agent", version).drift == []


def test_the_base_model_spec_is_stored_not_the_local_cache_directory(registry, catalogs, tmp_path):
    cached = tmp_path / ".cache" / "tooltune" / "models" / "smollm2-135m-instruct-b179c9523d0e6a0f"
    model = registry.register_model("smol", kind="adapter", base_model=str(cached), artifact_path="runs/a",
                                    catalog=catalogs["v1"], config={})
    assert model.base_model == "pypi:smollm2-135m-instruct"
    again = registry.register_model("smol", kind="adapter", base_model="pypi:smollm2-135m-instruct",
                                    artifact_path="runs/a", catalog=catalogs["v1"], config={})
    assert again.version == model.version  # the same model, whichever form was given
    hf = registry.register_model("qwen", kind="adapter", base_model="Qwen/Qwen2.5-0.5B-Instruct", artifact_path="runs/q",
                                 catalog=catalogs["v1"], config={})
    assert hf.base_model == "Qwen/Qwen2.5-0.5B-Instruct"


def test_a_comparison_with_the_base_model_keeps_the_base_and_its_scores(registry, catalogs, metrics):
    candidate = registry.register_model("smol", kind="adapter", base_model="pypi:smollm2-135m-instruct",
                                        artifact_path="runs/a", catalog=catalogs["v1"], config={},
                                        evaluation=metrics(0.186))
    base = metrics(0.193, per_category={"irrelevance": 0.952, "simple": 0.0})
    record = registry.record_comparison(
        "pypi:smollm2-135m-instruct", candidate.ref,
        {"suite_version": "suite-1", "wins": 10, "losses": 11, "ties": 119, "deltas": {"overall": -0.7}},
        base_metrics=base, details={"base_dir": "/w/eval-base", "candidate_dir": "/w/eval-candidate"})
    assert record.base == "pypi:smollm2-135m-instruct" and not record.base_in_registry
    assert record.base_metrics["per_category"]["irrelevance"] == 0.952
    assert record.details["base_dir"] == "/w/eval-base"
    assert registry.get_comparison(record.id) == record
    assert registry.list_comparisons()[0].base == "pypi:smollm2-135m-instruct"
    assert registry.comparisons("smol")[0].id == record.id


def test_upgrading_an_old_registry_makes_cache_paths_portable(tmp_path, catalogs):
    """A registry written before 0003 (base_model = this machine's cache directory) reads the spec
    after the upgrade, and registering the same model again is still idempotent."""
    from alembic import command

    from tooltune.registry.engine import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url=url), "0002")
    cached = "/home/someone/.cache/tooltune/models/smollm2-135m-instruct-b179c9523d0e6a0f"
    _insert_old_model(tmp_path / "old.db", catalogs["v1"], cached)  # as the 0002-era code registered it
    with Registry(url) as upgraded:
        [model] = upgraded.list_models()
        assert model.base_model == "pypi:smollm2-135m-instruct"
        again = upgraded.register_model("smol", kind="adapter", base_model=cached, artifact_path="runs/a",
                                        catalog=catalogs["v1"], config={}, artifact_hash="a1")
        assert again.id == model.id


def _insert_old_model(db, catalog: ToolCatalog, base_model: str) -> None:
    import json

    from tooltune.tools.catalog import content_hash

    catalog_hash, config_hash = catalog.hash, content_hash({})
    fingerprint = content_hash({"catalog": catalog_hash, "dataset": None, "config": config_hash, "artifact": "a1",
                                "base_model": base_model, "kind": "adapter"})
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO catalogs (hash, tools, created_at) VALUES (?, ?, '2026-11-30 10:00:00')",
                     (catalog_hash, json.dumps(catalog.to_dict()["tools"])))
        conn.execute(
            "INSERT INTO models (name, version, major, minor, patch, kind, base_model, artifact_path, catalog_hash, "
            "config, config_hash, artifact_hash, fingerprint, status, created_at, updated_at) VALUES "
            "('smol', '1.0.0', 1, 0, 0, 'adapter', ?, 'runs/a', ?, '{}', ?, 'a1', ?, 'registered', "
            "'2026-11-30 10:00:00', '2026-11-30 10:00:00')", (base_model, catalog_hash, config_hash, fingerprint))
