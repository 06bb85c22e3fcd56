"""`tooltune status`: a real registry (SQLite) with one dataset, model and deployment, caches of
known sizes, read back through the CLI's --json output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tooltune.ops.status import collect_status, human_bytes, registry_status
from tooltune.registry.db import Registry
from tooltune.tools.catalog import ToolCatalog

TOOLTUNE = str(Path(sys.executable).parent / "tooltune")
SHOP = Path(__file__).parents[1] / "fixtures" / "catalogs" / "shop.json"


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A project folder with a registry, a tooltune model cache of 1,024 bytes in 2 files and a
    10-byte code graph; no Hugging Face cache."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry(url) as registry:
        dataset = registry.register_dataset(content_hash="abc123", catalog_hash="cat1", path=str(tmp_path / "data"),
                                            counts={"train": 40, "val": 5, "test_phrasing": 5})  # split_sizes
        model = registry.register_model("shop-assistant", kind="full", base_model="tiny-base", artifact_path="runs/full",
                                        catalog=ToolCatalog.load(SHOP), config={"learning_rate": 2e-3},
                                        dataset_version=dataset.version, evaluation={
                                            "suite_version": "s1", "split": "all", "overall": 0.9, "examples": 50,
                                            "per_category": {"simple": 0.9}, "per_tool": {"create_payment": 0.9},
                                            "per_split": {"test_phrasing": 0.9}})
        registry.deploy("shop-assistant", model.version, actor="test", force=True)
    cache = tmp_path / "cache"
    (cache / "models" / "m").mkdir(parents=True)
    (cache / "models" / "m" / "weights").write_bytes(b"x" * 1000)
    (cache / "gguf-hashes.json").write_bytes(b"y" * 24)
    (tmp_path / ".tooltune" / "graph").mkdir(parents=True)
    (tmp_path / ".tooltune" / "graph" / "graph.rdb").write_bytes(b"z" * 10)
    env = {"TOOLTUNE_DB_URL": url, "TOOLTUNE_CACHE": str(cache), "HF_HOME": str(tmp_path / "hf"), "COLUMNS": "200"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    return {"dir": tmp_path, "url": url, "version": model.version, "env": {**os.environ, **env}}


def test_status_json_reports_versions_device_registry_and_cache_sizes(workspace):
    out = subprocess.run([TOOLTUNE, "status", "--json"], capture_output=True, text=True, timeout=280,
                         env=workspace["env"], cwd=workspace["dir"])
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["python"] == platform.python_version()
    for name in ("torch", "transformers", "peft"):
        assert report["versions"][name] == metadata.version(name)
    import torch

    device = report["device"]
    if torch.cuda.is_available():
        assert device["kind"] == "cuda" and device["memory_bytes"] == torch.cuda.get_device_properties(0).total_memory
    else:
        assert device["kind"] in ("cpu", "mps")
        if device["kind"] == "cpu":
            assert device["count"] == len(os.sched_getaffinity(0))
    registry = report["registry"]
    assert registry["exists"] and registry["error"] is None
    assert registry["counts"] == {"models": 1, "datasets": 1, "jobs": 0, "evaluations": 1, "deployments": 1}
    assert registry["deployed"] == {"shop-assistant": {"*": workspace["version"]}}
    assert registry["models"][0]["ref"] == f"shop-assistant@{workspace['version']}"
    assert registry["models"][0]["live_services"] == ["*"]
    assert registry["datasets"] == [{"version": "abc123", "path": str(workspace["dir"] / "data"), "examples": 50}]
    assert device["torch_threads"] >= 1
    chosen = report["precision"]  # tests/conftest.py forces fp32; the real probe still runs once, for the figures
    probe_file = workspace["dir"] / "cache" / "precision-probe.json"
    assert (chosen["precision"], chosen["source"], chosen["probe_file"]) == ("fp32", "environment", str(probe_file))
    if device["kind"] == "cpu":
        assert chosen["probe"]["fp32_gflops"] > 0 and chosen["probe"]["bf16_gflops"] > 0 and not chosen["probe_cached"]
    caches = {c["name"]: c for c in report["caches"]}
    probe_bytes = probe_file.stat().st_size if probe_file.exists() else 0
    assert (caches["tooltune models"]["bytes"], caches["tooltune models"]["files"]) == (1024 + probe_bytes, 2 + (probe_bytes > 0))
    assert caches["hugging face"]["exists"] is False and caches["hugging face"]["bytes"] == 0
    assert caches["code graph"]["bytes"] == 10 and caches["code graph"]["path"] == str(workspace["dir"] / ".tooltune" / "graph")


def test_status_panel_names_the_deployed_model(workspace):
    from typer.testing import CliRunner

    from tooltune.cli import app

    out = CliRunner().invoke(app, ["status"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "tooltune status" in out.output
    probe_file = workspace["dir"] / "cache" / "precision-probe.json"  # written by the status run's probe
    size = human_bytes(1024 + (probe_file.stat().st_size if probe_file.exists() else 0))
    assert f"shop-assistant@{workspace['version']}" in out.output and size in out.output
    assert "auto → fp32" in out.output and "torch threads" in out.output


def test_a_missing_registry_is_reported_and_not_created(tmp_path):
    db = tmp_path / "none.db"
    status = registry_status(f"sqlite:///{db}")
    assert status.exists is False and status.counts == {}
    assert not db.exists()


def test_an_unreadable_registry_is_an_error_line_not_a_crash(tmp_path):
    db = tmp_path / "garbage.db"
    db.write_bytes(b"this is not a sqlite file" * 100)
    status = registry_status(f"sqlite:///{db}")
    assert status.exists and status.error and "DatabaseError" in status.error


def test_collect_status_in_process_matches_the_environment(workspace):
    report = collect_status(workspace["url"])
    assert report.registry.counts["models"] == 1
    assert human_bytes(1024) == "1.0 KiB" and human_bytes(512) == "512 B" and human_bytes(3 * 1024**3) == "3.0 GiB"
