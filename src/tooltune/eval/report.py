"""Present a :class:`~tooltune.eval.compare.Comparison`: a terminal table, ``report.json`` and a
self-contained ``report.html`` (charts are PNGs drawn with matplotlib's Agg backend and
embedded as base64, so the file can be mailed or attached to a CI run as is)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from rich.table import Table

from tooltune.eval.compare import LEVELS, SIGNIFICANCE, Comparison, LevelRow, Measure, Row

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
_COLOR_A, _COLOR_B = "#8c8c8c", "#1f77b4"
_GOOD, _BAD = "#1a7f37", "#cf222e"


def comparison_table(c: Comparison) -> Table:
    """Per-category (and split) accuracy of A and B with delta, significance and wins/losses."""
    table = Table(title=f"{c.label_a} (A) vs {c.label_b} (B)")
    for header in ("group", "n", "A", "B", "Δ pts", "95% CI", "p", "wins", "losses", "ties"):
        table.add_column(header, justify="left" if header == "group" else "right")
    for r in c.rows:
        color = "" if not r.significant else ("green" if (r.delta or 0) > 0 else "red")
        delta = f"[{color}]{_signed(r.delta)}[/{color}]" if color else _signed(r.delta)
        name = r.group if r.kind != "split" else f"split: {r.group}"
        table.add_row(name, str(r.n), _pct(r.accuracy_a), _pct(r.accuracy_b), delta, _ci(r), _p(r.p_value),
                      str(r.wins), str(r.losses), str(r.ties), end_section=r.kind == "overall")
    return table


def levels_table(c: Comparison) -> Table:
    """Four-level validation per service: A → B share per level, and the reason codes A → B."""
    table = Table(title=f"four-level validation, {c.label_a} (A) → {c.label_b} (B), examples that expect a call")
    reasons = "wrong examples by reason (A → B)"
    for header in ("service", "n", *LEVELS, reasons):
        table.add_column(header, justify="left" if header in ("service", reasons) else "right")
    for i, row in enumerate(c.levels):
        cells = [f"{_pct(m.a)} → {_pct(m.b)}" for m in row.levels.values()]
        table.add_row(row.service, str(row.n), *cells, _reason_moves(row), end_section=i == 0 and len(c.levels) > 1)
    return table


def _reason_moves(row: LevelRow, top: int = 4) -> str:
    moves = [f"{name} {m.a:.0f}→{m.b:.0f}" for name, m in list(row.reasons.items())[:top]]
    return ", ".join(moves) if moves else "–"


def write_report(c: Comparison, out_dir: str | Path) -> Path:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; returns the HTML path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_JSON).write_text(c.model_dump_json(indent=2) + "\n")
    path = out_dir / REPORT_HTML
    path.write_text(render_html(c))
    return path


def render_html(c: Comparison) -> str:
    e = html.escape
    categories = [r for r in c.rows if r.kind == "category"]
    splits = [r for r in c.rows if r.kind == "split"]
    overall = c.row("overall", "overall")
    charts = [
        ("Accuracy per category", _accuracy_chart(c, categories)),
        ("Change per category (B − A) with 95% bootstrap interval", _delta_chart(categories)),
    ]
    if c.reasons:
        charts.append(("Wrong examples per reason", _reasons_chart(c)))
    if overall.significant:
        better = (overall.delta or 0) > 0
        verdict = (f"{c.label_b if better else c.label_a} is better than {c.label_a if better else c.label_b} overall "
                   f"(McNemar p {_p(overall.p_value, relation=True)}, significant at {SIGNIFICANCE})")
    else:
        verdict = f"No significant overall difference (McNemar p {_p(overall.p_value, relation=True)})"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(c.label_a)} vs {e(c.label_b)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(c.label_a)} <span class='muted'>(A)</span> vs {e(c.label_b)} <span class='muted'>(B)</span></h1>",
        f"<p class='verdict'>{e(verdict)}: {_pct(overall.accuracy_a)} → {_pct(overall.accuracy_b)} "
        f"({_signed(overall.delta)} pts) over {overall.n} paired examples.</p>",
        f"<p class='muted'>A: {e(c.dir_a)}<br>B: {e(c.dir_b)}<br>"
        f"Unpaired examples (ignored): {c.only_a} only in A, {c.only_b} only in B. "
        f"Bootstrap: {c.resamples} resamples, seed {c.seed}. McNemar: exact two-sided.</p>",
        "<h2>Headline metrics</h2>", _measure_table(c, c.headline, percent=True),
        "<h2>Per category</h2>", _rows_table(categories),
    ]
    if splits:
        parts += ["<h2>Per split</h2>", _rows_table(splits)]
    if c.levels:
        parts += ["<h2>Four-level validation per service</h2>",
                  "<p class='muted'>Examples that expect a call. Each level is the share passing it and every level "
                  "before it: detection (the output contains a call), parsing (it parses), tool (the right tools), "
                  "parameters (the right values: the example is correct).</p>", _levels_html(c)]
    parts.append("<h2>Latency and throughput</h2>")
    if any(m.a is not None or m.b is not None for m in c.latency.values()):
        parts.append(_measure_table(c, c.latency, percent=False))
    else:
        parts.append("<p class='muted'>Not recorded in either metrics.json (scored offline).</p>")
    for title, png in charts:
        parts.append(f"<h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{png}'>")
        if title.startswith("Change"):
            parts.append(f"<p class='muted'>Green / red: significant gain / loss (McNemar p &lt; {SIGNIFICANCE}); "
                         "grey: not significant.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _rows_table(rows: list[Row]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("group", "n", "A", "B", "Δ pts", "95% CI", "p", "wins", "losses", "ties"))
    body = []
    for r in rows:
        cls = "" if not r.significant else (" class='good'" if (r.delta or 0) > 0 else " class='bad'")
        body.append(
            f"<tr><td>{html.escape(r.group)}</td><td>{r.n}</td><td>{_pct(r.accuracy_a)}</td><td>{_pct(r.accuracy_b)}</td>"
            f"<td{cls}>{_signed(r.delta)}</td><td>{_ci(r)}</td><td>{_p(r.p_value)}</td>"
            f"<td>{r.wins}</td><td>{r.losses}</td><td>{r.ties}</td></tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _levels_html(c: Comparison) -> str:
    e = html.escape
    head = "".join(f"<th>{h}</th>" for h in ("service", "n", *LEVELS, "wrong examples by reason (A → B)"))
    body = []
    for row in c.levels:
        cells = "".join(f"<td>{_pct(m.a)} → {_pct(m.b)} <span class='muted'>({_signed(m.delta)})</span></td>"
                        for m in row.levels.values())
        body.append(f"<tr><td>{e(row.service)}</td><td>{row.n}</td>{cells}"
                    f"<td class='reasons'>{e(_reason_moves(row, top=6))}</td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _measure_table(c: Comparison, measures: dict[str, Measure], *, percent: bool) -> str:
    fmt = _pct if percent else _num
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{fmt(m.a)}</td><td>{fmt(m.b)}</td>"
        f"<td>{_signed(m.delta) if percent else _num(m.delta, signed=True)}</td></tr>"
        for name, m in measures.items()
    )
    return (f"<table><thead><tr><th>metric</th><th>{html.escape(c.label_a)}</th><th>{html.escape(c.label_b)}</th>"
            f"<th>{'Δ pts' if percent else 'Δ'}</th></tr></thead><tbody>{rows}</tbody></table>")


# -- charts ---------------------------------------------------------------------------------


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def _png(fig) -> str:
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _accuracy_chart(c: Comparison, rows: list[Row]) -> str:
    fig, ax = _figure(10, 4)
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [(r.accuracy_a or 0) * 100 for r in rows], 0.4, label=c.label_a, color=_COLOR_A)
    ax.bar([i + 0.2 for i in x], [(r.accuracy_b or 0) * 100 for r in rows], 0.4, label=c.label_b, color=_COLOR_B)
    ax.set_xticks(list(x), [f"{r.group}\n(n={r.n})" for r in rows])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _delta_chart(rows: list[Row]) -> str:
    fig, ax = _figure(10, 3.5)
    deltas = [(r.delta or 0) * 100 for r in rows]
    low = [d - (r.ci_low or 0) * 100 for d, r in zip(deltas, rows)]
    high = [(r.ci_high or 0) * 100 - d for d, r in zip(deltas, rows)]
    colors = [(_GOOD if d > 0 else _BAD) if r.significant else _COLOR_A for d, r in zip(deltas, rows)]
    ax.bar(range(len(rows)), deltas, 0.6, color=colors, yerr=[low, high], capsize=4)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(list(range(len(rows))), [r.group for r in rows])
    ax.set_ylabel("Δ accuracy (points)")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _reasons_chart(c: Comparison) -> str:
    names = list(c.reasons)
    fig, ax = _figure(10, max(2.0, 0.45 * len(names) + 1))
    y = range(len(names))
    ax.barh([i - 0.2 for i in y], [c.reasons[n].a or 0 for n in names], 0.4, label=c.label_a, color=_COLOR_A)
    ax.barh([i + 0.2 for i in y], [c.reasons[n].b or 0 for n in names], 0.4, label=c.label_b, color=_COLOR_B)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel("wrong examples")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


# -- formatting -----------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}"


def _num(value: float | None, signed: bool = False) -> str:
    return "–" if value is None else (f"{value:+,.1f}" if signed else f"{value:,.1f}")


def _p(value: float, relation: bool = False) -> str:
    """``0.020`` / ``<0.001``; with ``relation``, ready to follow "p": ``= 0.020`` / ``< 0.001``."""
    if value < 0.001:
        return "< 0.001" if relation else "<0.001"
    return f"= {value:.3f}" if relation else f"{value:.3f}"


def _ci(r: Row) -> str:
    if r.ci_low is None or r.ci_high is None:
        return "–"
    return f"[{r.ci_low * 100:+.1f}, {r.ci_high * 100:+.1f}]"


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 1040px; margin: 2em auto;
       padding: 0 1em; color: #1f2328; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #d0d7de; }
.muted { color: #656d76; font-size: 0.9em; } .verdict { font-size: 1.1em; }
table { border-collapse: collapse; margin: 0.5em 0; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 12px; border-bottom: 1px solid #d0d7de; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f6f8fa; }
td.good { color: #1a7f37; font-weight: 600; } td.bad { color: #cf222e; font-weight: 600; }
img { max-width: 100%; } td.reasons { text-align: left; }
"""
