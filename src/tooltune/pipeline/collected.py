"""The pipeline on collected data (``collect: services.yaml`` in pipeline.yaml).

Instead of discover + data build, the data step is a ``tooltune collect`` run: each service's
published training examples and test scenarios, validated against its catalog. Evaluation then
scores every service on its own test scenarios (the ``holdout`` split, each example keeping its
``service``) and the gates hold each service to its publisher's ``min_accuracy_required``. When
the gates block with strategy ``specialize`` and ``specialize: true``, each failing service gets
a LoRA adapter trained on its own data, gated on its own tests, and deployed to it alone.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tooltune.data.examples import Example, read_jsonl, write_jsonl
from tooltune.data.split import move_one_to_val
from tooltune.errors import DataError
from tooltune.pipeline.cache import Progress, StepRecord, cached
from tooltune.pipeline.config import PipelineConfig
from tooltune.pipeline.steps import eval_metrics, evaluate, register, train
from tooltune.registry.gates import GateConfig, GateDecision
from tooltune.tools.catalog import ToolCatalog, content_hash

COLLECTED = "collected"
_SPLITS = ("train", "val", "holdout")


@dataclass
class Specialized:
    """A failing service's own adapter: where it was trained, its version and its gate decision."""

    service: str
    version: str
    run_dir: Path
    decision: GateDecision
    deployed: bool


def collect_data(config: PipelineConfig, note: Progress, steps: list[StepRecord]) -> tuple[ToolCatalog, Path, dict]:
    """Collect (always: pulls are incremental), then copy the dataset into a keyed data folder
    so that training and evaluation are skipped when nothing new was collected."""
    from tooltune.collect import CollectConfig, collect_all

    started = time.monotonic()
    note("collect", "start")
    report = collect_all(CollectConfig.load(config.collect or ""), config.work_dir / COLLECTED)
    source = config.work_dir / COLLECTED / "dataset"
    failed = [{"url": s.url, "service": s.service, "error": s.error, "stale": s.stale} for s in report.failed]
    steps.append(StepRecord("collect", report.dataset["dataset_hash"], source, False, time.monotonic() - started,
                            {"services": {s.service or s.url: s.status for s in report.services}, "failed": failed,
                             "split_sizes": report.dataset["split_sizes"]}))
    note("collect", "done")
    sizes = report.dataset["split_sizes"]
    if not sizes["train"] or not sizes["holdout"]:
        why = "; ".join(f"{f['url']}: {f['error']}" for f in failed) or "the services published no training or test data"
        raise DataError(f"collect {config.collect}: nothing to train or evaluate on "
                        f"({sizes['train']} train, {sizes['holdout']} test examples): {why}")
    catalog = ToolCatalog.load(source / "catalog.json")
    catalog.save(config.work_dir / "catalog.json")
    key = content_hash({"dataset": report.dataset["dataset_hash"], "catalog": catalog.hash})
    out = config.work_dir / f"data-{key}"

    def run() -> dict:
        shutil.copytree(source, out, dirs_exist_ok=True)
        return {"dataset_hash": report.dataset["dataset_hash"], "split_sizes": sizes, "examples": sum(sizes.values()),
                "per_service": report.dataset["per_service"]}

    return catalog, out, cached("data", key, out, run, note, steps)


def service_gates(gates: GateConfig, data_dir: Path) -> GateConfig:
    """``gates`` plus each collected service's minimum and owner; values in pipeline.yaml win."""
    services = json.loads((data_dir / "services.json").read_text())
    minimum = {s: g["min_accuracy_required"] for s, g in services.items() if g.get("min_accuracy_required") is not None}
    owners = {s: g["owner"] for s, g in services.items() if g.get("owner")}
    return GateConfig.model_validate({**gates.model_dump(), "service_min_accuracy": {**minimum, **gates.service_min_accuracy},
                                      "service_owners": {**owners, **gates.service_owners}})


def specialize(config: PipelineConfig, decision: GateDecision, data_dir: Path, catalog: ToolCatalog, dataset: dict,
               note: Progress, steps: list[StepRecord]) -> list[Specialized]:
    """One LoRA adapter per failing service: trained on the service's own training examples,
    evaluated on its own tests, gated on its own minimum, deployed to that service only."""
    from tooltune.registry import Registry, evaluate_gates

    out = []
    for service in decision.fallback.failing_services:
        own_dir, own = _service_data(config, data_dir, service, dataset)
        own_config = config.model_copy(update={"train": config.train.model_copy(update={"method": "lora"})})
        run_dir = train(own_config, own_dir, own, note, steps, step=f"train-{service}")
        eval_dir = evaluate(f"eval-{service}", own_config, own_dir, own, config.train.base_model, run_dir, note, steps)
        metrics = eval_metrics(eval_dir, own["dataset_hash"], own_dir)
        gates = config.gates.model_copy(update={
            "service_min_accuracy": {service: config.gates.service_min_accuracy.get(service, 0.0)},
            "critical_tools": [t for t in config.gates.critical_tools if t in catalog and catalog.get(t).service == service]})
        with Registry(url=config.registry_url) as reg:
            model = register(reg, own_config, catalog, own, own_dir, run_dir, metrics, specialized_for=service)
            earlier = reg.decisions(model.name, model.version)
            verdict = earlier[0] if earlier else reg.record_decision(
                model.name, model.version, evaluate_gates(metrics, None, gates), actor=config.actor)
            live = reg.deployed(config.name, service)
            deployed = live is not None and live.version == model.version
            if config.deploy and verdict.outcome.value == "deploy" and not deployed:
                reg.deploy(model.name, model.version, actor=config.actor, services=[service],
                           notes=f"specialized adapter for {service} (fallback of gate decision {decision.id})")
                deployed = True
        out.append(Specialized(service, model.version, run_dir, verdict, deployed))
    return out


def _service_data(config: PipelineConfig, data_dir: Path, service: str, dataset: dict) -> tuple[Path, dict]:
    """``data_dir`` filtered to ``service``'s examples (every split), in its own keyed folder."""
    splits: dict[str, list[Example]] = {name: [e for e in read_jsonl(data_dir / f"{name}.jsonl") if e.service == service]
                                        for name in _SPLITS}
    if not splits["train"]:
        splits["train"], splits["val"] = splits["val"], []  # a service with very little data still trains on what it has
    move_one_to_val(splits, 0.1)
    digest = content_hash({"of": dataset["dataset_hash"], "service": service})
    out = config.work_dir / f"data-{service}-{digest}"
    for name, examples in splits.items():
        write_jsonl(examples, out / f"{name}.jsonl")
    shutil.copyfile(data_dir / "catalog.json", out / "catalog.json")
    sizes = {name: len(examples) for name, examples in splits.items()}
    return out, {"dataset_hash": digest, "split_sizes": sizes, "examples": sum(sizes.values())}
