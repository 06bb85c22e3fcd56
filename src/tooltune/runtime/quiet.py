"""Keep third-party chatter off the user's terminal: one progress display per step is tooltune's.

transformers, PEFT, TRL, accelerate and datasets print their own tqdm bars ("Loading weights",
"Converting and de-quantizing GGUF tensors", "Map") and warnings ("Token indices sequence length
is longer than ..."). The CLI calls :func:`route_third_party` first thing: their log records go
to a file instead and their progress bars are off; tooltune's own messages and rich progress are
untouched. It is cheap (no heavy import): transformers' own stderr handler is swapped for the file
by :func:`settle_transformers`, which the model loaders call once transformers is imported anyway.
Library users who never call :func:`route_third_party` keep their own logging setup.

Overlong examples are tooltune's business, reported by example where they are handled:
``train.dataset`` skips and counts them, the eval runner counts truncated prompts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

THIRD_PARTY_LOGGERS = ("transformers", "peft", "trl", "accelerate", "datasets", "huggingface_hub", "torch", "httpx",
                       "alembic", "sqlalchemy")  # migrations log at INFO; the mcp SDK puts a console handler on root

_handler: logging.Handler | None = None
_settled = False


def route_third_party(log_file: Path) -> None:
    """Send third-party log records and warnings to ``log_file`` (appending) and turn their
    progress bars off, for the rest of the process."""
    global _handler
    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TRANSFORMERS_NO_ADVISORY_WARNINGS"):
        os.environ.setdefault(name, "1")  # read when those libraries are imported
    log_file.parent.mkdir(parents=True, exist_ok=True)
    _handler = logging.FileHandler(log_file, encoding="utf-8", delay=True)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in (*THIRD_PARTY_LOGGERS, "py.warnings"):
        lib_logger = logging.getLogger(name)
        lib_logger.propagate = False  # never reaches a console handler of the root logger
        lib_logger.setLevel(logging.INFO)
        lib_logger.addHandler(_handler)
    logging.captureWarnings(True)  # warnings.warn(...) from libraries land in the file too
    if "transformers" in sys.modules:
        settle_transformers()


def settle_transformers() -> None:
    """Once transformers is imported: replace its stderr handler by the file, bars off. A no-op
    unless :func:`route_third_party` ran (library use keeps transformers' defaults)."""
    global _settled
    if _handler is None or _settled:
        return
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.set_verbosity_info()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").addHandler(_handler)
    _settled = True


@contextlib.contextmanager
def quiet_third_party() -> Iterator[None]:
    """Within the block, stderr output (third-party tqdm bars that ignore every switch, such as
    the GGUF reader's) goes to the log file, or nowhere when no file is set."""
    settle_transformers()
    target = getattr(_handler, "baseFilename", None) or os.devnull
    with open(target, "a", encoding="utf-8") as sink, contextlib.redirect_stderr(sink):
        yield


@contextlib.contextmanager
def no_progress_bars() -> Iterator[None]:
    """transformers' progress bars off within the block (saving and loading weights draws them)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()
