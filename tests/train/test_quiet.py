"""The CLI keeps transformers' bars and warnings off the terminal and puts them in a log file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parents[1] / "fixtures" / "train"


def test_cli_output_has_no_third_party_bars_and_the_log_file_has_them(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "catalog.json").write_text((FIXTURE / "catalog.json").read_text())
    (data / "test_phrasing.jsonl").write_text("".join((FIXTURE / "val.jsonl").read_text().splitlines(True)[:2]))
    log = tmp_path / "third-party.log"
    env = {**os.environ, "TOOLTUNE_LOG_FILE": str(log), "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "tooltune.cli", "eval", "--model", "builtin", "--data", str(data),
         "--max-new-tokens", "8", "-o", str(tmp_path / "eval")],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr
    terminal = done.stdout + done.stderr
    assert "Loading weights" not in terminal and "it/s]" not in terminal
    assert "builtin →" in done.stdout  # tooltune's own table is still there
    assert log.is_file()  # transformers' records went here instead
