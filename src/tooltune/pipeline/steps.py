"""The steps of the loop on any data: discover → build data → evaluate the base → train →
evaluate the candidate → compare → register and gate (→ deploy when the gates pass).

Each step but discovery, compare and register is cached (:mod:`tooltune.pipeline.cache`) under a
key that hashes its section of ``pipeline.yaml`` (the fields the file set) and the keys of the
steps before it. :mod:`tooltune.pipeline.collected` adds the steps of collected data;
:mod:`tooltune.pipeline.run` runs them in order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tooltune.data.examples import read_jsonl
from tooltune.eval.metrics import per_service
from tooltune.pipeline.cache import Progress, StepRecord, cached, file_hash
from tooltune.pipeline.config import PipelineConfig, section_fields
from tooltune.registry.metrics import EvalMetrics
from tooltune.tools.catalog import ToolCatalog, content_hash


def discover(config: PipelineConfig, note: Progress, steps: list[StepRecord]) -> ToolCatalog:
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


def build_data(config: PipelineConfig, catalog: ToolCatalog, note: Progress, steps: list[StepRecord]) -> tuple[Path, dict]:
    """``data build`` with the data section; keyed by the catalog, the section and the data files' contents."""
    from tooltune.data.build import build_dataset
    from tooltune.data.config import FILE_LIST_FIELDS
    from tooltune.demo import build_server
    from tooltune.demo.chains import CHAINS

    files = [path for key in FILE_LIST_FIELDS for path in getattr(config.data, key)]
    key = content_hash({"catalog": catalog.hash, "data": section_fields(config.data), "files": [file_hash(p) for p in files]})
    out = config.work_dir / f"data-{key}"

    def run() -> dict:
        cfg = config.data.stage(catalog=config.work_dir / "catalog.json", output_dir=out)
        # Multi-step synthesis executes the demo's chains whose tools are all in the catalog.
        report = build_dataset(cfg, chains=CHAINS, server_factory=build_server)
        return {"dataset_hash": report.dataset_hash, "split_sizes": report.split_sizes, "examples": sum(report.split_sizes.values())}

    summary = cached("data", key, out, run, note, steps)
    return out, summary


def train(config: PipelineConfig, data_dir: Path, dataset: dict, note: Progress, steps: list[StepRecord], *,
          step: str = "train", budget: Callable[[], float | None] | None = None) -> Path:
    """Train with the train section on ``data_dir``; a crashed run continues from its checkpoint.
    ``budget()``, asked only when the step runs, gives minutes that replace the section's
    ``max_minutes`` for this run (the pipeline's time target: what is left): not part of the
    cache key, so an unchanged config still skips the step."""
    from tooltune.train import run_training

    key = content_hash({"dataset": dataset["dataset_hash"], "train": section_fields(config.train)})
    out = config.work_dir / f"{step}-{key}"

    def run() -> dict:
        # A folder without the completion mark is a crashed run: continue from its checkpoint.
        resume = out.exists() and any(out.iterdir())
        minutes = budget() if budget is not None else None
        override = {"max_minutes": minutes} if minutes is not None else {}
        result = run_training(config.train.stage(data_dir=data_dir, output_dir=out, resume=resume, **override))
        return {"run_dir": str(result.run_dir), "manifest": str(result.manifest_path), **override}

    cached(step, key, out, run, note, steps, keep_partial=True)
    return out


def evaluate(step: str, config: PipelineConfig, data_dir: Path, dataset: dict, model: str, adapter: Path | None,
             note: Progress, steps: list[StepRecord]) -> Path:
    """Evaluate ``model`` (with ``adapter``) on ``data_dir``'s test splits with the eval section."""
    from tooltune.eval.runner import run_eval

    key = content_hash({"dataset": dataset["dataset_hash"], "model": model, "adapter": adapter.name if adapter else None,
                        "eval": section_fields(config.eval)})
    out = config.work_dir / f"{step}-{key}"

    def run() -> dict:
        started = time.monotonic()
        result = run_eval(config.eval.stage(model=model, adapter=adapter, data_dir=data_dir, output_dir=out))
        # The seconds it took: the pipeline's time target estimates the candidate's evaluation from the base's.
        return {"exact_match": result.metrics.exact_match.accuracy, "n": result.metrics.n,
                "seconds": round(time.monotonic() - started, 1)}

    cached(step, key, out, run, note, steps)
    return out


def compare(config: PipelineConfig, base: Path, candidate: Path, note: Progress, steps: list[StepRecord]):
    from tooltune.eval.compare import compare as compare_runs
    from tooltune.eval.report import write_report

    out = config.work_dir / f"compare-{base.name.rsplit('-', 1)[-1]}-{candidate.name.rsplit('-', 1)[-1]}"
    comparison = compare_runs(base, candidate, labels=("base", "tuned"))
    started = time.monotonic()
    report = write_report(comparison, out)
    steps.append(StepRecord("compare", out.name, out, False, time.monotonic() - started, {"report": str(report)}))
    note("compare", "done")
    return comparison, report


