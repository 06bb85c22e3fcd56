"""``services.yaml``: which publishers the orchestrator pulls from, and with which credentials.

::

    defaults:                      # optional; every field of a service entry
      token_env: TOOLTUNE_ORCHESTRATOR_TOKEN
      timeout: 10
    services:
      - url: http://shop.internal:8700          # name, owner, gate come from its .well-known
        token_file: secrets/shop.jwt
      - url: http://calendar.internal:8700
        mcp_http: http://calendar.internal:8000/mcp   # validate against the live MCP catalog
      - http://weather.internal:8700           # a bare base URL: discovered through .well-known

Relative ``token_file`` paths are taken from the file's folder. A token is never written into
the collected data, the state file or the report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tooltune.errors import ConfigError
from tooltune.safeload import load_config, validate_config


class ServiceEntry(BaseModel):
    """One publisher."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Base URL of the publisher (its /.well-known/mcp-training-data.json is read).")
    name: str | None = Field(None, description="Expected service name; default: the one the publisher announces.")
    token: str | None = Field(None, description="Bearer token (JWT with the ml_orchestrator role). Prefer token_env / token_file.")
    token_env: str | None = Field(None, description="Environment variable holding the token.")
    token_file: Path | None = Field(None, description="File holding the token.")
    mcp_http: str | None = Field(None, description="The service's MCP endpoint: validate against the catalog discovered there "
                                                   "instead of the one the publisher serves.")
    owner: str | None = Field(None, description="Owner to list when the service fails its gate (default: the publisher's).")
    min_accuracy_required: float | None = Field(None, ge=0, le=1, description="Override the publisher's gate on its tests.")
    timeout: float = Field(10.0, gt=0, description="Seconds per HTTP request.")
    retries: int = Field(2, ge=0, le=10, description="Retries after a timeout, connection error, 429 or 5xx.")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each retry (a Retry-After header wins).")
    page_size: int = Field(500, ge=1, le=1000, description="Examples per page requested.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"url {value!r} must start with http:// or https://")
        return value.rstrip("/")

    def bearer(self, where: str) -> str | None:
        """The token, from whichever of token / token_env / token_file is set."""
        if self.token:
            return self.token
        if self.token_env:
            value = os.environ.get(self.token_env)
            if not value:
                raise ConfigError(f"{where}: token_env {self.token_env} is not set; export the orchestrator's token.")
            return value.strip()
        if self.token_file:
            try:
                return self.token_file.read_text().strip()
            except OSError as e:
                raise ConfigError(f"{where}: token_file {self.token_file}: {e.strerror}.") from e
        return None


class CollectConfig(BaseModel):
    """The whole ``services.yaml``."""

    model_config = ConfigDict(extra="forbid")

    services: list[ServiceEntry] = Field(min_length=1, description="Publishers to pull.")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="Share of the collected training examples kept for val.")

    @classmethod
    def load(cls, path: str | Path) -> CollectConfig:
        path = Path(path)
        config = load_config(cls, path, prepare=lambda raw: _expanded(raw, where=str(path)))
        fixed = [s.model_copy(update={"token_file": path.parent / s.token_file})
                 if s.token_file and not s.token_file.is_absolute() else s for s in config.services]
        return config.model_copy(update={"services": fixed})

    @classmethod
    def parse(cls, raw: Any, *, where: str = "services") -> CollectConfig:
        """Validate a mapping (bare URL strings allowed in ``services``; ``defaults`` fill every entry)."""
        return validate_config(cls, _expanded(raw, where=where), source=where)


def _expanded(raw: Any, *, where: str) -> dict[str, Any]:
    """``raw`` with ``defaults`` merged into every entry and bare URLs made ``{url: ...}``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with a services list, got {type(raw).__name__}.")
    raw = dict(raw)
    defaults = raw.pop("defaults", None) or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{where}: defaults must be a mapping of service fields.")
    entries = raw.get("services")
    if isinstance(entries, list):
        raw["services"] = [{**defaults, **({"url": e} if isinstance(e, str) else e)} if isinstance(e, (str, dict)) else e
                           for e in entries]
    return raw
