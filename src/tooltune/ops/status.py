"""``tooltune status``: the environment and what tooltune knows, in one report.

Library versions, the compute device and its threads, the precision ``auto`` chooses here and
why, the registry (URL, counts, datasets, models and the versions live per service), and the size
of every cache tooltune reads or fills. Nothing is created or changed but the precision probe's
cache entry (:mod:`tooltune.runtime.precision`): a registry database that does not exist yet is
reported as such, not made.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tooltune.runtime.machine import cpu_model, describe_machine, usable_cores
from tooltune.runtime.precision import PrecisionChoice, explain_precision

LIBRARIES = ("tooltune", "torch", "transformers", "peft", "trl", "accelerate", "mcp", "falkordb")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


class Device(BaseModel):
    kind: str = Field(description="cuda, mps or cpu.")
    name: str = Field(description="GPU name, or the CPU's model name.")
    count: int = Field(description="GPUs visible, or CPU cores usable by this process.")
    memory_bytes: int | None = Field(None, description="Total memory of the first GPU (None for CPU / MPS).")
    torch_threads: int = Field(description="CPU threads torch runs an operation on (torch.get_num_threads()).")
    thread_settings: dict[str, str] = Field(
        default_factory=dict, description="Environment variables that set those threads (OMP_NUM_THREADS, MKL_NUM_THREADS), when set.")
    cpu_flags: list[str] = Field(default_factory=list, description="Precision-relevant CPU flags present (AMX, AVX512-BF16, AVX2 ...).")


class ModelEntry(BaseModel):
    ref: str = Field(description="name@version.")
    kind: str
    status: str
    base_model: str
    dataset_version: str | None
    live_services: list[str]


class DatasetEntry(BaseModel):
    version: str
    path: str
    examples: int | None = Field(description="Examples over all splits, when the build recorded counts.")


class RegistryStatus(BaseModel):
    url: str
    exists: bool = Field(description="False when the (SQLite) database has not been created yet.")
    error: str | None = Field(None, description="Why it could not be read, when it could not.")
    counts: dict[str, int] = Field(default_factory=dict, description="models, datasets, jobs, evaluations, deployments.")
    datasets: list[DatasetEntry] = Field(default_factory=list)
    models: list[ModelEntry] = Field(default_factory=list)
    deployed: dict[str, dict[str, str]] = Field(default_factory=dict, description="model name → scope ('*' or service) → live version.")


class CacheEntry(BaseModel):
    name: str
    path: str
    exists: bool
    bytes: int
    files: int


class StatusReport(BaseModel):
    python: str
    platform: str
    versions: dict[str, str | None] = Field(description="Installed version per library (None: not installed).")
    device: Device
    precision: PrecisionChoice = Field(description="What precision: auto / dtype: auto resolve to here, and why.")
    registry: RegistryStatus
    caches: list[CacheEntry]


def collect_status(registry_url: str | None = None) -> StatusReport:
    """Everything ``tooltune status`` shows; ``registry_url`` defaults to the registry's default URL."""
    device = detect_device()
    precision = explain_precision(device.kind)  # before the caches: a first probe writes its cache file
    return StatusReport(
        python=platform.python_version(), platform=platform.platform(),
        versions={name: _version(name) for name in LIBRARIES}, device=device, precision=precision,
        registry=registry_status(registry_url), caches=cache_entries(),
    )


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def detect_device() -> Device:
    """CUDA (name and memory of the first GPU), else Apple MPS, else the CPU with its usable cores."""
    import torch

    machine = describe_machine()
    threads = {"torch_threads": torch.get_num_threads(), "cpu_flags": machine.flags,
               "thread_settings": {k: os.environ[k] for k in THREAD_VARIABLES if os.environ.get(k)}}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Device(kind="cuda", name=props.name, count=torch.cuda.device_count(), memory_bytes=props.total_memory, **threads)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return Device(kind="mps", name="Apple MPS", count=1, **threads)
    return Device(kind="cpu", name=cpu_model(), count=usable_cores(), **threads)


def registry_status(url: str | None = None) -> RegistryStatus:
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from tooltune.errors import TooltuneError
    from tooltune.registry.db import Registry
    from tooltune.registry.engine import default_url, normalize_url
    from tooltune.registry.tables import Deployment, Evaluation, TrainingJob

    url = normalize_url(url or default_url())
    sqlite_file = _sqlite_path(url)
    if sqlite_file is not None and not sqlite_file.exists():
        return RegistryStatus(url=url, exists=False)
    try:
        # migrate=False: looking must not upgrade (or create) anyone's database.
        with Registry(url, migrate=False) as registry:
            models = registry.list_models()
            datasets = registry.list_datasets()
            with registry.engine.connect() as connection:
                extra = {name: connection.scalar(select(func.count()).select_from(table)) or 0
                         for name, table in (("jobs", TrainingJob), ("evaluations", Evaluation), ("deployments", Deployment))}
            deployed = {name: {scope: m.version for scope, m in registry.deployments(name).items()}
                        for name in sorted({m.name for m in models})}
            shown_url = registry.url
    except (TooltuneError, SQLAlchemyError) as e:
        return RegistryStatus(url=url, exists=True, error=f"{type(e).__name__}: {str(e).splitlines()[0]}")
    return RegistryStatus(
        url=shown_url, exists=True,
        counts={"models": len(models), "datasets": len(datasets), **extra},
        datasets=[DatasetEntry(version=d.version, path=d.path, examples=_examples(d.counts)) for d in datasets],
        models=[ModelEntry(ref=f"{m.name}@{m.version}", kind=m.kind.value, status=m.status.value, base_model=m.base_model,
                           dataset_version=m.dataset_version, live_services=m.live_services) for m in models],
        deployed={name: scopes for name, scopes in deployed.items() if scopes},
    )


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return None
    return Path(url.removeprefix("sqlite:///"))


