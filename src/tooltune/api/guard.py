"""The job API's checks before any work: token before the body is read, Host, body size; and the
log of every refused request with the client address (``tooltune.api.refused``)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI

from tooltune.api.settings import TOKEN_ENV, ApiSettings
from tooltune.httpguard import Refusal, client_address, default_allowed_hosts, install

refused_log = logging.getLogger("tooltune.api.refused")


def token_problem(settings: ApiSettings, authorization: str | None) -> str | None:
    """Why ``authorization`` (the header's value) does not grant writes, or ``None`` when it does."""
    if settings.token is None:
        return (f"this API has no token configured, so nothing can be changed; start it with --token or "
                f"${TOKEN_ENV} set.")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), settings.token.encode()):
        return "missing or wrong bearer token: send Authorization: Bearer <token>."
    return None


def record_refusal(method: str, path: str, client: str, status: int, message: str) -> None:
    refused_log.warning("refused %s %s from %s: %d %s", method, path, client, status, message)


def guard(app: FastAPI, settings: ApiSettings) -> None:
    """Install the request guard: bodies only from callers with the token, and only so large."""

    def authorize(scope: dict[str, Any]) -> Refusal | None:
        header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"authorization"), None)
        problem = token_problem(settings, header)
        return Refusal(401, problem, {"WWW-Authenticate": "Bearer"}) if problem else None

    def on_refusal(scope: dict[str, Any], status: int, message: str) -> None:
        record_refusal(scope["method"], scope["path"], client_address(scope), status, message)

    install(app, max_body_bytes=settings.max_body_bytes, allowed_hosts=default_allowed_hosts(settings.host, settings.allowed_hosts),
            trusted_proxies=settings.trusted_proxies, authorize=authorize, on_refusal=on_refusal)
