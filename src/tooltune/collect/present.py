"""How a collection looks in a terminal: one row per service, then the dataset."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from tooltune.collect.orchestrator import CollectReport


def print_report(report: CollectReport, console: Console) -> None:
    table = Table(title=f"Collected into {report.output_dir}")
    for column in ("service", "url", "status", "received", "quarantined", "held", "seconds", "error"):
        table.add_column(column)
    for s in report.services:
        status = {"ok": "[green]ok[/]", "not_modified": "[dim]not modified[/]"}.get(s.status, "[bold red]FAILED[/]")
        if s.stale:
            status += " (stale data used)"
        table.add_row(s.service or "?", s.url, status, _counts(s.received), _counts(s.quarantined), _counts(s.held),
                      f"{s.seconds:.1f}", s.error or "")
    console.print(table)
    sizes = report.dataset.get("split_sizes", {})
    console.print(f"dataset {report.output_dir / 'dataset'}: " + ", ".join(f"{k} {v}" for k, v in sizes.items())
                  + f"  [dim]{report.dataset.get('dataset_hash', '')}[/]")
    for s in report.failed:
        console.print(f"[bold red]{s.service or s.url} was not collected[/]: {s.error}")


def _counts(counts: dict[str, int]) -> str:
    return " / ".join(f"{k} {v}" for k, v in counts.items()) or "-"
