"""Append-only JSONL logs written off the caller's thread: one folder, one file per UTC day,
split at a size limit (``2026-12-04-000.jsonl``, ``2026-12-04-001.jsonl``, ...), so the names
sort in the order the lines were written and a reader never sees a file renamed under it.

``tooltune serve`` writes every answered request here as an
:class:`~tooltune.data.feedback.InteractionLog` line and its feedback as
:class:`~tooltune.data.feedback.Correction` lines, ``tooltune chat`` its turns with their tool
results: the formats the data build reads (``data.logs``, ``data.corrections`` accept the
folders). Each record is anonymized (:func:`~tooltune.data.feedback.anonymize_record`) in the
writer's thread, before it reaches the disk.

Written by hand rather than with ``logging.handlers``: their rotating handlers rename files
(``.1``, ``.2``) and rotate by size *or* time, not both; this writer needs names that sort
chronologically and both limits. ``write`` never blocks the caller: a full queue drops the
record and counts it, and a write that fails (a full disk, a folder that cannot be written) is
logged as an error and counted; both show in :attr:`LogWriter.stats`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from tooltune.data.anonymize import Anonymizer, AnonymizerConfig
from tooltune.data.feedback import anonymize_record

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_ERROR_EVERY_S = 60.0  # a full disk fails every write: log the first failure, then one a minute
_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})-(\d{3,})\.jsonl$")


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class LogWriter:
    """JSONL records appended to ``directory`` by a background thread; see the module docstring."""

    def __init__(self, directory: str | Path, *, anonymizer: AnonymizerConfig | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, queue_size: int = 10_000, anonymize: bool = True,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._clock = clock
        self._scrubber = Anonymizer(anonymizer) if anonymize else None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._stats = {"written": 0, "dropped": 0, "errors": 0}
        self._last_error: str | None = None
        self._error_logged_at = float("-inf")
        self._file: IO[str] | None = None
        self._path: Path | None = None
        self._size = 0
        self._thread = threading.Thread(target=self._run, name=f"tooltune-log-{self.directory.name}", daemon=True)
        self._thread.start()

    # ---- caller side -------------------------------------------------------------------------

    def write(self, record: BaseModel | dict[str, Any]) -> bool:
        """Queue ``record`` (a pydantic model or a JSON-able dict); False when it was dropped."""
        data = record.model_dump(mode="json", exclude_none=True) if isinstance(record, BaseModel) else record
        try:
            self._queue.put_nowait(data)
            return True
        except queue.Full:
            with self._lock:
                self._stats["dropped"] += 1
            self._report(f"the log queue is full ({self._queue.maxsize} records waiting): record dropped")
            return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record queued so far is written (or failed); False on timeout."""
        marker = _Flush()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread and close the file."""
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    @property
    def stats(self) -> dict[str, Any]:
        """Records written, dropped (queue full) and failed (write errors), the last error, the current file."""
        with self._lock:
            return {**self._stats, "last_error": self._last_error, "file": str(self._path) if self._path else None}

    # ---- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._close_file()
                return
            if isinstance(item, _Flush):
                if self._file is not None:
                    try:
                        self._file.flush()
                    except OSError as e:
                        self._failed(e)
                item.done.set()
                continue
            self._append(item)

    def _append(self, data: dict[str, Any]) -> None:
        try:
            line = json.dumps(anonymize_record(self._scrubber, data) if self._scrubber else data,
                              ensure_ascii=False, default=str) + "\n"
            file = self._file_for(len(line.encode()))
            file.write(line)
            file.flush()  # a reader (the data build, feedback lookups) sees whole lines
            self._size += len(line.encode())
            with self._lock:
                self._stats["written"] += 1
        except (OSError, TypeError, ValueError) as e:
            self._failed(e)

    def _file_for(self, length: int) -> IO[str]:
        day = self._clock().date().isoformat()
        if (self._file is not None and self._path is not None and self._path.name.startswith(day)
                and (self._size + length <= self.max_bytes or not self._size)):
            return self._file
        self._close_file()
        self.directory.mkdir(parents=True, exist_ok=True)
        indexes = [int(m[2]) for p in self.directory.glob(f"{day}-*.jsonl") if (m := _NAME.match(p.name))]
        index = max(indexes, default=0)
        path = self.directory / f"{day}-{index:03d}.jsonl"
        if path.exists() and path.stat().st_size and path.stat().st_size + length > self.max_bytes:
            path = self.directory / f"{day}-{index + 1:03d}.jsonl"
        file = path.open("a", encoding="utf-8")
        self._file, self._path, self._size = file, path, path.stat().st_size
        return file

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
        self._file, self._path, self._size = None, None, 0

    def _failed(self, error: Exception) -> None:
        self._close_file()  # the next record opens the file again: the disk may have room by then
        with self._lock:
            self._stats["errors"] += 1
        self._report(f"cannot write to {self.directory}: {error}; the record is lost. Free space or fix the "
                     "folder's permissions; serving goes on.")

    def _report(self, message: str) -> None:
        with self._lock:
            self._last_error = message
            now = time.monotonic()
            if now - self._error_logged_at < _ERROR_EVERY_S:
                return
            self._error_logged_at = now
        logger.error("production log: %s", message)


def log_files(directory: str | Path) -> list[Path]:
    """The folder's log files, oldest first: their names sort in writing order."""
    directory = Path(directory)
    return sorted(p for p in directory.glob("*.jsonl") if _NAME.match(p.name)) if directory.is_dir() else []
