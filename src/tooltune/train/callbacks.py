"""Trainer callbacks of the hf backend: a rich progress bar, the metrics.jsonl log and the time budget."""

from __future__ import annotations

import json
import math
import time
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

METRIC_NAMES = {"learning_rate": "lr"}
"""Renames from transformers' log keys to metrics.jsonl keys (the rest keep their names)."""


class MetricsLog(TrainerCallback):
    """Append one JSON line per log event to ``path``: step, epoch, loss, lr, tokens_per_s, eval_loss…

    ``tokens_per_s`` is measured between log events from TRL's cumulative ``num_tokens``. On resume,
    lines for steps after the checkpoint are dropped first: the killed run logged steps that the
    resumed run trains again.
    """

    def __init__(self, path: Path):
        self.path = path
        self._last: tuple[float, float] = (time.perf_counter(), 0.0)

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [line for line in _read_lines(self.path) if json.loads(line).get("step", 0) <= state.global_step]
        self.path.write_text("".join(line + "\n" for line in kept))
        self._last = (time.perf_counter(), 0.0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record: dict[str, Any] = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        record.update({METRIC_NAMES.get(k, k): v for k, v in logs.items()})
        if "num_tokens" in logs and "loss" in logs:
            now, seen = time.perf_counter(), float(logs["num_tokens"])
            last_time, last_seen = self._last
            if now > last_time and seen >= last_seen:
                record["tokens_per_s"] = round((seen - last_seen) / (now - last_time), 1)
            self._last = (now, seen)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


class RichProgress(TrainerCallback):
    """A rich progress bar over optimizer steps (replaces transformers' tqdm bar), on stderr."""

    def __init__(self) -> None:
        self._progress = None
        self._task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[status]}"), console=Console(stderr=True),
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=state.max_steps, completed=state.global_step, status="")
        self._status: dict[str, str] = {}

    def on_step_end(self, args, state, control, **kwargs):
        if self._progress is not None:  # total too: a time budget may have shortened the run
            self._progress.update(self._task, completed=state.global_step, total=state.max_steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._progress is None or not logs:
            return
        for key in ("loss", "eval_loss"):
            if key in logs:
                self._status[key] = f"{key} {logs[key]:.4f}"
        self._progress.update(self._task, status="  ".join(self._status.values()))

    def on_train_end(self, args, state, control, **kwargs):
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)
        self.close()

    def close(self) -> None:
        """Stop the live display (also after an exception, so the terminal is left usable)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


_clock = time.perf_counter  # module-level so a test can drive the budget with a fake clock


def budget_clock() -> float:
    """The time budget's clock (a fake one in tests)."""
    return _clock()


