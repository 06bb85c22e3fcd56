"""Training runs unchanged under torchrun: two CPU processes (gloo) share each batch through DDP,
and only rank 0 writes the run directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.train.conftest import TRAIN_DATA

TORCHRUN = Path(sys.executable).parent / "torchrun"
REPO = Path(__file__).resolve().parents[2]


def _torchrun(module: str, tmp_path: Path, logs: Path, config: dict, env: dict | None = None) -> None:
    """``torchrun --nproc_per_node 2 -m MODULE --config train.yaml`` on ``config``; fails the test on a non-zero exit."""
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [str(TORCHRUN), "--nproc_per_node", "2", "--log-dir", str(logs), "--redirects", "3",
         "-m", module, "--config", str(path), "--no-progress"],
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
             **(env or {})},
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun is not installed next to this Python")
def test_two_processes_train_one_run_and_only_rank_0_writes_it(tiny_base, tmp_path):
    run_dir, logs = tmp_path / "run", tmp_path / "logs"
    _torchrun("tooltune.train", tmp_path, logs, {
        "base_model": str(tiny_base), "data_dir": str(TRAIN_DATA), "output_dir": str(run_dir), "max_steps": 3,
        "batch_size": 2, "grad_accum": 1, "eval_steps": 2, "save_steps": 2, "logging_steps": 1,
        "learning_rate": 1e-2, "gradient_checkpointing": False,
    })

    # Both ranks ran to the end; only rank 0 printed the result.
    stdout = {int(p.parent.name): p.read_text() for p in logs.glob("*/attempt_0/*/stdout.log")}
    assert set(stdout) == {0, 1}
    result = json.loads(stdout[0][stdout[0].index("{"):])
    assert result["global_step"] == 3 and "{" not in stdout[1]

    # One run: the global batch spans both ranks (3 steps x 2 rows x 2 ranks = 1.5 epochs of 8 examples).
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["metrics"]["epoch"] == 1.5
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3], "each step logged once, by rank 0"
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert {"adapter_model.safetensors", "tokenizer.json"} <= {p.name for p in run_dir.iterdir()}
    shutil.rmtree(logs)


@pytest.mark.parametrize(("name", "kind"), [("ddp.yaml", "MULTI_GPU"), ("fsdp.yaml", "FSDP")])
def test_accelerate_configs_load(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(Path(__file__).parents[2] / "configs" / "accelerate" / name))
    assert config.distributed_type.value == kind and config.mixed_precision == "no"  # precision comes from train.yaml
    if kind == "FSDP":
        fsdp = config.fsdp_config
        assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"


def _budget_run(tiny_base, tmp_path, env: dict | None = None) -> dict:
    """24 planned steps under a 2-minute budget, two ranks on budget_clock_main's fake clocks; the manifest."""
    run_dir, logs = tmp_path / "run", tmp_path / "logs"
    _torchrun("tests.train.budget_clock_main", tmp_path, logs, {
        "base_model": str(tiny_base), "data_dir": str(TRAIN_DATA), "output_dir": str(run_dir), "max_steps": 24,
        "max_minutes": 2.0, "batch_size": 2, "grad_accum": 1, "eval_steps": 100, "save_steps": 100,
        "logging_steps": 1, "learning_rate": 1e-2, "gradient_checkpointing": False,
    }, env)
    return json.loads((run_dir / "manifest.json").read_text())


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun is not installed next to this Python")
def test_ranks_that_measure_different_step_times_stop_at_the_same_step(tiny_base, tmp_path):
    # Rank 0's fake clock: 10 s a step, 12 steps fit in 2 minutes; rank 1's: 20 s a step, the budget
    # is spent at its 10th (measuring) step. One rank stopping early would leave the other waiting
    # in a collective.
    manifest = _budget_run(tiny_base, tmp_path)
    # Rank 1 at its 10th step: 20 s/step, 200 s of 120 spent -> no step left; rank 0 would take 12.
    assert manifest["training"]["global_step"] == 10
    assert manifest["training"]["time_budget"]["chosen_steps"] == 10


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun is not installed next to this Python")
def test_a_rank_that_slows_down_after_the_probe_shortens_the_run_for_both(tiny_base, tmp_path):
    # Both probes choose step 12 of 24 (100 s spent, 20 s left at 10 s a step). Then rank 1 takes
    # 20 s a step: after step 11 its last 10 steps average 11 s and only step 11 fits; rank 0
    # (still 10 s) would take 12. Both must stop at 11, or rank 0 waits in a collective forever.
    manifest = _budget_run(tiny_base, tmp_path, env={"BUDGET_CLOCK": "slowdown"})
    assert manifest["training"]["global_step"] == 11
    budget = manifest["training"]["time_budget"]
    # Rank 0 writes the manifest: its own rate, the agreed step.
    assert (budget["chosen_steps"], budget["shortened"]) == (11, [{"at_step": 11, "step_s": 10.0, "chosen_steps": 11}])
