"""The guard's settings, one definition shared by the serve, api and publish settings models."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GuardFields(BaseModel):
    """Fields every tooltune HTTP server takes for :mod:`tooltune.httpguard`."""

    max_body_bytes: int = Field(
        1 << 20, gt=0, description="Largest request body accepted, in bytes; a larger one is answered 413 before it is read.")
    allowed_hosts: list[str] | None = Field(
        None, description="Host header names the server answers to (no port; '*': any); default: localhost, 127.0.0.1 "
                          "and ::1 when it listens on loopback (against DNS rebinding), any name otherwise.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (addresses or networks) whose X-Forwarded-For is believed; default: none.")
