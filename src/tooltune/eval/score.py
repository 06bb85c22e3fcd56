"""Score model outputs made elsewhere, without running a model.

Predictions are JSONL, one ``{"id": ..., "output": "<raw model text>"}`` per line. ``id`` is the
example's id, or its ``provenance.origin`` (e.g. the BFCL case id ``simple_python_0``) when that
names exactly one example. Every example gets a result: an example without a prediction is
wrong with reason ``no_prediction`` (failure class ``missing``), never skipped. A prediction
whose id names no example is an error, because it almost always means the predictions were
made for another data file.

``run_score`` writes ``results.jsonl`` (one line per example: ``id``, ``correct``, ``reason``,
``category``, then ``split``, ``origin``, ``failure``, ``message``, ``parse_kind``,
``expected``, ``predicted`` and the per-call checks) and ``metrics.json``
(:class:`~tooltune.eval.metrics.Metrics`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tooltune.data.examples import Example, read_jsonl
from tooltune.errors import CatalogError, DataError, DocumentError
from tooltune.eval.match import CallCheck, MatchResult, Reason, expected_calls, match
from tooltune.eval.metrics import ExampleResult, Metrics, classify_failure, compute_metrics
from tooltune.formats.base import get_format
from tooltune.safeload import loads_json, read_text
from tooltune.tools.catalog import Tool, ToolCatalog

RESULTS_FILE = "results.jsonl"
METRICS_FILE = "metrics.json"


@dataclass
class ScoreResult:
    results: list[ExampleResult]
    """One per example, in the examples' order."""
    metrics: Metrics


def score_output(example: Example, text: str | None, fmt: str, tools: list[Tool], split: str | None = None) -> ExampleResult:
    """Parse one raw output with format ``fmt`` and match it; ``text`` None means no prediction.
    ``tools`` are the example's offered tools (:meth:`Example.offered_tools`)."""
    names = [t.name for t in tools]
    common = {"id": example.id, "category": example.category, "service": example.service, "split": split,
              "origin": example.provenance.origin}
    if text is None:
        expected = expected_calls(example)
        missing = MatchResult(correct=False, reason=Reason.NO_PREDICTION, message="the predictions have no output for this example",
                              expects_call=bool(expected), called=False,
                              calls=[CallCheck(expected=c.name, predicted=None, correct=False, reason=Reason.NO_PREDICTION)
                                     for c in expected])
        return ExampleResult(**common, match=missing, failure=classify_failure(missing, None, None, fmt, names))
    parse = get_format(fmt).parse(text)
    result = match(example, parse, tools)
    return ExampleResult(**common, parse_kind=parse.kind, match=result,
                         failure=classify_failure(result, parse, text, fmt, names))


def score_predictions(
    examples: Iterable[Example],
    predictions: dict[str, str],
    fmt: str,
    catalog: ToolCatalog | None = None,
    split: str | None = None,
) -> ScoreResult:
    """Score ``predictions`` (example id or origin → raw output) against ``examples``.

    Raises :class:`DataError` when a prediction id names no example, or when an example's tools
    cannot be resolved (no inline definition and not in ``catalog``)."""
    examples = list(examples)
    get_format(fmt)  # fail on an unknown format before any work
    keys = _prediction_keys(examples)
    unknown = [pid for pid in predictions if pid not in keys]
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise DataError(
            f"{len(unknown)} prediction id(s) name no example: {shown}. Ids must be example ids or unique "
            "provenance.origin values of the data file; check that the predictions were made for this data."
        )
    by_example: dict[str, str] = {keys[pid]: text for pid, text in predictions.items()}
    results = []
    for example in examples:
        try:
            tools = example.offered_tools(catalog)
        except CatalogError as e:
            raise DataError(f"example {example.id} ({example.provenance.origin}): {e} Pass the catalog the data was built with.") from e
        results.append(score_output(example, by_example.get(example.id), fmt, tools, split))
    return ScoreResult(results=results, metrics=compute_metrics(results))


def _prediction_keys(examples: list[Example]) -> dict[str, str]:
    """Prediction id → example id: every example id, plus origins that name one example."""
    origins = Counter(e.provenance.origin for e in examples if e.provenance.origin)
    keys = {e.provenance.origin: e.id for e in examples if e.provenance.origin and origins[e.provenance.origin] == 1}
    keys.update({e.id: e.id for e in examples})
    return keys


def read_predictions(path: str | Path) -> dict[str, str]:
    """``{id: output}`` from a predictions JSONL file; errors name file and line."""
    path = Path(path)
    out: dict[str, str] = {}
    try:
        lines = read_text(path).splitlines()
    except DocumentError as e:
        raise DataError(f"{e} (the predictions file)") from e
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = loads_json(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg}).") from e
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not isinstance(record.get("output"), str):
            raise DataError(f'{path}:{lineno}: expected {{"id": "<example id>", "output": "<raw model text>"}} with string values.')
        if record["id"] in out:
            raise DataError(f"{path}:{lineno}: id {record['id']!r} appears twice; keep one output per example.")
        out[record["id"]] = record["output"]
    return out


def write_results(result: ScoreResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``results.jsonl`` and ``metrics.json`` into ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path, metrics_path = out_dir / RESULTS_FILE, out_dir / METRICS_FILE
    with results_path.open("w") as f:
        for r in result.results:
            f.write(json.dumps(r.record(), ensure_ascii=False) + "\n")
    metrics_path.write_text(result.metrics.to_json() + "\n")
    return results_path, metrics_path


def run_score(
    data_path: str | Path,
    predictions_path: str | Path,
    fmt: str,
    out_dir: str | Path,
    catalog_path: str | Path | None = None,
) -> Metrics:
    """``tooltune eval score``: score a predictions file against a data file (examples JSONL)
    and write ``results.jsonl`` and ``metrics.json`` to ``out_dir``. The split name of every
    result is the data file's stem (``test_phrasing.jsonl`` → ``test_phrasing``)."""
    data_path = Path(data_path)
    if not data_path.is_file():
        raise DataError(f"{data_path}: data file not found; pass an examples JSONL file (e.g. a split file written by the data build).")
    examples = list(read_jsonl(data_path))
    catalog = ToolCatalog.load(catalog_path) if catalog_path is not None else None
    result = score_predictions(examples, read_predictions(predictions_path), fmt, catalog, split=data_path.stem)
    write_results(result, out_dir)
    return result.metrics
