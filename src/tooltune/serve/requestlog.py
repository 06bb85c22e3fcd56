"""The production log of ``tooltune serve``: every answered request, and the feedback on it.

``DIR/requests/`` gets one :class:`~tooltune.data.feedback.InteractionLog` line per response
(the format ``data.logs`` reads): the conversation, the offered tools and their catalog hash,
what answered (``NAME@VERSION``, an adapter, ``base``) for which service, the raw output, the
parsed calls, what is wrong with them, and the latency. ``DIR/corrections/`` gets
:class:`~tooltune.data.feedback.Correction` lines from ``POST /v1/feedback``
(:mod:`tooltune.serve.feedback`); feedback also writes the turn again with its outcome, which
replaces the first line when the data is built. Lines are anonymized and written off the
request path (:class:`~tooltune.data.log_writer.LogWriter`): a failing disk is an error in the
server's log, never a failed request.

The outcome the server writes is what it can see: ``error`` when the output has call markup
that does not parse or calls that do not fit the offered tools, else ``unrated``: whether the
answer was right is the client's to say, and a turn nobody judged is neither training data nor
a failure. ``tooltune chat`` posts each call's tool result as feedback (a call the tool
rejected makes the turn a ``failure``), and an application posts the user's verdict.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from tooltune.data.call_checks import check_call
from tooltune.data.examples import ExpectedCall
from tooltune.data.feedback import Correction, InteractionLog, LoggedCall
from tooltune.data.log_writer import LogWriter, log_files
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool, ToolCatalog

REQUESTS_DIR = "requests"
CORRECTIONS_DIR = "corrections"


class RequestLog:
    """Writes a server's requests and feedback under one folder; finds a logged response by id."""

    def __init__(self, directory: str | Path, *, max_bytes: int, remember: int = 10_000):
        self.directory = Path(directory)
        self.requests = LogWriter(self.directory / REQUESTS_DIR, max_bytes=max_bytes)
        self.corrections = LogWriter(self.directory / CORRECTIONS_DIR, max_bytes=max_bytes)
        self._recent: OrderedDict[str, InteractionLog] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()

    def record(self, entry: InteractionLog) -> None:
        """Log a response (or its update after feedback): remembered, then written in the background."""
        with self._lock:
            self._recent[entry.id] = entry
            self._recent.move_to_end(entry.id)
            while len(self._recent) > self._remember:
                self._recent.popitem(last=False)
        self.requests.write(entry)

    def correct(self, correction: Correction) -> None:
        self.corrections.write(correction)

    def find(self, response_id: str) -> InteractionLog | None:
        """The logged response: from memory, else the newest line with that id in the log files
        (after a restart; those lines are anonymized already)."""
        with self._lock:
            if response_id in self._recent:
                return self._recent[response_id]
        self.requests.flush(timeout=5)
        needle = json.dumps(response_id)
        for path in reversed(log_files(self.directory / REQUESTS_DIR)):
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in reversed(lines):
                if needle in line:
                    try:
                        entry = InteractionLog.model_validate_json(line)
                    except ValueError:
                        continue
                    if entry.id == response_id:
                        return entry
        return None

    def stats(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "requests": self.requests.stats, "corrections": self.corrections.stats}

    def close(self) -> None:
        self.requests.close()
        self.corrections.close()


def served_entry(*, response_id: str, messages: list[dict[str, Any]], tools: list[Tool], model: str, requested: str,
                 service: str | None, raw_output: str, calls: list[ToolCall], markup_problem: str | None,
                 latency_ms: float) -> InteractionLog:
    """The log line of one response, with the problems the server can see in it."""
    problems = [f"call markup does not parse: {markup_problem}"] if markup_problem else []
    if tools:
        offered = ToolCatalog(tools=tools)
        for i, call in enumerate(calls):
            problems += [f"calls[{i}] ({call.name}): {p.message}"
                         for p in check_call(ExpectedCall(name=call.name, arguments=call.arguments), offered)]
    return InteractionLog(
        id=response_id, timestamp=dt.datetime.now(dt.timezone.utc), messages=messages, tools=[t.name for t in tools],
        calls=[LoggedCall(name=c.name, arguments=c.arguments) for c in calls], outcome="error" if problems else "unrated",
        model=model, requested_model=requested if requested != model else None, service=service,
        catalog_hash=ToolCatalog(tools=tools).hash if tools else None, raw_output=raw_output, parse_problems=problems,
        latency_ms=round(latency_ms, 1))
