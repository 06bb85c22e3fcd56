"""Rich tables for one evaluation's metrics (the CLI's view; metrics.json holds everything)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from tooltune.eval.metrics import NONE, Level, Levels, Metrics, Rate

_HEADLINE = [
    ("exact match", "exact_match"),
    ("tool detection", "tool_detection"),
    ("tool selection", "tool_selection"),
    ("parameter accuracy", "parameter_accuracy"),
    ("clarify accuracy", "clarify_accuracy"),
]


def metrics_table(metrics: Metrics, *, title: str | None = None) -> Group:
    head = Table(title=title, show_header=True)
    head.add_column("metric")
    head.add_column("accuracy", justify="right")
    head.add_column("correct / total", justify="right")
    for label, field in _HEADLINE:
        rate = getattr(metrics, field)
        head.add_row(label, _pct(rate), f"{rate.correct} / {rate.total}")
    if metrics.latency_ms_p50 is not None:
        head.add_row("latency p50 / p95", f"{metrics.latency_ms_p50:.0f} / {metrics.latency_ms_p95:.0f} ms", "")
    if metrics.tokens_per_s is not None:
        head.add_row("generated tokens/s", f"{metrics.tokens_per_s:.0f}", "")
    parts: list = [head, _breakdown("category", metrics.per_category)]
    if len(metrics.per_split) > 1:
        parts.append(_breakdown("split", metrics.per_split))
    if metrics.levels.detection.total:
        parts.append(levels_table(metrics))
    return Group(*parts)


def levels_table(metrics: Metrics) -> Table:
    """Four-level validation per service (and over all), with each service's reason codes.

    A level's cell is the share of call-expecting examples that pass it and every level before it."""
    table = Table(title="four-level validation (examples that expect a call)", show_header=True)
    table.add_column("service")
    table.add_column("n", justify="right")
    for level in Level:
        table.add_column(level.value, justify="right")
    table.add_column("exact match", justify="right")
    table.add_column("wrong examples by reason")
    rows = [("all", metrics.levels, metrics.exact_match, metrics.reasons)]
    if len(metrics.per_service_levels) > 1 or NONE not in metrics.per_service_levels:
        rows += [(name, s.levels, s.exact_match, s.reasons) for name, s in metrics.per_service_levels.items()]
    for i, (name, levels, exact, reasons) in enumerate(rows):
        table.add_row(name, str(levels.detection.total), *_level_cells(levels), _pct(exact), _reasons(reasons),
                      end_section=i == 0 and len(rows) > 1)
    return table



def _level_cells(levels: Levels) -> list[str]:
    return [_pct(getattr(levels, level.value)) for level in Level]


def _reasons(reasons: dict[str, int], top: int = 4) -> str:
    shown = [f"{name} {count}" for name, count in list(reasons.items())[:top]]
    return ", ".join(shown) + (f", +{len(reasons) - top} more" if len(reasons) > top else "") if shown else "—"


def _breakdown(name: str, rates: dict[str, Rate]) -> Table:
    table = Table(show_header=True)
    table.add_column(name)
    table.add_column("exact match", justify="right")
    table.add_column("n", justify="right")
    for key, rate in rates.items():
        table.add_row(key, _pct(rate), str(rate.total))
    return table


def _pct(rate: Rate) -> str:
    return "—" if rate.accuracy is None else f"{100 * rate.accuracy:.1f}%"
