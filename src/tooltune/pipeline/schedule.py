"""Recurring runs: the full pipeline (weekly retraining) and failure collection (daily).

Built on APScheduler's cron triggers rather than a loop of our own: it handles cron syntax,
missed runs and overlapping jobs. Failure collection reads the production logs the pipeline's
data section names and writes each day's failures to a review queue beside the pipeline's work.
With ``collect: services.yaml`` as the data source, each weekly run first pulls what the
services publish (incrementally), so retraining uses their current data and tests.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console

from tooltune.pipeline.config import PipelineConfig
from tooltune.pipeline.steps import run_pipeline


def collect_failures(config: PipelineConfig, *, today: dt.date | None = None) -> dict[str, int]:
    """Ingest the configured production logs; failures go to ``work_dir/review/<date>.jsonl``.

    Returns counts: successful turns seen (they join the data at the next retraining, when the
    data step reads the same logs) and records queued for review."""
    from tooltune.data.feedback import ingest_logs
    from tooltune.data.quarantine import write_quarantine
    from tooltune.tools.catalog import ToolCatalog

    catalog_path = config.work_dir / "catalog.json"
    if not catalog_path.exists():
        return {"examples": 0, "review": 0}  # nothing discovered yet: the first pipeline run comes first
    catalog = ToolCatalog.load(catalog_path)
    out = config.work_dir / "review" / f"{(today or dt.date.today()).isoformat()}.jsonl"
    out.unlink(missing_ok=True)
    counts = {"examples": 0, "review": 0}
    for log in config.data.get("logs", []):
        loaded = ingest_logs(Path(log), catalog)
        counts["examples"] += len(loaded.examples)
        counts["review"] += write_quarantine(loaded.review, out) if loaded.review else 0
    return counts


def run_schedule(config_path: Path, *, retrain: str, collect: str, console: Console) -> None:
    """Block, running the pipeline on ``retrain`` and failure collection on ``collect`` (cron)."""
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    def retrain_job() -> None:
        result = run_pipeline(PipelineConfig.load(config_path))
        console.print(f"retrained: {result.model.name}@{result.model.version}, deployed={result.deployed}")

    def collect_job() -> None:
        console.print(f"collected failures: {collect_failures(PipelineConfig.load(config_path))}")

    PipelineConfig.load(config_path)  # a bad config fails now, not at the first cron tick; each run reads it again
    scheduler = BlockingScheduler()
    scheduler.add_job(retrain_job, CronTrigger.from_crontab(retrain), id="retrain", max_instances=1, coalesce=True)
    scheduler.add_job(collect_job, CronTrigger.from_crontab(collect), id="collect", max_instances=1, coalesce=True)
    console.print(f"scheduled: pipeline '{retrain}', failure collection '{collect}' (Ctrl-C stops)")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
