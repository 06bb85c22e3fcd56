"""The terminal the ``tooltune`` commands print to: one rich console for results, one for errors.

It lives in the ``cli`` package because only the commands print results. The rooms below
never import it: their presenters (``tools/present.py``, ``eval/present.py``,
``registry/present.py``, ``ops/status.py``) return rich renderables that a command prints, and
those that draw while they work (``data/report.build_progress``, ``pipeline/present``,
``pipeline/schedule``, ``collect/present``) take the console as an argument. The only prints
made below the CLI are progress lines of long training runs (``train/callbacks``,
``train/cloud``, ``train/fewshot``): they open rich's own stderr ``Console``, so that a library
caller sees them too.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

# Piped output (make, CI logs) would get rich's 80-column default, which truncates the wide
# comparison and gate tables; a terminal or an explicit $COLUMNS still decides when present.
_PIPED_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
console = Console(width=_PIPED_WIDTH)
err_console = Console(stderr=True)
