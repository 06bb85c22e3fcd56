"""``python -m tooltune.train --config train.yaml [--set key=value ...]``: one run of any backend.

The command-line-free entry point that ``torchrun`` and ``accelerate launch`` start once per
process (``torchrun --nproc_per_node 2 -m tooltune.train --config train.yaml``): every process
trains its shard of each batch, and only the main process writes the run directory. It prints the
run's result as JSON on stdout (main process only) and exits 1 with ``TypeName: message`` on a
tooltune error, like ``tooltune train``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tooltune.errors import TooltuneError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooltune.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="YAML file of TrainConfig fields.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Override a field (dotted path, YAML value), e.g. --set lora.r=32. Repeatable.")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar or event lines on stderr.")
    args = parser.parse_args(argv)

    from tooltune.train import load_train_config, run_training

    try:
        result = run_training(load_train_config(args.config, args.set), progress=not args.no_progress)
    except TooltuneError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        _shut_down_process_group(wait=False)  # the other ranks may never reach a barrier
        return 1
    _shut_down_process_group(wait=True)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result.summary(), indent=2))
    return 0


def _shut_down_process_group(*, wait: bool) -> None:
    """Wait for every rank, then tear the process group down before the interpreter exits: a
    rank that exits while another is still writing the run dir can abort in gloo's teardown
    ("terminate called without an active exception", seen once in the 2-process CPU test)."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
