"""Records a data stage could not use, kept with the reason instead of being dropped.

Every stage that rejects input (curated files, production logs, corrections, quality filters)
writes :class:`QuarantineRecord` lines, one JSON object per line::

    {"source": "shop.yaml:42", "reason": ["shop.yaml:44: training_examples[3]: …"], "record": {...}}

``source`` says where the record starts (``file:line``, ``file#/json/pointer``, or a log id),
``reason`` lists every problem as a full message (location, cause, fix), and ``record`` is the
input as read, so that a person can fix it and feed it back. Production-derived records are
anonymized before they get here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from tooltune.errors import DataError


class QuarantineRecord(BaseModel):
    source: str = Field(description="Where the record starts: file:line, file#/json/pointer, or a log id.")
    reason: list[str] = Field(min_length=1, description="Every problem found, each naming location, cause and fix.")
    record: Any = Field(description="The raw record as read (a string when the line was not even JSON).")


def write_quarantine(records: Iterable[QuarantineRecord | dict[str, Any]], path: str | Path) -> int:
    """Append ``records`` to the JSONL file at ``path`` (created with its folder); returns how many.

    Appending lets several stages of one build share a quarantine file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("a", encoding="utf-8") as f:
        for record in records:
            rec = record if isinstance(record, QuarantineRecord) else QuarantineRecord.model_validate(record)
            # default=str: YAML can hold values JSON cannot (binary, sets); a readable stand-in
            # beats losing the record.
            f.write(json.dumps(rec.model_dump(), ensure_ascii=False, default=str) + "\n")
            n += 1
    return n


def read_quarantine(path: str | Path) -> list[QuarantineRecord]:
    """The records of a quarantine / review-queue file; errors name file and line."""
    path = Path(path)
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(QuarantineRecord.model_validate_json(line))
                except ValidationError as e:
                    raise DataError(f"{path}:{lineno}: not a quarantine record: {e.errors()[0]['msg']}.") from e
    return out


def replace_quarantine(records: Iterable[QuarantineRecord | dict[str, Any]], path: str | Path) -> Path:
    """Write ``records`` as the whole quarantine file at ``path`` (a command's one-off output beside
    what it wrote, so a rerun does not append to the last run's rejects); returns the path."""
    path = Path(path)
    path.unlink(missing_ok=True)
    write_quarantine(records, path)
    return path

