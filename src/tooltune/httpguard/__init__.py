"""What tooltune's HTTP servers (``serve``, ``api``, ``publish``) refuse before any work.

:class:`RequestGuard` is an ASGI middleware that answers, before the app reads or parses a byte
of the body: a ``Host`` not in the allowed list (DNS rebinding against a loopback server), a body
over the size limit (declared, or counted while it streams in), and, when the app asks,
credentials missing on a request that carries a body (FastAPI parses the body before it runs the
route's auth dependency). Every refusal goes to the app's ``on_refusal`` with the client address.

:func:`install` puts it on an app behind the forwarded-header rule: ``X-Forwarded-For`` /
``X-Forwarded-Proto`` count only from the configured proxies (uvicorn's own default trusts them
from 127.0.0.1, so any local client could pose as any address and dodge a per-address rate limit).
"""

from tooltune.httpguard.middleware import (
    LOOPBACK_HOSTS,
    Refusal,
    RequestGuard,
    client_address,
    default_allowed_hosts,
    install,
)
from tooltune.httpguard.settings import GuardFields

__all__ = ["GuardFields", "LOOPBACK_HOSTS", "Refusal", "RequestGuard", "client_address", "default_allowed_hosts", "install"]
