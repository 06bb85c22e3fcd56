"""The registry's tables (SQLAlchemy 2 declarative). Alembic migrations in ``migrations/`` create them.

Every change to a table here needs a migration in ``migrations/versions/``; a test compares the
migrated schema with these classes on SQLite and PostgreSQL, so drift fails CI.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Enum, ForeignKey, Index, MetaData, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tooltune.registry.gates import Outcome

# Stable constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ALL_SERVICES = "*"
"""``service`` value of a deployment that covers every service without its own pointer."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("registry timestamps must be timezone-aware (use datetime.now(timezone.utc))")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class JobStatus(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class ModelKind(str, enum.Enum):
    ADAPTER = "adapter"
    """A LoRA/PEFT adapter over ``base_model``."""
    FULL = "full"
    """Full fine-tuned (or merged) weights."""
    PROMPT = "prompt"
    """No weights: a few-shot prompt for ``base_model``."""

    def __str__(self) -> str:
        return self.value


class ModelStatus(str, enum.Enum):
    """Furthest lifecycle stage reached. Which version serves traffic is the separate live pointer."""

    REGISTERED = "registered"
    EVALUATED = "evaluated"
    DEPLOYED = "deployed"
    ARCHIVED = "archived"

    def __str__(self) -> str:
        return self.value


class Action(str, enum.Enum):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    ARCHIVE = "archive"

    def __str__(self) -> str:
        return self.value


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # VARCHAR + CHECK rather than a native PostgreSQL enum: adding a value later is a plain migration.
    return Enum(cls, name=name, native_enum=False, create_constraint=True, length=16,
                values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Catalog(Base):
    """Tool catalog snapshots by hash: the previous model's tools are needed to rate the next version."""

    __tablename__ = "catalogs"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tools: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    catalog_hash: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    counts: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingJob(Base):
    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"))
    progress: Mapped[float] = mapped_column(default=0.0)
    step: Mapped[int] = mapped_column(default=0)
    epoch: Mapped[float] = mapped_column(default=0.0)
    losses: Mapped[list[Any]]
    config: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    run_dir: Mapped[str] = mapped_column(Text)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    # Filled by the job API's worker (tooltune.api): the worker's pid (to detect a dead worker after
    # an API restart), the planned number of optimizer steps (for progress and ETA) and a cancel flag
    # the worker polls between steps.
    worker_pid: Mapped[int | None]
    total_steps: Mapped[int | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        # Idempotent registration: the same inputs under the same name are the same model.
        UniqueConstraint("name", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str] = mapped_column(String(32))
    major: Mapped[int]
    minor: Mapped[int]
    patch: Mapped[int]
    kind: Mapped[ModelKind] = mapped_column(_enum(ModelKind, "model_kind"))
    base_model: Mapped[str] = mapped_column(String(512))
    artifact_path: Mapped[str] = mapped_column(Text)
    catalog_hash: Mapped[str] = mapped_column(ForeignKey("catalogs.hash"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("training_jobs.id"))
    config: Mapped[dict[str, Any]]
    config_hash: Mapped[str] = mapped_column(String(64))
    artifact_hash: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[ModelStatus] = mapped_column(_enum(ModelStatus, "model_status"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Evaluation(Base):
    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    suite_version: Mapped[str] = mapped_column(String(64))
    split: Mapped[str] = mapped_column(String(64))
    overall: Mapped[float]
    per_category: Mapped[dict[str, Any]]
    per_tool: Mapped[dict[str, Any]]
    per_split: Mapped[dict[str, Any]]
    per_service: Mapped[dict[str, Any]]
    examples: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Comparison(Base):
    __tablename__ = "comparisons"

    id: Mapped[int] = mapped_column(primary_key=True)
    base_model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    """The registry version compared with; None when the base is a model outside the registry."""
    base_label: Mapped[str | None] = mapped_column(String(512))
    """That outside base: the model spec the user gave (``pypi:smollm2-135m-instruct``, an HF id)."""
    base_metrics: Mapped[dict[str, Any] | None]
    """The outside base's evaluation (``EvalMetrics``): the registry has no version to hold it."""
    details: Mapped[dict[str, Any] | None]
    """Where the evaluations behind the comparison were written (base_dir, candidate_dir,
    data_dir, split) and their latency, so failing examples can be shown."""
    candidate_model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    suite_version: Mapped[str] = mapped_column(String(64))
    wins: Mapped[int]
    losses: Mapped[int]
    ties: Mapped[int]
    deltas: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogDrift(Base):
    """The last drift check of a model version against one service's live catalog.

    A row exists only while the live tools differ from the ones the version was trained on;
    ``rating`` is the worst change (``breaking`` makes the version stale for that service)."""

    __tablename__ = "catalog_drift"
    __table_args__ = (UniqueConstraint("model_id", "service"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    service: Mapped[str] = mapped_column(String(128))
    rating: Mapped[str] = mapped_column(String(16))
    """``patch``, ``minor`` or ``breaking`` (tooltune.tools.diff.Rating)."""
    live_catalog_hash: Mapped[str] = mapped_column(ForeignKey("catalogs.hash"))
    """The service's live tools as last seen (kept in ``catalogs``, so the diff can be shown)."""
    changes: Mapped[list[Any]]
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)


class GateDecisionRow(Base):
    __tablename__ = "gate_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"))
    """The candidate evaluation decided on; a newer evaluation makes the decision stale."""
    baseline_model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    baselines: Mapped[dict[str, Any]]
    """Live pointers (service → model id) the decision was taken against; a deploy re-runs the
    gates when they have moved since."""
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome, "gate_outcome"))
    passed: Mapped[bool]
    checks: Mapped[list[Any]]
    config: Mapped[dict[str, Any]]
    deploy_services: Mapped[list[Any]]
    keep_services: Mapped[list[Any]]
    actor: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Deployment(Base):
    """Append-only history: one row per deploy, rollback or archive, per service scope."""

    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_name_service", "name", "service"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128), default=ALL_SERVICES)
    action: Mapped[Action] = mapped_column(_enum(Action, "deploy_action"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    previous_model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    """What a rollback from this row goes back to (for a rollback row: the target's own predecessor)."""
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("gate_decisions.id"))
    actor: Mapped[str] = mapped_column(String(128))
    notes: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LiveDeployment(Base):
    """Current pointer per (name, service): ``*`` serves every service without a row of its own."""

    __tablename__ = "service_deployments"
    __table_args__ = (UniqueConstraint("name", "service"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessAudit(Base):
    """One access to a service's published training or test data, allowed or refused (tooltune.publish)."""

    __tablename__ = "access_audit"
    __table_args__ = (Index("ix_access_audit_service_at", "service", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    service: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(256))
    """Who: the token's ``sub`` claim, or None when no valid token was presented."""
    roles: Mapped[list[Any]]
    method: Mapped[str] = mapped_column(String(8))
    resource: Mapped[str] = mapped_column(Text)
    """What: the path and query string."""
    status_code: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(32))
    """``allowed``, ``unauthenticated``, ``forbidden``, ``rate_limited`` or ``not_modified``."""
    detail: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(String(64))
    """The client's address (a trusted proxy's X-Forwarded-For, else the peer's)."""
