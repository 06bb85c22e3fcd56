"""The request guard middleware and the forwarded-header rule (see the package docstring)."""

from __future__ import annotations

import inspect
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException

Scope = dict[str, Any]
ASGIApp = Callable[..., Awaitable[None]]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Names a loopback server answers to by default: what a browser on the same machine sends."""


@dataclass(frozen=True)
class Refusal:
    """An answer given instead of running the app."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


class RequestGuard:
    """ASGI middleware: refuse by ``Host``, body size and (optionally) credentials, before the app runs.

    ``allowed_hosts``: host names (no port) the server answers to; ``None`` or ``"*"`` allows any (a server
    on a public interface behind its own proxy). ``authorize(scope)`` returns a :class:`Refusal`
    for a request with a body whose credentials are missing or wrong. ``error_body(status,
    message)`` shapes the JSON answer as the app's other errors are shaped. ``on_refusal(scope,
    status, message)`` (sync or async) records each refusal; the scope carries the client address."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, allowed_hosts: list[str] | None = None,
                 authorize: Callable[[Scope], Refusal | None] | None = None,
                 error_body: Callable[[int, str], dict[str, Any]] | None = None,
                 on_refusal: Callable[[Scope, int, str], Any] | None = None):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = None if allowed_hosts is None or "*" in allowed_hosts else {
            h.lower().strip("[]") for h in allowed_hosts}
        self.authorize = authorize
        self.error_body = error_body or (lambda status, message: {"detail": message})
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check_host(scope)
        if refusal is None and self.authorize is not None and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            refusal = self.authorize(scope)  # a stranger learns nothing, not even the size limit
        refusal = refusal or self._check_length(scope)
        if refusal is not None:
            await self._refuse(scope, send, refusal)
            return
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised inside the app's body read: its HTTPException handler answers 413 in its own shape.
                    text = self._too_large(f"more than {received} bytes")
                    await self._record(scope, 413, text)
                    raise HTTPException(413, text)
            return message

        await self.app(scope, counted, send)

    def _check_host(self, scope: Scope) -> Refusal | None:
        if self.allowed_hosts is None:
            return None
        host = _host_name(_header(scope, b"host") or "")
        if host not in self.allowed_hosts:
            allowed = ", ".join(sorted(self.allowed_hosts))
            return Refusal(400, f"Host {host or '(none)'!r} is not one this server answers to ({allowed}); "
                                "add it to the server's allowed hosts if it is yours.")
        return None

    def _check_length(self, scope: Scope) -> Refusal | None:
        length = _header(scope, b"content-length")
        if length is None:
            return None
        if not length.isdigit():
            return Refusal(400, f"Content-Length {length[:40]!r} is not a number of bytes.")
        if int(length) > self.max_body_bytes:
            return Refusal(413, self._too_large(f"{int(length)} bytes"))
        return None

    def _too_large(self, size: str) -> str:
        return f"request body of {size} is over this server's limit of {self.max_body_bytes} bytes."

    async def _refuse(self, scope: Scope, send: Callable[[dict], Awaitable[None]], refusal: Refusal) -> None:
        await self._record(scope, refusal.status, refusal.message)
        body = json.dumps(self.error_body(refusal.status, refusal.message)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        headers += [(k.lower().encode(), v.encode()) for k, v in refusal.headers.items()]
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _record(self, scope: Scope, status: int, message: str) -> None:
        if self.on_refusal is not None:
            result = self.on_refusal(scope, status, message)
            if inspect.isawaitable(result):
                await result


def client_address(scope: Scope) -> str:
    """The peer's address (after :func:`forwarded_headers` has applied a trusted proxy's word)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def default_allowed_hosts(bind_host: str, allowed: list[str] | None) -> list[str] | None:
    """``allowed`` when given; else the loopback names for a loopback server, and any host otherwise."""
    if allowed is not None:
        return allowed
    if bind_host == "localhost" or _is_loopback(bind_host):
        return [*LOOPBACK_HOSTS, bind_host]
    return None


def install(app: Any, *, max_body_bytes: int, allowed_hosts: list[str] | None, trusted_proxies: list[str],
            authorize: Callable[[Scope], Refusal | None] | None = None,
            error_body: Callable[[int, str], dict[str, Any]] | None = None,
            on_refusal: Callable[[Scope, int, str], Any] | None = None) -> None:
    """Put :class:`RequestGuard` on a Starlette/FastAPI ``app``, behind the forwarded-header rule:
    ``X-Forwarded-For`` is read only when the peer is one of ``trusted_proxies`` (addresses or
    networks), so the guard and the app see the real client. Run uvicorn with
    ``proxy_headers=False``: its own default trusts the headers from 127.0.0.1, so any local
    client could pose as any address."""
    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes, allowed_hosts=allowed_hosts, authorize=authorize,
                       error_body=error_body, on_refusal=on_refusal)
    if trusted_proxies:  # added last, so it runs first
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(trusted_proxies))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
