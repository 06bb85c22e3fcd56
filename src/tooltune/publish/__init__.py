"""A service's side of decentralized training data: publish its examples and test scenarios at
standard endpoints, to the orchestrator role only, audited and rate-limited (docs/decentralized-data.md)."""

from tooltune.publish.app import Publisher, create_app, publisher_router
from tooltune.publish.audit import AuditEntry, AuditLog
from tooltune.publish.auth import issue_token
from tooltune.publish.config import PublishConfig
from tooltune.publish.document import ORCHESTRATOR_ROLE, PublicationMetadata, TrainingDataDocument, document_schema

__all__ = ["ORCHESTRATOR_ROLE", "AuditEntry", "AuditLog", "PublicationMetadata", "PublishConfig", "Publisher",
           "TrainingDataDocument", "create_app", "document_schema", "issue_token", "publisher_router"]
