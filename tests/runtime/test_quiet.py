"""The CLI keeps transformers' bars and warnings off the terminal and puts them in a log file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parents[1] / "fixtures" / "train"


def test_cli_output_has_no_third_party_bars_and_the_log_file_has_them(tmp_path, tiny_base_dir):
    (tmp_path / "tiny").symlink_to(tiny_base_dir)  # a short name: the table's title holds it
    data = tmp_path / "data"
    data.mkdir()
    (data / "catalog.json").write_text((FIXTURE / "catalog.json").read_text())
    (data / "test_phrasing.jsonl").write_text("".join((FIXTURE / "val.jsonl").read_text().splitlines(True)[:2]))
    log = tmp_path / "third-party.log"
    env = {**os.environ, "TOOLTUNE_LOG_FILE": str(log), "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "tooltune.cli", "eval", "--model", "tiny", "--data", str(data),
         "--max-new-tokens", "8", "-o", str(tmp_path / "eval")],
        capture_output=True, text=True, env=env, timeout=240, check=False, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    terminal = done.stdout + done.stderr
    assert "Loading weights" not in terminal and "it/s]" not in terminal
    assert "tiny →" in done.stdout  # tooltune's own table is still there
    assert log.is_file()  # transformers' records went here instead


def test_migration_records_reach_the_file_not_a_console_handler_on_root(tmp_path):
    # The mcp SDK's in-process servers call logging.basicConfig with a console handler at INFO;
    # Alembic's "Running upgrade ..." records then printed in the middle of `make demo`.
    log = tmp_path / "third-party.log"
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "from pathlib import Path\n"
        "from tooltune.runtime.quiet import route_third_party\n"
        f"route_third_party(Path({str(log)!r}))\n"
        "logging.getLogger('alembic.runtime.migration').info('Running upgrade  -> 0001')\n"
        "logging.getLogger('tooltune').info('ours')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "Running upgrade" not in done.stderr and "ours" in done.stderr
    assert "Running upgrade  -> 0001" in log.read_text()
