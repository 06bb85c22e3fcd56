"""``max_minutes``: the run's length comes from the step time measured on this machine, and the
learning-rate schedule is laid over that length (a fake clock makes the step time exact)."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from tooltune.train import callbacks
from tooltune.train.callbacks import _stretch_schedule


@pytest.fixture
def ten_seconds_per_call(monkeypatch):
    """The budget's clock advances 10 s each time it is read: once at train begin, once per step."""
    ticks = itertools.count(10, 10)
    monkeypatch.setattr(callbacks, "_clock", lambda: float(next(ticks)))


def _lrs(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["lr"] for row in rows if "lr" in row and "step" in row}


def test_the_steps_that_fit_the_budget_become_the_run_and_its_schedule_ends_there(quick_config, ten_seconds_per_call):
    from tooltune.train import train

    # Begin at t=10, the 10 measured steps end at 20 ... 110: 10 s a step (the first step is left
    # out of the rate), 100 s spent, 20 s of the 2 minutes left: two more steps, the run ends at
    # step 12 of 24.
    config = quick_config(max_steps=24, max_minutes=2.0, warmup_ratio=0.25, save_steps=100, eval_steps=100)
    result = train(config, progress=False)

    assert result.global_step == 12
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["training"]["time_budget"] == {"minutes": 2.0, "planned_steps": 24, "chosen_steps": 12, "step_s": 10.0,
                                                   "shortened": []}
    assert manifest["training"]["max_steps"] == 12
    # After the measurement, the rate is the cosine of a 12-step run (warm-up 3 = 0.25 of 12), not
    # the first half of the 24-step one: the run decays as a planned 12-step run would.
    reference = _scheduler("cosine", total=12, warmup=3)
    lrs = _lrs(config.output_dir)
    for step in (11, 12):  # the steps after the measurement; a logged lr is the one its step used
        assert lrs[step] == pytest.approx(1e-2 * reference.lr_lambdas[0](step - 1))
    assert lrs[12] < 0.05 * 1e-2


def test_a_budget_that_fits_every_step_changes_nothing(quick_config, ten_seconds_per_call):
    from tooltune.train import train

    config = quick_config(max_steps=12, max_minutes=10.0, save_steps=100, eval_steps=100)
    result = train(config, progress=False)

    assert result.global_step == 12
    budget = json.loads(result.manifest_path.read_text())["training"]["time_budget"]
    assert budget["planned_steps"] == budget["chosen_steps"] == 12


def test_steps_that_slow_down_after_the_probe_shorten_the_run_to_the_budget(quick_config, monkeypatch):
    from tooltune.train import train

    # Begin at t=0; 10 s steps through the probe (ends 10 ... 100), then 20 s steps. The probe
    # chooses step 18 (80 s left at 10 s); after each later step the last 10 steps' rate re-projects
    # the end: step 11 (t=120, 11 s) -> 16, step 12 (t=140, 12 s) -> 15, step 13 (t=160, 13 s) -> 14,
    # and step 14 ends at t=180: the 3-minute budget, not the 260 s step 18 would have taken.
    times = iter([0.0, *[10.0 * i for i in range(1, 11)], *[100.0 + 20.0 * i for i in range(1, 30)]])
    monkeypatch.setattr(callbacks, "_clock", lambda: next(times))
    config = quick_config(max_steps=30, max_minutes=3.0, warmup_ratio=0.1, save_steps=100, eval_steps=100)
    result = train(config, progress=False)

    assert result.global_step == 14
    budget = json.loads(result.manifest_path.read_text())["training"]["time_budget"]
    assert (budget["chosen_steps"], budget["step_s"]) == (14, 10.0)
    assert budget["shortened"] == [{"at_step": 11, "step_s": 11.0, "chosen_steps": 16},
                                   {"at_step": 12, "step_s": 12.0, "chosen_steps": 15},
                                   {"at_step": 13, "step_s": 13.0, "chosen_steps": 14}]
    # Each shortening re-lays the schedule: the last step still runs at a nearly decayed rate.
    assert _lrs(config.output_dir)[14] < 0.05 * 1e-2


def _scheduler(name, *, total, warmup):
    from transformers import get_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total)


@pytest.mark.parametrize("name", ["cosine", "linear"])
def test_stretching_lays_warmup_and_decay_over_the_new_length(name):
    stretched = _scheduler(name, total=100, warmup=10)
    _stretch_schedule(stretched, planned=100, steps=40)
    reference = _scheduler(name, total=40, warmup=4)
    for step in range(41):
        assert stretched.lr_lambdas[0](step) == pytest.approx(reference.lr_lambdas[0](step))
    assert stretched.lr_lambdas[0](40) == pytest.approx(0.0, abs=1e-12)


def test_a_schedule_without_a_length_is_left_alone():
    from transformers import get_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    constant = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=5)
    before = [constant.lr_lambdas[0](s) for s in range(20)]
    _stretch_schedule(constant, planned=100, steps=40)
    assert [constant.lr_lambdas[0](s) for s in range(20)] == before
