"""The machine a figure was measured on: CPU model, cores, torch threads, and the CPU flags that
decide precision.

One home for "which machine is this", used by ``tooltune status``, by the precision choice
(:mod:`tooltune.runtime.precision`) and by every script under ``benchmarks/``, which prints
:func:`machine_line` first: the same command runs ~3x apart on an AMX Xeon and an AVX2-only EPYC,
so a figure without its machine cannot be compared with anything.

It lives in ``runtime/``, the lowest layer that runs models, so that every layer above can name its machine.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel, Field

CPUINFO = Path("/proc/cpuinfo")
# The flags that say whether bf16 matrix multiplies have hardware support: x86 AMX tiles and
# AVX512-BF16 (/proc/cpuinfo "flags"), the Arm BF16 extension ("Features").
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
SHOWN_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2", "bf16")
_DTYPE_NAMES = {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}


class Machine(BaseModel):
    """What a figure was measured on."""

    cpu_model: str = Field(description="The CPU's model name, as lscpu's \"Model name\" shows it.")
    cores: int = Field(description="CPU cores this process may run on (its affinity mask).")
    torch_threads: int | None = Field(None, description="Intra-op threads torch uses (None: torch not installed).")
    flags: list[str] = Field(description="The precision-relevant CPU flags present (AMX, AVX512-BF16, AVX2 ...).")
    gpu: str | None = Field(None, description="Name of the first CUDA GPU, when one is visible.")


def cpu_model() -> str:
    """lscpu's "Model name": /proc/cpuinfo's "model name" on x86, lscpu itself elsewhere (Arm)."""
    name = _cpuinfo_field("model name")
    if name:
        return name
    if shutil.which("lscpu"):
        try:
            out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> frozenset[str]:
    """All flags the CPU reports (x86 "flags", Arm "Features"); empty where /proc/cpuinfo is absent."""
    return frozenset((_cpuinfo_field("flags") or _cpuinfo_field("Features") or "").split())


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask, which containers and taskset narrow."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def describe_machine() -> Machine:
    """The machine this process runs on (reads /proc/cpuinfo; imports torch when installed)."""
    flags = cpu_flags()
    return Machine(cpu_model=cpu_model(), cores=usable_cores(), torch_threads=torch_threads(),
                   flags=[f for f in SHOWN_FLAGS if f in flags], gpu=_gpu_name())


def machine_line(precision: object = None) -> str:
    """One line naming the machine, for benchmark output and docs, e.g. ``machine: Intel(R)
    Xeon(R) Processor (amx_bf16 avx512_bf16), 2 cores, 2 torch threads, precision bf16``.
    ``precision``: a name (``bf16``, ``fp32``, ``int8`` ...) or a torch dtype; None leaves it out."""
    m = describe_machine()
    precision = precision_name(precision)
    flags = [f for f in m.flags if f in BF16_FLAGS] or [f for f in m.flags if f == "avx2"]
    parts = [m.cpu_model + (f" ({' '.join(flags)})" if flags else ""), f"{m.cores} cores"]
    if m.torch_threads is not None:
        parts.append(f"{m.torch_threads} torch threads")
    if m.gpu:
        parts.append(f"GPU {m.gpu}")
    if precision:
        parts.append(f"precision {precision}")
    return "machine: " + ", ".join(parts)


def precision_name(precision: object) -> str | None:
    """``bf16``/``fp32``/``fp16`` for a torch dtype; a name (or None) as given."""
    if precision is None:
        return None
    return _DTYPE_NAMES.get(str(precision), str(precision))


def _cpuinfo_field(name: str) -> str | None:
    """The first value of ``name`` in /proc/cpuinfo (every processor repeats it)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _gpu_name() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
