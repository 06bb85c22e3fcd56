"""Compare two evaluation outputs (e.g. base vs tuned) example by example.

Each output directory holds ``results.jsonl`` and ``metrics.json`` as written by
:func:`tooltune.eval.score.write_results`. Examples are paired by ``id``; rows are "overall",
each category and each split. Per row: accuracy of A and B over the paired examples, the delta
B − A, wins (B right, A wrong), losses (A right, B wrong), ties, an exact McNemar test on the
discordant pairs, and a paired bootstrap 95% interval of the delta. Latency and throughput come
from ``metrics.json`` when the runner recorded them (``latency_ms_p50``, ``latency_ms_p95``,
``tokens_per_s``), else they are None.

Four-level validation (``levels``): per service, and over all as ``"all"``, the share of the
paired examples that expect a call passing detection, parsing, tool and parameters in A and in
B (the result lines' level columns, see :mod:`tooltune.eval.metrics`), with each service's
wrong examples per reason code. Result lines written before the levels existed have no level
columns; those examples are left out of ``levels``.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from tooltune.data.examples import Category
from tooltune.errors import DataError, DocumentError
from tooltune.eval.score import METRICS_FILE, RESULTS_FILE
from tooltune.safeload import loads_json, read_text

LATENCY_KEYS = ("latency_ms_p50", "latency_ms_p95", "tokens_per_s")
HEADLINE_KEYS = ("exact_match", "tool_detection", "tool_selection", "parameter_accuracy", "clarify_accuracy")
SIGNIFICANCE = 0.05


class Row(BaseModel):
    kind: str = Field(description='"overall", "category" or "split".')
    group: str
    n: int = Field(description="Paired examples.")
    accuracy_a: float | None
    accuracy_b: float | None
    delta: float | None = Field(description="accuracy_b - accuracy_a.")
    wins: int = Field(description="B right, A wrong.")
    losses: int = Field(description="A right, B wrong.")
    ties: int = Field(description="Both right or both wrong.")
    p_value: float = Field(description="Exact two-sided McNemar test on wins vs losses.")
    ci_low: float | None = Field(description="Paired bootstrap 95% interval of delta, low end.")
    ci_high: float | None

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE


class Measure(BaseModel):
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


LEVELS = ("detection", "parsing", "tool", "parameters")
"""The four validation levels, in order (the values of :class:`tooltune.eval.metrics.Level`)."""


class LevelRow(BaseModel):
    """Four-level validation of one service (or ``"all"``) in A and B."""

    service: str
    n: int = Field(description="Paired examples that expect a call (and carry level columns).")
    levels: dict[str, Measure] = Field(description="detection, parsing, tool, parameters: share passing it and every level before.")
    reasons: dict[str, Measure] = Field(description="Wrong examples of the service per reason code (all paired examples).")


class Comparison(BaseModel):
    label_a: str
    label_b: str
    dir_a: str
    dir_b: str
    rows: list[Row]
    only_a: int = Field(description="Examples in A's results with no counterpart in B (not compared).")
    only_b: int
    headline: dict[str, Measure] = Field(description="Headline metrics from each metrics.json.")
    latency: dict[str, Measure] = Field(description="latency_ms_p50/p95 and tokens_per_s; None where not recorded.")
    reasons: dict[str, Measure] = Field(description="Wrong examples per reason code, over the paired examples.")
    levels: list[LevelRow] = Field(default_factory=list, description='Four-level validation: "all" first, then each service.')
    resamples: int
    seed: int

    def row(self, group: str, kind: str | None = None) -> Row:
        for r in self.rows:
            if r.group == group and (kind is None or r.kind == kind):
                return r
        raise KeyError(group)


def mcnemar_exact(wins: int, losses: int) -> float:
    """Two-sided exact McNemar p-value: the binomial test of ``wins`` vs ``losses`` at p = 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def bootstrap_ci(a: np.ndarray, b: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, float] | tuple[None, None]:
    """Percentile 95% interval of mean(b) − mean(a), resampling the paired examples."""
    n = len(a)
    if n == 0:
        return None, None
    diff = b.astype(float) - a.astype(float)
    means = diff[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def compare(
    a_dir: str | Path, b_dir: str | Path, *, labels: tuple[str, str] | None = None, resamples: int = 2000, seed: int = 0
) -> Comparison:
    """Compare the eval outputs in ``a_dir`` and ``b_dir``; labels default to the directory names."""
    a_dir, b_dir = Path(a_dir), Path(b_dir)
    results_a, results_b = _read_results(a_dir), _read_results(b_dir)
    metrics_a, metrics_b = _read_metrics(a_dir), _read_metrics(b_dir)
    paired = [i for i in results_a if i in results_b]
    if not paired:
        raise DataError(f"{a_dir} and {b_dir} share no example ids; compare evaluations of the same data.")
    rng = np.random.default_rng(seed)

    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i in paired:
        record = results_a[i]
        groups[("overall", "overall")].append(i)
        groups[("category", str(record.get("category")))].append(i)
        if record.get("split"):
            groups[("split", str(record["split"]))].append(i)
    order = {c.value: n for n, c in enumerate(Category)}
    keys = sorted(groups, key=lambda k: (("overall", "category", "split").index(k[0]), order.get(k[1], len(order)), k[1]))
    rows = [_row(kind, group, groups[(kind, group)], results_a, results_b, resamples, rng) for kind, group in keys]

    reasons_a = Counter(results_a[i]["reason"] for i in paired if not results_a[i]["correct"])
    reasons_b = Counter(results_b[i]["reason"] for i in paired if not results_b[i]["correct"])
    return Comparison(
        label_a=labels[0] if labels else a_dir.name, label_b=labels[1] if labels else b_dir.name,
        dir_a=str(a_dir), dir_b=str(b_dir), rows=rows,
        only_a=len(results_a) - len(paired), only_b=len(results_b) - len(paired),
        headline={k: Measure(a=_accuracy(metrics_a.get(k)), b=_accuracy(metrics_b.get(k))) for k in HEADLINE_KEYS},
        latency={k: Measure(a=metrics_a.get(k), b=metrics_b.get(k)) for k in LATENCY_KEYS},
        reasons={r: Measure(a=reasons_a.get(r, 0), b=reasons_b.get(r, 0))
                 for r in sorted(set(reasons_a) | set(reasons_b), key=lambda r: -(reasons_a.get(r, 0) + reasons_b.get(r, 0)))},
        levels=_level_rows(paired, results_a, results_b),
        resamples=resamples, seed=seed,
    )


def _level_rows(paired: list[str], results_a: dict, results_b: dict) -> list[LevelRow]:
    services: dict[str, list[str]] = defaultdict(list)
    for i in paired:
        services[str(results_a[i].get("service") or "(none)")].append(i)
    groups = [("all", paired)] + (sorted(services.items()) if len(services) > 1 or "(none)" not in services else [])
    rows = [_level_row(name, ids, results_a, results_b) for name, ids in groups]
    return rows if rows[0].n else []


def _level_row(service: str, ids: list[str], results_a: dict, results_b: dict) -> LevelRow:
    leveled = [i for i in ids if isinstance(results_a[i].get("detection"), bool) and isinstance(results_b[i].get("detection"), bool)]

    def share(results: dict, level: str) -> float | None:
        return sum(bool(results[i][level]) for i in leveled) / len(leveled) if leveled else None

    wrong_a = Counter(results_a[i]["reason"] for i in ids if not results_a[i]["correct"])
    wrong_b = Counter(results_b[i]["reason"] for i in ids if not results_b[i]["correct"])
    return LevelRow(
        service=service, n=len(leveled),
        levels={level: Measure(a=share(results_a, level), b=share(results_b, level)) for level in LEVELS},
        reasons={r: Measure(a=wrong_a.get(r, 0), b=wrong_b.get(r, 0))
                 for r in sorted(set(wrong_a) | set(wrong_b), key=lambda r: -(wrong_a.get(r, 0) + wrong_b.get(r, 0)))},
    )


def _row(kind: str, group: str, ids: list[str], results_a: dict, results_b: dict, resamples: int, rng: np.random.Generator) -> Row:
    a = np.array([bool(results_a[i]["correct"]) for i in ids])
    b = np.array([bool(results_b[i]["correct"]) for i in ids])
    wins, losses = int((b & ~a).sum()), int((a & ~b).sum())
    low, high = bootstrap_ci(a, b, resamples, rng)
    acc_a, acc_b = float(a.mean()), float(b.mean())
    return Row(kind=kind, group=group, n=len(ids), accuracy_a=acc_a, accuracy_b=acc_b, delta=acc_b - acc_a,
               wins=wins, losses=losses, ties=len(ids) - wins - losses, p_value=mcnemar_exact(wins, losses),
               ci_low=low, ci_high=high)


def _accuracy(rate: Any) -> float | None:
    return rate.get("accuracy") if isinstance(rate, dict) else None


def _read_results(directory: Path) -> dict[str, dict[str, Any]]:
    path = directory / RESULTS_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found; an eval output directory holds {RESULTS_FILE} and {METRICS_FILE} "
                        "(written by `tooltune eval score` or the eval runner).")
    out: dict[str, dict[str, Any]] = {}
    for lineno, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = loads_json(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg}).") from e
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not isinstance(record.get("correct"), bool):
            raise DataError(f'{path}:{lineno}: expected a result line with "id" (string) and "correct" (true/false).')
        if record["id"] in out:
            raise DataError(f"{path}:{lineno}: id {record['id']!r} appears twice.")
        out[record["id"]] = record
    return out


def _text(path: Path) -> str:
    try:
        return read_text(path)
    except DocumentError as e:
        raise DataError(str(e)) from e


def _read_metrics(directory: Path) -> dict[str, Any]:
    path = directory / METRICS_FILE
    if not path.is_file():
        return {}
    try:
        data = loads_json(_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg}).") from e
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object of metrics.")
    return data
