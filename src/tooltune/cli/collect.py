"""`tooltune collect`: pull every publisher's data and build one dataset (the orchestrator's side of `tooltune publish`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tooltune.cli.console import console


def collect(
    services: Annotated[Path, typer.Option(help="services.yaml: each service's URL and credentials.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the collected data, quarantine, state and dataset.")],
    full: Annotated[bool, typer.Option(help="Ignore the saved state (since / ETag) and pull everything again.")] = False,
) -> None:
    """Pull every service's published data concurrently, validate it against its catalog, build one dataset."""
    from tooltune.collect import CollectConfig, collect_all
    from tooltune.collect.present import print_report

    report = collect_all(CollectConfig.load(services), output, full=full)
    print_report(report, console)
    if report.failed:
        raise typer.Exit(2)  # partial failure is never silent: scripts see a non-zero status
