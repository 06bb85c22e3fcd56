"""The models one server holds: one base, LoRA adapters on it, and anything else it was asked for.

A request's ``model`` is resolved by :meth:`ModelPool.resolve`:

- ``base``: the base model, adapters off;
- a name given with ``--adapter NAME=RUN``;
- with a registry: ``NAME@VERSION``, or ``NAME``, meaning the version the registry has live for
  the request's service (its own pointer after a partial deployment, else the one for every
  service), unless that version is stale for the service (its live tools changed in a breaking
  way since training): then an earlier compatible version or the base answers
  (:meth:`tooltune.registry.Registry.serving`), and ``Served.warning`` says so.

LoRA runs are attached once to the one base as named PEFT adapters (``load_adapter``) and the
active one is switched per request (``set_adapter``; ``disable_adapter`` for the base). Adapter
weights share the base's, so generation holds :attr:`ModelPool.lock` from the switch to the last
token: two requests never interleave on the shared model. Full-weights runs and prompt-only
models are whole models of their own and are loaded beside the base. Registry versions load on
first use and stay loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tooltune.errors import ConfigError, RegistryError, TooltuneError
from tooltune.runtime.model import (
    ADAPTER_CONFIG_FILE, LoadedModel, has_tokenizer, load_model, load_tokenizer, stop_token_ids,
)
from tooltune.serve.settings import BASE_NAME, ServeSettings


class ModelNotFound(TooltuneError):
    """The request's ``model`` names nothing this server can serve (answered with a 404)."""


@dataclass
class Served:
    """One servable model: what generates (``loaded``) and the PEFT adapter to switch on."""

    name: str
    """The id reported back in responses: ``base``, the adapter's name or ``NAME@VERSION``."""
    loaded: LoadedModel
    adapter: str | None = None
    """Name of the PEFT adapter on the shared base; None for the base itself and for whole models."""
    kind: str = "base"
    warning: str | None = None
    """Set per request when the registry version asked for is stale (or drifted) for the service."""


class ModelPool:
    """Loads and holds every model of one server; see the module docstring."""

    def __init__(self, settings: ServeSettings, registry: Any = None):
        self.settings = settings
        self.registry = registry
        self.base = load_model(settings.model, device=settings.device, dtype=settings.dtype)
        self._peft: Any = None  # the PeftModel around the base, once an adapter is attached
        self._served: dict[str, Served] = {BASE_NAME: Served(BASE_NAME, self.base)}
        self.lock = threading.Lock()
        """Held for the whole of a generation: the adapter switch and the shared weights."""
        self._load_lock = threading.Lock()
        for name, path in settings.adapters.items():
            self._served[name] = self._load(name, Path(path))

    @property
    def names(self) -> list[str]:
        """Names loaded now: the base, the configured adapters, registry versions used so far."""
        return list(self._served)

    def adapters(self) -> dict[str, Served]:
        return {k: v for k, v in self._served.items() if k != BASE_NAME}

    def resolve(self, model: str, service: str | None = None) -> Served:
        """The model a request's ``model`` (and service) selects; raises :class:`ModelNotFound`."""
        if model in self._served and "@" not in model:
            return self._served[model]
        if self.registry is None:
            raise ModelNotFound(f"model {model!r} is not served here; available: {', '.join(self._served)}. "
                                "Registry models (NAME, NAME@VERSION) need `tooltune serve --registry URL`.")
        record, warning = self._record(model, service)
        if record is None:  # stale, and no earlier version fits the live tools: the base answers
            return replace(self._served[BASE_NAME], warning=warning)
        with self._load_lock:
            if record.ref not in self._served:
                self._served[record.ref] = self._load(record.ref, _artifact_dir(record.artifact_path))
        served = self._served[record.ref]
        return replace(served, warning=warning) if warning else served

    def _record(self, model: str, service: str | None) -> tuple[Any, str | None]:
        """The registry version to serve (None: the base) and the drift warning, if any."""
        from tooltune.registry import Serving, parse_ref
        from tooltune.serve.drift import serving_warning

        name, version = parse_ref(model)
        try:
            if version:
                record = self.registry.get_model(name, version)
                drift = next((d for d in record.drift if d.service == service), None)
                return record, serving_warning(Serving(record, record, drift), service)
            serving = self.registry.serving(name, service)
        except RegistryError as e:
            raise ModelNotFound(f"model {model!r}: {e}") from e
        if serving.deployed is None:
            where = f"for service {service!r} " if service else ""
            raise ModelNotFound(f"model {model!r}: the registry has no version of {name!r} deployed {where}"
                                f"(deploy one with `tooltune models deploy`, or ask for NAME@VERSION).")
        return serving.model, serving_warning(serving, service)

    @contextmanager
    def using(self, served: Served) -> Iterator[LoadedModel]:
        """Hold the lock with ``served``'s adapter switched on (the base: adapters off)."""
        with self.lock:
            if served.adapter is not None:
                self._peft.set_adapter(served.adapter)
                yield served.loaded
            elif self._peft is not None and served.loaded is self.base:
                with self._peft.disable_adapter():  # LoRA layers sit inside the base's modules
                    yield served.loaded
            else:
                yield served.loaded  # a whole model of its own, or no adapter attached yet

    # -- loading --------------------------------------------------------------------------

    def _load(self, name: str, path: Path) -> Served:
        if not path.is_dir():
            raise ConfigError(f"adapter {name}: {path} is not a directory; give a run directory from `tooltune train`.")
        if (path / ADAPTER_CONFIG_FILE).is_file():
            return self._attach(name, path)
        loaded = load_model(path, device=self.settings.device, dtype=self.settings.dtype)
        return Served(name, loaded, None, loaded.kind)

    def _attach(self, name: str, path: Path) -> Served:
        """Add the LoRA run at ``path`` as adapter ``name`` of the shared base."""
        from peft import PeftModel

        adapter = _adapter_name(name)
        with self.lock:  # never change the module tree under a running generation
            try:
                if self._peft is None:
                    self._peft = PeftModel.from_pretrained(self.base.model, str(path), adapter_name=adapter)
                    self._peft.eval()
                else:
                    self._peft.load_adapter(str(path), adapter_name=adapter)
            except (OSError, ValueError, RuntimeError, KeyError) as e:
                raise ConfigError(f"adapter {name}: cannot attach {path} to the base {self.settings.model}: {e}. "
                                  "Check that the run was trained on this base (its manifest.json).") from e
        # A run's own tokenizer holds the template it was trained with.
        tokenizer = load_tokenizer(str(path)) if has_tokenizer(path) else self.base.tokenizer
        loaded = LoadedModel(model=self._peft, tokenizer=tokenizer, kind="adapter", name=name,
                             base_model=self.base.base_model, adapter=str(path),
                             stop_token_ids=stop_token_ids(tokenizer, self._peft))
        return Served(name, loaded, adapter, "adapter")


def _adapter_name(name: str) -> str:
    # PEFT adapter names become module attribute keys: no dots.
    return name.replace(".", "_").replace("@", "__")


def _artifact_dir(artifact_path: str) -> Path:
    path = Path(artifact_path)
    return path.parent if path.is_file() else path  # a prompt-only model registered by its file
