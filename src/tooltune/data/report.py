"""Show a dataset report (``report.json`` / :func:`~tooltune.data.build.report_dataset`) as rich
tables, and drive a rich progress display from :func:`~tooltune.data.build.build_dataset`.

Only the CLI passes a console here; the library itself never prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from tooltune.data.build import Progress as ProgressCallback
from tooltune.data.split import SPLITS


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs of the report's headline figures, in display order."""
    dedup = report.get("dedup", {})
    contamination = report.get("contamination", {})
    rows = [
        ("catalog hash", report.get("catalog_hash", "")),
        ("dataset hash", report.get("dataset_hash", "") + ("" if report.get("matches_build", True) else "  (files changed since build)")),
        ("examples", str(sum(report.get("split_sizes", {}).values()))),
    ]
    if "records" in report:
        rows.append(("records read / invalid", f"{report['records']} / {report.get('invalid', 0)}"))
    rows.append(("quarantine", str(report.get("quarantine", 0))))
    if dedup:
        rows.append(("duplicates exact / semantic", f"{dedup.get('exact', 0)} / {dedup.get('semantic', 0)} ({dedup.get('backend')})"))
    if report.get("dropped"):
        rows.append(("dropped", ", ".join(f"{k} {v}" for k, v in report["dropped"].items() if v) or "none"))
    if "held_out_tools" in report:
        rows.append(("held-out tools (zero-shot)", ", ".join(report["held_out_tools"]) or "none"))
    if contamination:
        exact, near = sum(contamination.get("exact", {}).values()), sum(contamination.get("near", {}).values())
        rows.append(("contamination exact / near (removed)", f"{exact} / {near} ({sum(contamination.get('removed', {}).values())})"))
    if report.get("quality"):
        q = report["quality"]
        rows.append(("quality mean (min-max)", f"{q['mean']:.3f} ({q['min']:.2f}-{q['max']:.2f})"))
    if report.get("flagged_tools"):
        rows.append(("under-represented tools", ", ".join(report["flagged_tools"])))
    return rows


def render_report(report: dict[str, Any], console: Console) -> None:
    """Print the summary, split sizes, behaviour mix and per-tool counts as tables."""
    summary = Table(title="Dataset", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in summary_rows(report):
        summary.add_row(label, value)
    console.print(summary)

    splits = [s for s in SPLITS if s in report.get("split_sizes", {})]
    mix = Table(title="Splits and behaviour")
    for name in [*splits, *report.get("behavior_mix", {})]:
        mix.add_column(name, justify="right")
    mix.add_row(*[str(report["split_sizes"][s]) for s in splits], *[str(v) for v in report.get("behavior_mix", {}).values()])
    console.print(mix)

    per_tool = Table(title="Examples per tool")
    per_tool.add_column("tool")
    per_tool.add_column("total", justify="right")
    for name in splits:
        per_tool.add_column(name, justify="right")
    flagged = set(report.get("flagged_tools", []))
    held = set(report.get("held_out_tools", []))
    by_split = report.get("per_tool_split", {})
    for tool, count in report.get("per_tool", {}).items():
        label = tool + (" [yellow](low)[/]" if tool in flagged else "") + (" [cyan](held out)[/]" if tool in held else "")
        per_tool.add_row(label, str(count), *[str(by_split.get(s, {}).get(tool, 0)) for s in splits])
    console.print(per_tool)


@contextmanager
def build_progress(console: Console) -> Iterator[ProgressCallback]:
    """A ``progress`` callback for ``build_dataset`` that shows one rich bar per step."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        tasks: dict[str, Any] = {}

        def update(step: str, done: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)

        yield update
