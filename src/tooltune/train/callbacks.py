"""Trainer callbacks of the hf backend: a rich progress bar and the metrics.jsonl log."""

from __future__ import annotations

import json
import time
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
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)

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


def _read_lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []
