"""Which float precision runs fastest on this machine: the one answer to ``precision: auto``
(training) and ``dtype: auto`` (evaluation, serving, benchmarks).

- **CUDA**: bf16 where the GPU supports it (``torch.cuda.is_bf16_supported()``), fp32 otherwise.
- **CPU**: bf16 only where it is faster. The CPU must advertise bf16 matrix instructions (AMX-BF16
  or AVX512-BF16 on x86, BF16 on Arm), *and* a short matmul probe must find bf16 at least
  :data:`MIN_SPEEDUP` times fp32's speed; fp32 otherwise. Without those instructions torch's bf16
  matmul runs a generic kernel: 8x slower than fp32 on an AVX2-only AMD EPYC, where ``precision:
  bf16`` left the demo at 5 of its 30 training steps after 10 minutes (issue #18). The flags alone are not trusted: a hypervisor or
  an ISA cap (``ONEDNN_MAX_CPU_ISA``) can hide what they promise, so the probe has the last word.
- ``TOOLTUNE_PRECISION=fp32|bf16`` overrides ``auto`` everywhere (an explicit ``precision:`` in a
  config still wins): run the demo as an AVX2-only CPU would with ``TOOLTUNE_PRECISION=fp32``.

The probe times one linear layer the shape of the model's MLP up-projection (hidden → intermediate
size; SmolLM2-135M's 576 → 1536 when no model is named, as in ``tooltune status``) over 1,024
tokens (one packed training row, or the prefill of a few prompts), fp32 and bf16, on the threads
torch uses, alternating, for about 0.1 s each. The model's own shape matters: small layers are
bound by per-call and threading overhead rather than arithmetic. On the shared 2-core AMX Xeon with
2 threads, bf16 ran a 576-wide layer 2-3x faster but the 128-wide tiny test base's (tests/fixtures/tiny_base) no
faster, and that base's training step was slower under autocast (with 1 thread its layer gained
too, and the step came out even). The
probe is cached in ``precision-probe.json`` under the tooltune cache directory, keyed by CPU
model, CPU flags, torch version, thread count and shape.

bf16 forced where the probe finds it slower than fp32 (a config's ``precision: bf16`` or
``dtype: bf16``, or the environment) runs as asked, with a :class:`PrecisionWarning` that gives
the measured ratio.

It lives in ``runtime/`` beside :mod:`tooltune.runtime.machine`, below train, eval, serve and
export, which all choose a precision.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from tooltune.errors import ConfigError
from tooltune.runtime.machine import BF16_FLAGS, cpu_flags, cpu_model
from tooltune.runtime.pretrained import cache_dir

logger = logging.getLogger(__name__)

PRECISION_ENV = "TOOLTUNE_PRECISION"
PROBE_FILE = "precision-probe.json"
MIN_SPEEDUP = 1.2
"""bf16 must run the probe's matmul at least this many times fp32's speed to be chosen: a whole
training step gains less than the matmul alone (casts, optimizer, attention stay in fp32)."""
PROBE_TOKENS = 1024
REFERENCE_SHAPE = (576, 1536)  # SmolLM2-135M: hidden size -> MLP intermediate size
PROBE_SECONDS = 0.1  # per precision, after one warm-up call each (oneDNN builds its kernel on the first)
_ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")  # env caps on the kernels torch picks

Chosen = Literal["bf16", "fp32"]


class PrecisionWarning(UserWarning):
    """bf16 was forced on a CPU where it runs slower than fp32."""


class Probe(BaseModel):
    """One timing of the same matmul in fp32 and in bf16."""

    fp32_gflops: float = Field(description="fp32 matmul speed, GFLOP/s (best of the runs).")
    bf16_gflops: float = Field(description="bf16 matmul speed, GFLOP/s (best of the runs).")
    threads: int = Field(description="torch threads the probe ran on.")
    shape: str = Field(description="The matmul timed: tokens x in -> out.")
    seconds: float = Field(description="Wall time the probe took.")
    torch: str = Field(description="torch version.")
    measured_at: str = Field(description="When (UTC, ISO 8601).")

    @property
    def speedup(self) -> float:
        """bf16 speed over fp32 speed (above 1: bf16 is faster)."""
        return self.bf16_gflops / self.fp32_gflops if self.fp32_gflops > 0 else 0.0

    def summary(self) -> str:
        return (f"bf16 matmul {self.bf16_gflops:g} GFLOP/s vs fp32 {self.fp32_gflops:g} ({_ratio(self.speedup)}; "
                f"{self.shape}, {self.threads} threads)")


class PrecisionChoice(BaseModel):
    """What ``auto`` resolves to on a device, and why."""

    precision: Chosen
    device: str = Field(description="cpu or cuda (the device kind the choice is for).")
    source: Literal["cuda", "environment", "cpu"] = Field(
        description="What decided: the GPU's bf16 support, $TOOLTUNE_PRECISION, or the CPU's flags and probe.")
    reason: str = Field(description="The choice in words, with the figures behind it.")
    bf16_flags: list[str] = Field(default_factory=list, description="bf16 CPU flags seen (amx_bf16, avx512_bf16, bf16).")
    probe: Probe | None = Field(None, description="The CPU matmul probe (None on CUDA, or when the environment decided).")
    probe_cached: bool | None = Field(None, description="True: the probe came from the cache file; False: measured now.")
    probe_file: str | None = Field(None, description="The probe cache file.")


def choose_precision(device: str = "cpu", shape: tuple[int, int] | None = None) -> PrecisionChoice:
    """What ``auto`` means on ``device`` (``cpu``, ``cuda``, ``cuda:N``; anything else gets fp32)
    for a model whose linear layers map ``shape`` = (hidden size, intermediate size) (default
    :data:`REFERENCE_SHAPE`; see :func:`model_shape`). Runs the probe on a CPU unless the
    environment decides (cached after the first run)."""
    kind = "cuda" if device.startswith("cuda") else device
    forced = environment_precision()
    if forced is not None:
        choice = PrecisionChoice(precision=forced, device=kind, source="environment",
                                 reason=f"{PRECISION_ENV}={forced} in the environment")
        if forced == "bf16" and kind == "cpu":
            warn_if_slow("bf16", f"{PRECISION_ENV}=bf16", shape)
        return choice
    if kind == "cuda":
        import torch

        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return PrecisionChoice(precision="bf16" if bf16 else "fp32", device=kind, source="cuda",
                               reason="the GPU supports bf16" if bf16 else "the GPU has no bf16 support")
    if kind != "cpu":
        return PrecisionChoice(precision="fp32", device=kind, source="cpu", reason=f"bf16 is only chosen on CPU or CUDA, not {kind}")
    return _cpu_choice(shape or REFERENCE_SHAPE)


def explain_precision(device: str = "cpu") -> PrecisionChoice:
    """:func:`choose_precision`, with the CPU's flags and probe filled in even when the environment
    decided (for ``tooltune status``: what ``auto`` would find without the override)."""
    choice = choose_precision(device)
    if choice.device != "cpu" or choice.probe is not None:
        return choice
    probe, cached = bf16_probe()
    return choice.model_copy(update={"bf16_flags": _bf16_flags(), "probe": probe, "probe_cached": cached,
                                     "probe_file": str(probe_file())})


def resolve_precision(requested: str, device: str = "cpu", shape: tuple[int, int] | None = None) -> str:
    """The precision to run a model of ``shape`` in: ``auto`` resolved by :func:`choose_precision`;
    an explicit value as given, warning (:class:`PrecisionWarning`) when it is bf16 on a CPU that
    runs bf16 slower."""
    if requested == "auto":
        choice = choose_precision(device, shape)
        logger.info("precision auto on %s: %s (%s)", choice.device, choice.precision, choice.reason)
        return choice.precision
    if requested == "bf16" and device == "cpu":
        warn_if_slow("bf16", "bf16 was asked for", shape)
    return requested


def precision_for(requested: str, model: str | Path | None = None, device: str | None = None, *,
                  revision: str | None = None) -> str:
    """:func:`resolve_precision` for ``model`` (a local directory or hub id, whose width the CPU
    probe uses) on ``device`` (default: CUDA when available, else the CPU)."""
    import torch

    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    kind = "cuda" if kind.startswith("cuda") else kind
    wants_probe = model is not None and kind == "cpu" and requested in ("auto", "bf16")
    return resolve_precision(requested, kind, model_shape(model, revision) if wants_probe else None)


def model_shape(source: str | Path, revision: str | None = None) -> tuple[int, int] | None:
    """(hidden size, MLP intermediate size) from a model's config (a local directory or hub id),
    or None when it cannot be read (the probe then uses :data:`REFERENCE_SHAPE`)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(source), revision=revision).get_text_config()
    except (OSError, ValueError, KeyError):
        return None
    hidden = getattr(config, "hidden_size", None)
    if not isinstance(hidden, int):
        return None
    intermediate = getattr(config, "intermediate_size", None)
    return hidden, intermediate if isinstance(intermediate, int) else 4 * hidden


