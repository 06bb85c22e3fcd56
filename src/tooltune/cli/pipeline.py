"""`tooltune pipeline …`: run the whole loop once, or on cron schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console

app = typer.Typer(help="The whole loop: discover → data → eval base → train → eval candidate → gate → register (→ deploy).", no_args_is_help=True)


@app.command("run")
def pipeline_run(
    config: Annotated[Path, typer.Option(help="Pipeline YAML.")],
    specialize: Annotated[bool, typer.Option(help="When the gates block with strategy 'specialize', train one LoRA adapter per failing service (needs collect: in the YAML).")] = False,
) -> None:
    """Run every step; unchanged steps are skipped, a crashed run resumes."""
    from tooltune.pipeline import PipelineConfig, run_pipeline
    from tooltune.pipeline.present import pipeline_progress, print_summary

    cfg = PipelineConfig.load(config)
    if specialize:
        cfg = PipelineConfig.model_validate({**cfg.model_dump(exclude_unset=True), "specialize": True})
    with pipeline_progress(console) as progress:
        result = run_pipeline(cfg, progress=progress)
    print_summary(result, console)


@app.command("schedule")
def pipeline_schedule(
    config: Annotated[Path, typer.Option(help="Pipeline YAML.")],
    retrain: Annotated[str, typer.Option(help="Cron expression for the full pipeline (default: Mondays 03:00).")] = "0 3 * * 1",
    collect: Annotated[str, typer.Option(help="Cron expression for failure collection (default: daily 02:00).")] = "0 2 * * *",
    check: Annotated[Optional[str], typer.Option(help="Cron expression for drift checks of the deployed versions against the services' live tools (`models check`), e.g. '*/15 * * * *'.")] = None,
) -> None:
    """Run the pipeline, failure collection and (with --check) drift checks on cron schedules (APScheduler; foreground)."""
    from tooltune.pipeline.schedule import run_schedule

    run_schedule(config, retrain=retrain, collect=collect, check=check, console=console)
