"""Production logs written off the caller's thread: the format the data build reads,
anonymized before the disk, rotated by day and size, and a failing disk never blocks or raises."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from pathlib import Path

import pytest

from tooltune.data.feedback import InteractionLog, LoggedCall, ToolResult, ingest_logs
from tooltune.data.log_writer import LogWriter
from tooltune.tools.catalog import ToolCatalog

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(scope="module")
def catalog() -> ToolCatalog:
    return ToolCatalog.load(FIXTURES / "catalogs" / "shop.json")


def served(id: str, email: str = "maria.garcia@example.com", **extra) -> InteractionLog:
    return InteractionLog(
        id=id, timestamp=dt.datetime(2026, 12, 4, 10, tzinfo=dt.timezone.utc),
        messages=[{"role": "user", "content": f"Who is {email}?"}], tools=["get_customer_by_email", "get_orders"],
        calls=[LoggedCall(name="get_customer_by_email", arguments={"email": email})], outcome=extra.pop("outcome", "success"),
        model="shop-assistant@1.0.0", service="shop", catalog_hash="abc123", latency_ms=812.5,
        raw_output=f'<tool_call>\n{{"name": "get_customer_by_email", "arguments": {{"email": "{email}"}}}}\n</tool_call>',
        **extra)


def test_records_are_anonymized_and_read_back_by_the_data_build(tmp_path, catalog):
    writer = LogWriter(tmp_path / "requests")
    assert writer.write(served("chatcmpl-1"))
    assert writer.write(served("chatcmpl-2", outcome="failure", tool_results=[
        ToolResult(name="get_customer_by_email", is_error=True, result="No customer has the email 'x@example.com'.")]))
    assert writer.flush()
    writer.close()
    [file] = sorted((tmp_path / "requests").iterdir())
    text = file.read_text()
    assert "maria.garcia" not in text and "user1@example.com" in text  # in the message, the call and the raw output
    first = json.loads(text.splitlines()[0])
    assert first["model"] == "shop-assistant@1.0.0" and first["latency_ms"] == 812.5 and first["service"] == "shop"
    load = ingest_logs(tmp_path / "requests", catalog)  # the folder, as data.logs names it
    assert [e.provenance.origin for e in load.examples] == ["chatcmpl-1"]
    [review] = load.review
    assert any("rejected by the tool: No customer has the email" in r for r in review.reason)
    assert writer.stats["written"] == 2 and writer.stats["errors"] == 0


def test_files_rotate_by_size_and_by_day_and_sort_in_writing_order(tmp_path):
    now = [dt.datetime(2026, 12, 4, 23, 59, tzinfo=dt.timezone.utc)]
    writer = LogWriter(tmp_path, max_bytes=1500, clock=lambda: now[0])
    for i in range(6):
        writer.write(served(f"a{i}"))
    writer.flush()
    now[0] = dt.datetime(2026, 12, 5, 0, 1, tzinfo=dt.timezone.utc)
    writer.write(served("b0"))
    writer.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[0] == "2026-12-04-000.jsonl" and files[-1] == "2026-12-05-000.jsonl" and len(files) >= 4
    ids = [json.loads(line)["id"] for name in files for line in (tmp_path / name).read_text().splitlines()]
    assert ids == [f"a{i}" for i in range(6)] + ["b0"]
    assert all((tmp_path / n).stat().st_size <= 1500 for n in files)
    # A new writer (a restarted server) continues the day's last file instead of overwriting it.
    again = LogWriter(tmp_path, max_bytes=10_000, clock=lambda: now[0])
    again.write(served("b1"))
    again.close()
    assert [json.loads(x)["id"] for x in (tmp_path / "2026-12-05-000.jsonl").read_text().splitlines()] == ["b0", "b1"]


def test_a_full_disk_is_an_error_in_the_log_and_never_blocks(tmp_path, caplog):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full to stand in for a full disk")
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    (tmp_path / f"{day}-000.jsonl").symlink_to("/dev/full")  # every write fails with ENOSPC
    writer = LogWriter(tmp_path)
    with caplog.at_level(logging.ERROR, logger="tooltune.data.log_writer"):
        started = time.perf_counter()
        assert all(writer.write(served(f"r{i}")) for i in range(50))
        assert time.perf_counter() - started < 1.0  # queued, not written, on the caller's thread
        writer.flush()
    stats = writer.stats
    assert stats["errors"] == 50 and stats["written"] == 0 and "No space left" in stats["last_error"]
    assert len([r for r in caplog.records if "cannot write" in r.getMessage()]) == 1  # once, not 50 times
    writer.close()


def test_an_unwritable_folder_and_a_full_queue_drop_records_and_count_them(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log folder should be")
    writer = LogWriter(blocked / "requests")
    writer.write(served("x"))
    writer.flush()
    assert writer.stats["errors"] == 1 and "not-a-folder" in writer.stats["last_error"]
    writer.close()
    stopped = LogWriter(tmp_path / "ok", queue_size=2)
    stopped.close()  # no thread drains the queue any more
    results = [stopped.write(served(f"q{i}")) for i in range(4)]
    assert results == [True, True, False, False] and stopped.stats["dropped"] == 2
