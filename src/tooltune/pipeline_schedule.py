"""Moved to :mod:`tooltune.pipeline.schedule`; kept until ``tooltune.cli`` imports it from there."""

from tooltune.pipeline.schedule import collect_failures, run_schedule

__all__ = ["collect_failures", "run_schedule"]
