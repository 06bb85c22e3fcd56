"""The pipeline end to end on a tiny random model: every step, caching, gates, registry.

A random 2-layer model learns nothing in 3 steps, so the interesting checks are the machinery:
steps run once and are skipped when unchanged, nothing is registered twice, and a decision that
fails a gate blocks deployment and names the check."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.train.conftest import save_tiny_model
from tooltune.pipeline import PipelineConfig, run_pipeline
from tooltune.registry import Registry

TOOLTUNE = str(Path(sys.executable).parent / "tooltune")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    torch.set_num_threads(1)
    return save_tiny_model(tmp_path_factory.mktemp("tiny_base"))


def write_config(tmp_path: Path, tiny_model: Path, *, top: dict | None = None, **gates) -> Path:
    config = {**(top or {}),
        "name": "shop-assistant",
        "work_dir": "work",
        "registry_url": f"sqlite:///{tmp_path / 'registry.db'}",
        "services": [{"mcp_stdio": f"{TOOLTUNE} demo-server --service shop --data-dir {tmp_path / 'state'}"}],
        "data": {"synthetic": 120, "seed": 0, "semantic_dedup": False, "held_out_tools": ["get_orders"],
                 "max_near_dup_contamination": None},
        "train": {"base_model": str(tiny_model), "method": "full", "max_steps": 2, "batch_size": 2, "grad_accum": 1,
                  # The byte-level tiny tokenizer spells the shop's whole listing in ~4,400 tokens as JSON
                  # Schema, ~2,200 as compact signatures.
                  "tool_listing": "compact", "max_length": 4096,
                  "eval_steps": 2, "save_steps": 2, "learning_rate": 1e-3, "gradient_checkpointing": False},
        "eval": {"limit": 3, "batch_size": 4, "max_new_tokens": 8, "agent": False},
        "gates": gates,
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_pipeline_runs_caches_and_never_registers_twice(tmp_path, tiny_model):
    config = PipelineConfig.load(write_config(tmp_path, tiny_model, top={"max_minutes": 30}))
    first = run_pipeline(config)
    assert [s.name for s in first.steps] == ["discover", "data", "eval-base", "train", "eval-candidate", "compare", "register"]
    assert not any(s.skipped for s in first.steps)
    # The time target gave training what the base evaluation left of 30 minutes; the run took it.
    steps = {s.name: s for s in first.steps}
    budget = steps["train"].summary["max_minutes"]
    assert 25 < budget < 30 and steps["eval-base"].summary["seconds"] > 0
    assert json.loads(Path(steps["train"].summary["manifest"]).read_text())["training"]["time_budget"]["minutes"] == budget
    assert first.report_html.exists() and first.model.version == "1.0.0"
    assert first.decision is not None and first.decision.checks

    second = run_pipeline(config)  # another budget (less time is left), the same train step: skipped
    skipped = {s.name for s in second.steps if s.skipped}
    assert skipped == {"data", "train", "eval-base", "eval-candidate"}
    assert (second.model.name, second.model.version) == (first.model.name, first.model.version)
    assert second.decision.id == first.decision.id  # the decision stands; no duplicate decision either
    with Registry(url=config.registry_url) as reg:
        assert [m.version for m in reg.list_models("shop-assistant")] == ["1.0.0"]
        assert len(reg.decisions("shop-assistant", "1.0.0")) == 1
        # The comparison is with the base model, as it was run: its spec, its own scores, its folders.
        [comparison] = reg.comparisons("shop-assistant", "1.0.0")
        assert comparison.base == str(tiny_model) and not comparison.base_in_registry
        eval_base = next(s for s in first.steps if s.name == "eval-base").path
        assert comparison.base_metrics["overall"] == json.loads((eval_base / "metrics.json").read_text())["exact_match"]["accuracy"]
        assert comparison.details["base_dir"] == str(eval_base.resolve())
        assert comparison.suite_version == reg.get_model("shop-assistant", "1.0.0").dataset_version
        assert reg.get_dataset(comparison.suite_version).path == str(next(s for s in first.steps if s.name == "data").path.resolve())


def test_a_failing_gate_blocks_deployment_and_names_the_check(tmp_path, tiny_model):
    # Demanding 50 points over the base is a forced regression for a 2-step model.
    config = PipelineConfig.load(write_config(tmp_path, tiny_model, min_improvement_points=50))
    result = run_pipeline(config)
    assert not result.deployed
    failed = [c for c in result.decision.checks if not c.passed]
    assert failed and any(c.name.value == "overall" for c in failed)
    with Registry(url=config.registry_url) as reg:
        assert reg.deployed("shop-assistant") is None


def test_interrupted_training_resumes(tmp_path, tiny_model):
    """A train folder without its completion mark (a crash) is resumed, not restarted."""
    config = PipelineConfig.load(write_config(tmp_path, tiny_model))
    result = run_pipeline(config)
    train = next(s for s in result.steps if s.name == "train")
    (train.path / "_complete.json").unlink()
    again = run_pipeline(config)
    retrained = next(s for s in again.steps if s.name == "train")
    assert not retrained.skipped and retrained.path == train.path