class TimeBudget(TrainerCallback):
    """Fit training into ``minutes`` of wall time on whichever machine runs it (counted from
    ``started``: :func:`tooltune.train.sft.train` passes the start of the run, loading included).

    A step count tuned on one CPU overruns on another (bf16 steps are ~8x slower on an AVX2-only
    EPYC than on an AMX Xeon). After ``probe_steps`` optimizer steps of this run, the time left
    divided by the measured step time gives the last step (never past the configured max_steps),
    and the learning-rate schedule is laid over that length, so the run still warms up and decays
    fully instead of stopping in the middle of its schedule. The first step is left out of the
    rate: it pays for warm-up (allocations, autocast caches, the first checkpoint's directory).
    Ten steps, not fewer: on the demo (bf16, AMX Xeon) steps 2-4 averaged 5.35 s against 4.6 s
    over the whole run (rows differ in length), and a 4-step probe gave away 10 of 150 steps.

    Steps can also slow down after the probe (a busier machine, longer rows): the demo's r 64 run
    probed 5.35 s a step and then averaged 6.25 s, 14.4 minutes for a 12.5-minute budget. So after
    every later step the last ``window`` steps' time re-projects the end, and a run that would
    overrun is shortened, its schedule re-laid again (never lengthened: the schedule has already
    decayed for the chosen length).
    """

    def __init__(self, minutes: float, probe_steps: int = 10, window: int = 10, *, started: float | None = None) -> None:
        self.budget_s = minutes * 60.0
        # When the budget's clock started (a _clock() reading): the start of the train call, so
        # that loading the model and tokenizing count too; None: when the training loop begins.
        self.started = started
        self.probe_steps = max(2, probe_steps)
        self.window = max(2, window)
        self.planned: int | None = None  # max_steps before the budget
        self.chosen: int | None = None
        self.step_s: float | None = None
        self.shortened: list[dict[str, Any]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self._begin = self.started if self.started is not None else _clock()
        # Step end times: the first step's end is the anchor of the rates (its own time is warm-up).
        self._ends: deque[float] = deque(maxlen=self.window + 1)
        self._steps = 0
        self.planned = state.max_steps

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        now = _clock()
        self._steps += 1
        self._ends.append(now)
        if self.chosen is None and self._steps >= self.probe_steps:
            self.step_s = (now - self._ends[0]) / (len(self._ends) - 1)
            self.chosen = _agreed(self._fits(state, now, self.step_s, state.max_steps))
            if self.chosen < state.max_steps:
                _stretch_schedule(lr_scheduler, state.max_steps, self.chosen)
                state.max_steps = self.chosen
        elif self.chosen is not None and state.global_step < self.chosen:
            recent = (now - self._ends[0]) / (len(self._ends) - 1)
            # Every rank reaches this on the same step (the choice is agreed), so the collective matches.
            shorter = _agreed(self._fits(state, now, recent, self.chosen))
            if shorter < self.chosen:
                _stretch_schedule(lr_scheduler, self.chosen, shorter)
                self.shortened.append({"at_step": state.global_step, "step_s": round(recent, 3), "chosen_steps": shorter})
                self.chosen = state.max_steps = shorter
        if self.chosen is not None and state.global_step >= self.chosen:
            control.should_training_stop = True

    def _fits(self, state, now: float, step_s: float, cap: int) -> int:
        """The last step that ends inside the budget at ``step_s`` a step, between now and ``cap``."""
        fits = state.global_step + int((self.budget_s - (now - self._begin)) // max(step_s, 1e-9))
        return max(state.global_step, min(cap, fits))

    def summary(self) -> dict[str, Any]:
        """What the budget decided, for the run's manifest."""
        return {"minutes": round(self.budget_s / 60.0, 3), "planned_steps": self.planned, "chosen_steps": self.chosen,
                "step_s": round(self.step_s, 3) if self.step_s is not None else None, "shortened": self.shortened}


def _agreed(steps: int) -> int:
    """Under DDP every rank measures its own clock; all must stop at the same step or the last
    collective hangs, so they take the smallest choice."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return steps
    import torch

    value = torch.tensor([steps], dtype=torch.long)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return int(value.item())


def _stretch_schedule(scheduler: Any, planned: int, steps: int) -> None:
    """Re-lay transformers' warmup+decay schedules (``LambdaLR`` over a ``partial`` that takes
    ``num_training_steps``) over ``steps`` instead of ``planned``; warm-up is scaled alike.

    transformers builds the scheduler once, from max_steps, before the first step; it has no API to
    change the length afterwards, so the partials are rebuilt here. A schedule without a length
    (constant) is left as it is.
    """
    lambdas = getattr(scheduler, "lr_lambdas", None) or []
    for i, fn in enumerate(lambdas):
        keywords = getattr(fn, "keywords", None)
        if not isinstance(fn, partial) or "num_training_steps" not in keywords:
            continue
        changed = {"num_training_steps": steps}
        if "num_warmup_steps" in keywords:
            changed["num_warmup_steps"] = math.ceil(keywords["num_warmup_steps"] * steps / planned)
        lambdas[i] = partial(fn.func, *fn.args, **{**keywords, **changed})
    if lambdas:  # the next step's rate was set from the old schedule as the last step ended: redo it
        rates = [base * fn(scheduler.last_epoch) for base, fn in zip(scheduler.base_lrs, lambdas)]
        for group, rate in zip(scheduler.optimizer.param_groups, rates):
            group["lr"] = rate
        scheduler._last_lr = rates  # what get_last_lr() (and so the logged lr) reads


def _read_lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []
