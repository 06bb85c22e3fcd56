"""A service's side of decentralized training data: publish its examples and test scenarios at
standard endpoints, to the orchestrator role only, audited and rate-limited (docs/decentralized-data.md).
The document both sides agree on is :mod:`tooltune.data.publication`.

The names below load on first use: ``tooltune`` imports this package's ``cli`` for every
command, and FastAPI / SQLAlchemy should only load when a publisher actually starts.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Publisher": "app", "create_app": "app", "publisher_router": "app",
    "AuditEntry": "audit", "AuditLog": "audit",
    "issue_token": "auth",
    "PublishConfig": "config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"tooltune.publish.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'tooltune.publish' has no attribute {name!r}")
