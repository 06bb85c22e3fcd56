"""How the pipeline looks in a terminal: a status line per step, then the final summary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.status import Status
from rich.table import Table

from tooltune.pipeline import PipelineResult, Progress


@contextmanager
def pipeline_progress(console: Console) -> Iterator[Progress]:
    status: Status | None = None

    def update(step: str, state: str) -> None:
        nonlocal status
        if state == "start":
            status = console.status(f"[bold]{step}[/] …")
            status.start()
            return
        if status is not None:
            status.stop()
            status = None
        console.print(f"  {'[dim]skipped[/] (unchanged)' if state == 'skip' else '[green]done[/]'}  {step}")

    try:
        yield update
    finally:
        if status is not None:
            status.stop()


def print_summary(result: PipelineResult, console: Console) -> None:
    from tooltune.eval.report import comparison_table
    from tooltune.registry.present import decision_table

    steps = Table(title="Pipeline steps")
    for column in ("step", "state", "seconds", "output"):
        steps.add_column(column)
    for step in result.steps:
        steps.add_row(step.name, "skipped" if step.skipped else "ran", f"{step.seconds:.1f}", str(step.path))
    console.print(steps)
    console.print(comparison_table(result.comparison))
    if result.decision is not None:
        console.print(decision_table(result.decision))
    model = result.model
    console.print(f"Registered [bold]{model.name}@{model.version}[/] ({getattr(model.status, 'value', model.status)}); "
                  f"{'deployed' if result.deployed else 'not deployed'}.")
    console.print(f"Report: {result.report_html}")
