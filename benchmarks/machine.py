"""The machine a benchmark ran on, for the line every printed figure carries (issue #18: the same
command differs ~3x between an AMX Xeon and an AVX2 EPYC)."""

from __future__ import annotations

import os
import subprocess


def cpu_model() -> str:
    """lscpu's "Model name" (``unknown`` where lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name" and value.strip():
            return value.strip()
    return "unknown"


def machine(dtype: str, threads: int | None = None) -> dict:
    """CPU model, cores, torch threads and precision, as printed with each figure."""
    import torch

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": threads or torch.get_num_threads(),
            "dtype": dtype, "torch": torch.__version__}


def machine_line(dtype: str, threads: int | None = None) -> str:
    m = machine(dtype, threads)
    return f"machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, {m['dtype']}, torch {m['torch']}"
