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
from tooltune.pipeline.run import run_pipeline


def collect_failures(config: PipelineConfig, *, today: dt.date | None = None) -> dict[str, int]:
    """Ingest the configured production logs (files, or folders such as ``tooltune serve``'s
    ``DIR/requests``); failures go to ``work_dir/review/<date>.jsonl``.

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
    logs = config.data.logs
    if not logs:
        return {"examples": 0, "review": 0}
    loaded = ingest_logs(logs, catalog)  # all at once: feedback lines replace the turns they rate, across files
    return {"examples": len(loaded.examples), "review": write_quarantine(loaded.review, out) if loaded.review else 0}


def check_drift(config: PipelineConfig) -> list:
    """Compare every deployed version with the live tools of the config's services (``tooltune
    models check``): a breaking change marks a version stale, and servers reading the registry
    fall back. Returns the drift found."""
    from tooltune.registry import Registry
    from tooltune.tools.sources import discover_sources

    with Registry(url=config.registry_url) as reg:
        return reg.check_live_models(discover_sources(config.services))


def run_schedule(config_path: Path, *, retrain: str, collect: str, console: Console, check: str | None = None) -> None:
    """Block, running the pipeline on ``retrain``, failure collection on ``collect`` and, when
    given, drift checks on ``check`` (cron expressions)."""
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    def retrain_job() -> None:
        result = run_pipeline(PipelineConfig.load(config_path))
        console.print(f"retrained: {result.model.name}@{result.model.version}, deployed={result.deployed}")

    def collect_job() -> None:
        console.print(f"collected failures: {collect_failures(PipelineConfig.load(config_path))}")

    def check_job() -> None:
        drift = check_drift(PipelineConfig.load(config_path))
        stale = [f"{d.model} ({d.service}): {d.summary()}" for d in drift if d.stale]
        console.print(f"drift check: {'stale: ' + '; '.join(stale) if stale else 'every deployed version matches'}")

    PipelineConfig.load(config_path)  # a bad config fails now, not at the first cron tick; each run reads it again
    scheduler = BlockingScheduler()
    scheduler.add_job(retrain_job, CronTrigger.from_crontab(retrain), id="retrain", max_instances=1, coalesce=True)
    scheduler.add_job(collect_job, CronTrigger.from_crontab(collect), id="collect", max_instances=1, coalesce=True)
    if check:
        scheduler.add_job(check_job, CronTrigger.from_crontab(check), id="check", max_instances=1, coalesce=True)
    console.print(f"scheduled: pipeline '{retrain}', failure collection '{collect}'"
                  f"{f', drift check {check!r}' if check else ''} (Ctrl-C stops)")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
