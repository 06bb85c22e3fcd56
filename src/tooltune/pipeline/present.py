"""How the pipeline looks in a terminal: a status line per step, then the final summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table

from tooltune.pipeline.cache import Progress
from tooltune.pipeline.run import PipelineResult


@contextmanager
def pipeline_progress(console: Console) -> Iterator[Progress]:
    # A line per state rather than a spinner: training and evaluation draw their own progress
    # bars, and two live displays on one terminal overwrite each other.
    started: dict[str, float] = {}

    def update(step: str, state: str) -> None:
        if state == "start":
            started[step] = time.monotonic()
            console.print(f"  [bold]…[/]     {step}")
        elif state == "skip":
            console.print(f"  [dim]skipped[/] {step} (unchanged)")
        else:
            seconds = time.monotonic() - started.pop(step, time.monotonic())
            console.print(f"  [green]done[/]    {step}" + (f" ({seconds:.0f} s)" if seconds >= 1 else ""))

    yield update


def print_summary(result: PipelineResult, console: Console) -> None:
    from tooltune.eval.report import comparison_table, levels_table
    from tooltune.registry.present import decision_table

    steps = Table(title="Pipeline steps")
    for column in ("step", "state", "seconds", "output"):
        steps.add_column(column)
    for step in result.steps:
        steps.add_row(step.name, "skipped" if step.skipped else "ran", f"{step.seconds:.1f}", str(step.path))
    console.print(steps)
    for step in result.steps:  # a service that could not be collected is never passed over in silence
        for failed in step.summary.get("failed", []) if step.name == "collect" else []:
            used = " (its earlier data was used)" if failed["stale"] else ""
            console.print(f"[bold red]not collected[/]: {failed['service'] or failed['url']}: {failed['error']}{used}")
    console.print(comparison_table(result.comparison))
    if result.comparison.levels:
        console.print(levels_table(result.comparison))
    if result.decision is not None:
        console.print(decision_table(result.decision))
        if result.decision.fallback.strategy != "none":
            console.print(f"Fallback [bold]{result.decision.fallback.strategy}[/]: {result.decision.fallback.message}")
    for own in result.specialized:
        state = "deployed to it alone" if own.deployed else f"not deployed ({own.decision.outcome})"
        console.print(f"Specialized adapter for {own.service}: {result.model.name}@{own.version}, {state}")
    model = result.model
    console.print(f"Registered [bold]{model.name}@{model.version}[/] ({getattr(model.status, 'value', model.status)}); "
                  f"{'deployed' if result.deployed else 'not deployed'}.")
    console.print(f"Report: {result.report_html}")