def _examples(counts: dict[str, Any]) -> int | None:
    """Examples over the splits: the pipeline and the job API record ``split_sizes`` (split → count)."""
    values = [v for v in counts.values() if isinstance(v, int) and not isinstance(v, bool)]
    return sum(values) if values else None


def cache_dirs() -> dict[str, Path]:
    """Every cache tooltune fills or reads, by name."""
    from tooltune.demo import DEFAULT_DATA_DIR
    from tooltune.graph.embedded import DEFAULT_GRAPH_DIR

    home = Path(os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface")
    return {
        "tooltune models": _tooltune_cache(),
        "hugging face": Path(os.environ["HF_HUB_CACHE"]) if os.environ.get("HF_HUB_CACHE") else home / "hub",
        "demo services": Path.cwd() / DEFAULT_DATA_DIR,
        "code graph": Path.cwd() / DEFAULT_GRAPH_DIR,
    }


def _tooltune_cache() -> Path:
    try:
        from tooltune.runtime.pretrained import cache_dir
    except ImportError:  # a checkout without the pretrained-model loader
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tooltune"
    return cache_dir()


def cache_entries() -> list[CacheEntry]:
    out = []
    for name, path in cache_dirs().items():
        size, files = _size(path)
        out.append(CacheEntry(name=name, path=str(path), exists=path.exists(), bytes=size, files=files))
    return out


def _size(path: Path) -> tuple[int, int]:
    """Bytes and files under ``path``; symlinks are not followed (the HF cache links blobs)."""
    total = files = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                stat = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            total += stat.st_size
            files += 1
    return total, files


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"



def precision_text(choice: PrecisionChoice) -> str:
    """``auto`` → bf16 / fp32, the reason, and the probe's figures and where they came from."""
    text = f"auto → [bold]{choice.precision}[/] on {choice.device}: {choice.reason}"
    if choice.source == "environment" and choice.probe is not None:
        text += f"\n  without it: {choice.probe.summary()}"
    if choice.probe_file is not None:
        text += f"\n  probe cache: {choice.probe_file}"
    return text


def status_panel(report: StatusReport) -> Any:
    """The report as one rich panel: environment, device, registry, caches."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    env = Table.grid(padding=(0, 2))
    env.add_row("python", f"{report.python} ({report.platform})")
    for name, version in report.versions.items():
        env.add_row(name, version or "[dim]not installed[/]")
    device = report.device
    if device.kind == "cuda":
        env.add_row("device", f"cuda: {device.name} × {device.count}, {human_bytes(device.memory_bytes)}")
    else:
        env.add_row("device", f"{device.kind}: {device.name}" + (f", {device.count} cores" if device.kind == "cpu" else ""))
    settings = ", ".join(f"{k}={v}" for k, v in device.thread_settings.items())
    env.add_row("threads", f"{device.torch_threads} torch threads" + (f" ({settings})" if settings else ""))
    if device.cpu_flags:
        env.add_row("cpu flags", " ".join(device.cpu_flags))
    env.add_row("precision", precision_text(report.precision))

    reg = report.registry
    parts: list[Any] = [env, f"[bold]registry[/] {reg.url}"]
    if not reg.exists:
        parts.append("  [dim]not created yet (the first `pipeline run` or `models` command creates it)[/]")
    elif reg.error:
        parts.append(f"  [red]{reg.error}[/]")
    else:
        parts.append("  " + "  ".join(f"{k} {v}" for k, v in reg.counts.items()))
        if reg.models:
            models = Table(show_edge=False)
            for column in ("model", "kind", "status", "base", "dataset", "live for"):
                models.add_column(column)
            for m in reg.models:
                models.add_row(m.ref, m.kind, m.status, m.base_model, (m.dataset_version or "-")[:16], ", ".join(m.live_services) or "-")
            parts.append(models)
        if reg.datasets:
            parts.append("  datasets: " + ", ".join(f"{d.version[:16]} ({d.examples if d.examples is not None else '?'} examples)"
                                                    for d in reg.datasets))
    parts.append("[bold]caches[/]")
    caches = Table(show_edge=False)
    for column in ("cache", "path", "size", "files"):
        caches.add_column(column, justify="right" if column in ("size", "files") else "left")
    for c in report.caches:
        caches.add_row(c.name, c.path, human_bytes(c.bytes) if c.exists else "[dim]absent[/]", str(c.files))
    parts.append(caches)
    return Panel(Group(*parts), title="tooltune status", expand=False)