def eval_metrics(eval_dir: Path, suite: str, data_dir: Path | None) -> EvalMetrics:
    """``eval_dir``'s metrics; with a collected ``data_dir``, plus a breakdown per service of the
    test scenarios (from results.jsonl, joined with the holdout's ``service`` by example id)."""
    metrics = EvalMetrics.load(eval_dir, suite_version=suite)
    if data_dir is None:
        return metrics
    service_of = {e.id: e.service for e in read_jsonl(data_dir / "holdout.jsonl")}
    records = [json.loads(line) for line in (eval_dir / "results.jsonl").read_text().splitlines() if line.strip()]
    breakdown = {service: {"overall": s.exact_match.accuracy, "per_category": {k: r.accuracy for k, r in s.per_category.items()},
                           "per_tool": {k: r.accuracy for k, r in s.per_tool.items()}}
                 for service, s in per_service(records, service_of).items()}
    return EvalMetrics.coerce({**metrics.model_dump(), "per_service": breakdown}, where=str(eval_dir))


def register(reg: Any, config: PipelineConfig, catalog: ToolCatalog, dataset: dict, data_dir: Path, run_dir: Path,
             evaluation: EvalMetrics, **noted: Any) -> Any:
    """Register the dataset and the run trained on it, with its evaluation; idempotent (a re-run
    returns the same version). ``noted`` joins the run's config in the registry
    (``specialized_for=service``)."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    reg.register_dataset(content_hash=dataset["dataset_hash"], catalog_hash=catalog.hash,
                         path=str(data_dir.resolve()), counts=dataset.get("split_sizes"))
    return reg.register_model(
        config.name, kind=_kind(manifest), base_model=str(config.train.base_model), artifact_path=run_dir,
        catalog=catalog, config={**manifest.get("config", {}), **noted}, dataset_version=dataset["dataset_hash"],
        artifact_hash=manifest.get("artifact_hash") or content_hash(manifest.get("training", {})), evaluation=evaluation)


def register_and_gate(config: PipelineConfig, catalog: ToolCatalog, dataset: dict, data_dir: Path, run_dir: Path,
                      base_eval: Path, cand_eval: Path, report: Path, note: Progress, steps: list[StepRecord], *,
                      collected_data: Path | None = None):
    """Register, then gate against the deployed model — or, before anything is deployed, against
    the base model — and deploy on a pass. The comparison is recorded as what it is: the
    candidate against the base model (the registry stores the base's spec and scores) with the
    evaluation folders it came from. ``collected_data``: a collected data dir, whose holdout says
    which service each test belongs to (the evaluations are then broken down per service)."""
    from tooltune.registry import Registry, evaluate_gates

    started = time.monotonic()
    note("register", "start")
    suite = dataset["dataset_hash"]

    def load(eval_dir: Path) -> EvalMetrics:
        return eval_metrics(eval_dir, suite, collected_data)

    with Registry(url=config.registry_url) as reg:
        model = register(reg, config, catalog, dataset, data_dir, run_dir, load(cand_eval))
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
    reg.record_comparison(str(config.train.base_model), model.ref,
                          ComparisonResult.coerce({**compared, "suite_version": suite}),
                          base_metrics=base_metrics, details=details)


def _live_metrics(reg: Any, live: Any, suite: str, evaluate_live: Callable[[], Path], load: Callable[[Path], Any]):
    """The deployed version's scores on this dataset. Evaluated here when it has none (the data
    changed since it was trained: new logs, new tools after a breaking change), and recorded, so
    the gates compare like with like."""
    evaluations = [e for e in reg.evaluations(live.name, live.version) if e.suite_version == suite]
    if evaluations:
        return evaluations[-1].metrics
    metrics = load(evaluate_live())
    reg.record_evaluation(live.name, live.version, metrics)
    return metrics


def _evaluate_live(config: PipelineConfig, data_dir: Path, dataset: dict, live: Any, note: Progress,
                   steps: list[StepRecord]) -> Path:
    """Evaluate the deployed version on this dataset: its base (the spec the registry keeps,
    resolved here) with its adapter, or its own weights."""
    from tooltune.runtime.names import resolve_model_name

    artifact = Path(live.artifact_path)
    if str(live.kind) == "adapter":
        return evaluate("eval-live", config, data_dir, dataset, resolve_model_name(live.base_model), artifact, note, steps)
    return evaluate("eval-live", config, data_dir, dataset, str(artifact if artifact.is_dir() else artifact.parent),
                    None, note, steps)


def _kind(manifest: dict) -> str:
    if manifest.get("backend") == "prompt":
        return "prompt"
    return "full" if manifest.get("method") == "full" else "adapter"
