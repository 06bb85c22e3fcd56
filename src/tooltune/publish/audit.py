"""The access audit log: every request for a service's published data, allowed or refused.

Rows go to the registry database's ``access_audit`` table (migration 0002) through the
registry's engine, so the audit trail lives beside models, evaluations and deployments and
works on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import sessionmaker

from tooltune.errors import RegistryError
from tooltune.registry.engine import create_registry_engine, default_url, upgrade
from tooltune.registry.tables import AccessAudit


class AuditEntry(BaseModel):
    """One audited access: who, what, when, outcome."""

    at: datetime
    service: str
    subject: str | None
    roles: list[str]
    method: str
    resource: str
    status_code: int
    outcome: str
    detail: str | None = None
    client: str | None = None


class AuditLog:
    """Appends :class:`AuditEntry` rows for one service; ``url`` is a SQLAlchemy URL (default: the registry's)."""

    def __init__(self, url: str | None = None):
        self.engine = create_registry_engine(url or default_url())
        try:
            upgrade(self.engine)
        except DatabaseError as e:  # OperationalError: unreachable; DatabaseError: "file is not a database"
            self.engine.dispose()
            raise RegistryError(f"cannot open the audit database {self.engine.url!r}: {e.orig}. "
                                "Check --db / $TOOLTUNE_DB_URL.") from e
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def record(self, *, service: str, subject: str | None, roles: list[str] | tuple[str, ...], method: str,
               resource: str, status_code: int, outcome: str, detail: str | None = None, client: str | None = None) -> None:
        with self._sessions.begin() as s:
            s.add(AccessAudit(service=service, subject=subject, roles=list(roles), method=method, resource=resource,
                              status_code=status_code, outcome=outcome, detail=detail, client=client))

    def entries(self, service: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Newest first."""
        query: Any = select(AccessAudit).order_by(AccessAudit.id.desc())
        if service is not None:
            query = query.where(AccessAudit.service == service)
        if limit is not None:
            query = query.limit(limit)
        with self._sessions.begin() as s:
            return [AuditEntry.model_validate(row, from_attributes=True) for row in s.scalars(query)]

    def close(self) -> None:
        self.engine.dispose()