def environment_precision() -> Chosen | None:
    """``$TOOLTUNE_PRECISION`` (fp32 or bf16), or None when unset or ``auto``."""
    value = os.environ.get(PRECISION_ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in ("fp32", "bf16"):
        raise ConfigError(f"{PRECISION_ENV}={value!r}: expected fp32, bf16 or auto (unset it to let tooltune choose).")
    return value  # type: ignore[return-value]


def warn_if_slow(precision: str, why: str, shape: tuple[int, int] | None = None) -> None:
    """Warn when bf16 runs slower than fp32 on this CPU (probing it if not cached yet)."""
    if precision != "bf16":
        return
    probe, _ = bf16_probe(shape or REFERENCE_SHAPE)
    if probe.speedup < 1.0:
        warnings.warn(
            f"{why}, but bf16 is slower than fp32 on this CPU ({cpu_model()}): {probe.summary()}. "
            f"Use precision: auto / dtype: auto (or {PRECISION_ENV}=fp32) to run fp32 here.",
            PrecisionWarning, stacklevel=3,
        )


def bf16_probe(shape: tuple[int, int] = REFERENCE_SHAPE) -> tuple[Probe, bool]:
    """This machine's fp32-vs-bf16 matmul probe for ``shape`` and whether it came from the cache
    file; measured (and stored) when the cache has no entry for this CPU, torch version, thread
    count and shape."""
    import torch

    path = probe_file()
    key = _probe_key(torch.__version__, torch.get_num_threads(), shape)
    entries = _read_cache(path)
    if key in entries:
        return entries[key], True
    probe = measure_probe(shape)
    entries[key] = probe
    _write_cache(path, entries)
    return probe, False


def measure_probe(shape: tuple[int, int] = REFERENCE_SHAPE) -> Probe:
    """Time the probe matmul for ``shape`` in fp32 and bf16 (about 0.2-0.6 s in all)."""
    import torch

    started = time.perf_counter()
    fp32, bf16 = _gflops(shape)
    return Probe(fp32_gflops=round(fp32, 1), bf16_gflops=round(bf16, 1), threads=torch.get_num_threads(),
                 shape=_shape_text(shape), seconds=round(time.perf_counter() - started, 3),
                 torch=torch.__version__, measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def probe_file() -> Path:
    return cache_dir() / PROBE_FILE


def _cpu_choice(shape: tuple[int, int]) -> PrecisionChoice:
    flags = _bf16_flags()
    probe, cached = bf16_probe(shape)
    measured = f"{probe.summary()}, {'cached' if cached else 'measured now'}"
    if not flags:
        reason = f"no bf16 instructions in the CPU flags (no AMX-BF16, AVX512-BF16 or Arm BF16); {measured}"
    elif probe.speedup < MIN_SPEEDUP:
        reason = f"the CPU reports {', '.join(flags)} but bf16 is not {MIN_SPEEDUP:g}x faster here: {measured}"
    else:
        reason = f"{', '.join(flags)}; {measured}"
    fast = bool(flags) and probe.speedup >= MIN_SPEEDUP
    return PrecisionChoice(precision="bf16" if fast else "fp32", device="cpu", source="cpu", reason=reason,
                           bf16_flags=flags, probe=probe, probe_cached=cached, probe_file=str(probe_file()))


def _bf16_flags() -> list[str]:
    return sorted(cpu_flags() & set(BF16_FLAGS))


def _gflops(shape: tuple[int, int]) -> tuple[float, float]:
    """Best fp32 and bf16 speeds of one (tokens x in) @ (in x out) product over about twice
    PROBE_SECONDS. The two alternate, so other load on a shared machine slows both alike."""
    import torch

    (width, out), gen = shape, torch.Generator().manual_seed(0)
    x, w = torch.randn(PROBE_TOKENS, width, generator=gen), torch.randn(out, width, generator=gen)
    pairs = {"fp32": (x, w), "bf16": (x.bfloat16(), w.bfloat16())}
    best = dict.fromkeys(pairs, float("inf"))
    with torch.no_grad():
        for a, b in pairs.values():
            torch.nn.functional.linear(a, b)
        runs, deadline = 0, time.perf_counter() + 2 * PROBE_SECONDS
        while runs < 2 or time.perf_counter() < deadline:
            for name, (a, b) in pairs.items():
                start = time.perf_counter()
                torch.nn.functional.linear(a, b)
                best[name] = min(best[name], time.perf_counter() - start)
            runs += 1
    flops = 2 * PROBE_TOKENS * width * out
    return flops / best["fp32"] / 1e9, flops / best["bf16"] / 1e9


def _shape_text(shape: tuple[int, int]) -> str:
    return f"{PROBE_TOKENS}x{shape[0]} -> {shape[1]}"


def _probe_key(torch_version: str, threads: int, shape: tuple[int, int]) -> str:
    """CPU model, a digest of every CPU flag, torch version, threads, shape and any instruction-set
    cap: a new CPU (or VM type), torch upgrade, thread count, model width or cap measures again."""
    flags = hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:12]
    caps = "".join(f" | {name}={os.environ[name]}" for name in _ISA_CAPS if os.environ.get(name))
    return f"{cpu_model()} | flags {flags} | torch {torch_version} | {threads} threads | {_shape_text(shape)}{caps}"


def _read_cache(path: Path) -> dict[str, Probe]:
    """The cached probes; an unreadable or foreign file counts as empty (it is rewritten)."""
    try:
        raw = json.loads(path.read_text())
        return {key: Probe.model_validate(value) for key, value in raw.items()}
    except (OSError, ValueError, AttributeError, ValidationError):
        return {}


def _write_cache(path: Path, entries: dict[str, Probe]) -> None:
    """Write aside, then rename: concurrent processes (DDP ranks) never read half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: v.model_dump() for k, v in entries.items()}, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache costs a probe per process, nothing else
        logger.warning("could not cache the precision probe in %s: %s", path, e)


def _ratio(speedup: float) -> str:
    return f"{speedup:.2f}x fp32's speed" if speedup >= 0.5 else f"{1 / max(speedup, 1e-9):.1f}x slower"
