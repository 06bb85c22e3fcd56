"""Moved to :mod:`tooltune.pipeline.present`; kept until ``tooltune.cli`` imports it from there."""

from tooltune.pipeline.present import pipeline_progress, print_summary

__all__ = ["pipeline_progress", "print_summary"]
