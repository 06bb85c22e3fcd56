"""The step cache: each step writes into ``work_dir/<step>-<key>/``, where ``key`` hashes
everything the step's output depends on, and marks the folder complete only when it finishes.

A re-run therefore skips every unchanged step, a changed setting re-runs that step and the ones
after it, and a crashed run resumes: a folder without its completion mark is redone (or, for
training, continued from its last checkpoint).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltune.tools.catalog import content_hash

DONE = "_complete.json"
"""The completion mark of a step's folder; it holds the step's summary."""


@dataclass
class StepRecord:
    name: str
    key: str
    path: Path
    skipped: bool
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[str, str], None]
"""``progress(step, state)`` with state ``start`` | ``skip`` | ``done``; the CLI draws it."""


def cached(step: str, key: str, out: Path, run: Callable[[], dict], note: Progress, steps: list[StepRecord],
           *, keep_partial: bool = False) -> dict:
    """``run()`` unless ``out`` is marked complete; returns (and marks ``out`` with) its summary."""
    done = out / DONE
    if done.exists():
        summary = json.loads(done.read_text())
        steps.append(StepRecord(step, key, out, True, 0.0, summary))
        note(step, "skip")
        return summary
    if out.exists() and not keep_partial:
        shutil.rmtree(out)  # a half-written folder from a crash: start the step over
    note(step, "start")
    started = time.monotonic()
    summary = run()
    out.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(summary, indent=2, default=str))
    steps.append(StepRecord(step, key, out, False, time.monotonic() - started, summary))
    note(step, "done")
    return summary


def file_hash(path: Path) -> str:
    """A file's content hash; a folder of logs or corrections hashes its JSONL files (their
    names and contents), so a day's new log lines re-run the data step."""
    if path.is_dir():
        return content_hash({str(p.relative_to(path)): content_hash(p.read_text()) for p in sorted(path.rglob("*.jsonl"))})
    return content_hash(path.read_text()) if path.exists() else f"missing:{path}"
