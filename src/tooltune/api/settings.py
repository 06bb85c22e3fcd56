"""Typed settings of ``tooltune api``: one object shared by the CLI, the library and tests."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import ConfigDict, Field

from tooltune.httpguard import GuardFields

TOKEN_ENV = "TOOLTUNE_API_TOKEN"
"""Environment variable holding the bearer token that mutating routes require."""


class ApiSettings(GuardFields):
    """What ``tooltune api`` serves, where, and who may change things."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8600, ge=0, le=65535, description="Port to listen on (0: any free port).")
    token: str | None = Field(
        default_factory=lambda: os.environ.get(TOKEN_ENV) or None,
        description=f"Bearer token for mutating routes (default: ${TOKEN_ENV}); unset: every mutating route answers 401.")
    open_reads: bool | None = Field(
        None, description="Serve read-only routes without a token; default: only when host is a loopback address.")
    registry_url: str | None = Field(None, description="Registry database URL (default: $TOOLTUNE_DB_URL or .tooltune/registry.db).")
    work_dir: Path = Field(
        Path(".tooltune/api"),
        description="Where jobs' run directories, worker logs, built datasets and evaluation outputs go.")
    cancel_grace_s: float = Field(
        5.0, gt=0, description="Seconds a worker gets to stop after a cancel before it is killed.")
    poll_s: float = Field(1.0, gt=0, description="Seconds between checks of the workers (dead worker, cancel deadline).")

    @property
    def reads_open(self) -> bool:
        if self.open_reads is not None:
            return self.open_reads
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
