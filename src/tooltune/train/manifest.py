"""``manifest.json``: what a run was trained from, with what, and how it went.

The registry reads it to tie a model version to its base weights, tool catalog and data; every
input is identified by content (hashes), not only by name, so "the same" run can be checked.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import resource
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tooltune.tools.catalog import content_hash

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def dataset_hash(train_ids: list[str], val_ids: list[str]) -> str:
    """Identity of a train/val split: a hash over the example ids (content hashes) of each side."""
    return content_hash({"train": sorted(train_ids), "val": sorted(val_ids)})


def local_weights_hash(model_dir: Path) -> str:
    """SHA-256 over a local model's config and weight files (names and bytes), streamed."""
    digest = hashlib.sha256()
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name == "config.json"))
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def base_model_identity(base_model: str, revision: str | None, commit_hash: str | None) -> dict[str, Any]:
    """``id`` plus the hub revision/commit, or the content hash of a local directory."""
    path = Path(base_model)
    if path.is_dir():
        return {"id": base_model, "local": True, "content_hash": local_weights_hash(path)}
    return {"id": base_model, "local": False, "revision": revision, "commit": commit_hash}


def git_state(cwd: Path | None = None) -> dict[str, Any] | None:
    """Commit and dirty flag of the repository around ``cwd``, or None outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def peak_memory() -> dict[str, float | None]:
    """Peak resident memory of this process (MB, via ``resource``) and peak CUDA allocation if any."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss_kb / 1024 / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes
    cuda_mb = None
    try:
        import torch

        if torch.cuda.is_available():
            cuda_mb = torch.cuda.max_memory_allocated() / 2**20
    except ImportError:  # pragma: no cover - torch is installed with the train extra
        pass
    return {"peak_rss_mb": round(rss_mb, 1), "peak_cuda_mb": round(cuda_mb, 1) if cuda_mb is not None else None}


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("tooltune", "torch", "transformers", "trl", "peft", "accelerate", "datasets"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> Path:
    path = run_dir / MANIFEST_NAME
    body = {"manifest_version": MANIFEST_VERSION, "created_at": datetime.now(timezone.utc).isoformat(), **manifest}
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n")
    return path
