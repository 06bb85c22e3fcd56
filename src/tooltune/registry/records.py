"""What the registry returns: detached, typed snapshots of its rows (never live ORM objects),
and the functions that read them from rows inside a session; plus the two helpers that the
``Registry`` (:mod:`tooltune.registry.db`) and its ``JobQueue`` (:mod:`tooltune.registry.jobs`)
share: a dataset looked up by version, and a config as the JSON a row stores."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from tooltune.errors import RegistryError
from tooltune.registry.metrics import Breakdown, EvalMetrics
from tooltune.registry.tables import (
    Action,
    CatalogDrift,
    Comparison,
    Dataset,
    Deployment,
    Evaluation,
    JobStatus,
    LiveDeployment,
    Model,
    ModelKind,
    ModelStatus,
    TrainingJob,
)
from tooltune.tools.diff import CatalogDiff


def model_ref(name: str, version: str) -> str:
    return f"{name}@{version}"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, protected_namespaces=())


class DatasetRecord(_Record):
    id: int
    version: str
    content_hash: str
    catalog_hash: str
    path: str
    counts: dict[str, Any]
    created_at: datetime


class JobRecord(_Record):
    id: int
    status: JobStatus
    progress: float = Field(description="Fraction of the run done, in [0, 1].")
    step: int
    epoch: float
    losses: list[dict[str, Any]] = Field(description="One entry per progress report with losses (Registry.jobs.update or report_progress): step, epoch and the values.")
    config: dict[str, Any]
    error: str | None
    run_dir: str
    dataset_version: str | None
    worker_pid: int | None = Field(None, description="Process id of the job API's worker running the job.")
    total_steps: int | None = Field(None, description="Planned optimizer steps (known once training starts).")
    cancel_requested: bool = Field(False, description="Cancel asked for; the worker stops at its next check.")
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None


class DriftRecord(_Record):
    """How one service's live tools differ from the ones a model version was trained on."""

    model: str = Field(description="name@version")
    service: str
    rating: str = Field(description="Worst change: patch, minor or breaking (breaking: the version is stale).")
    changes: list[dict[str, Any]] = Field(description="Each change: kind, rating, tool, param, new_param, detail.")
    trained_catalog_hash: str
    live_catalog_hash: str = Field(description="The service's live tools as last seen (stored in the registry).")
    detected_at: datetime
    checked_at: datetime
    migrate_command: str | None = Field(
        None, description="The commands that carry the version's dataset over to the live tools (breaking drift).")

    @property
    def stale(self) -> bool:
        return self.rating == "breaking"

    def summary(self, limit: int = 3) -> str:
        """``breaking: get_orders.customer_id renamed to 'customer' (+2 more)``: the worst changes first."""
        order = {"breaking": 0, "minor": 1, "patch": 2}
        ranked = sorted(self.changes, key=lambda c: order.get(c.get("rating", ""), 3))
        shown = [_change_text(c) for c in ranked[:limit]]
        more = f" (+{len(ranked) - limit} more)" if len(ranked) > limit else ""
        return f"{self.rating}: {'; '.join(shown)}{more}"


def _change_text(change: dict[str, Any]) -> str:
    where = f"{change.get('tool')}.{change['param']}" if change.get("param") else str(change.get("tool"))
    return f"{where} {change.get('detail', change.get('kind', 'changed'))}"


class ModelRecord(_Record):
    id: int
    name: str
    version: str
    kind: ModelKind
    status: ModelStatus
    base_model: str
    artifact_path: str = Field(description="Adapter directory, weights directory or prompt file.")
    catalog_hash: str
    dataset_version: str | None
    dataset_hash: str | None
    job_id: int | None
    config: dict[str, Any]
    config_hash: str
    artifact_hash: str | None
    fingerprint: str = Field(description="Hash of catalog, dataset, config, artifact, base model and kind.")
    live_services: list[str] = Field(description="Scopes this version is live for ('*' = every service without its own).")
    drift: list[DriftRecord] = Field(
        default_factory=list, description="Services whose live tools differ from the ones this version was trained on.")
    created_at: datetime
    updated_at: datetime

    @property
    def ref(self) -> str:
        return model_ref(self.name, self.version)

    @property
    def stale_services(self) -> list[str]:
        """Services whose live tools changed in a breaking way since training: requests for them fall back."""
        return [d.service for d in self.drift if d.stale]


class EvaluationRecord(_Record):
    id: int
    model: str = Field(description="name@version")
    suite_version: str
    split: str
    overall: float
    per_category: dict[str, float]
    per_tool: dict[str, float]
    per_split: dict[str, float]
    per_service: dict[str, Any]
    examples: int | None
    created_at: datetime

    @property
    def metrics(self) -> EvalMetrics:
        return EvalMetrics(
            suite_version=self.suite_version, split=self.split, overall=self.overall, examples=self.examples,
            per_category=self.per_category, per_tool=self.per_tool, per_split=self.per_split,
            per_service={k: Breakdown.model_validate(v) for k, v in self.per_service.items()},
        )


class ComparisonRecord(_Record):
    id: int
    base: str = Field(description="name@version, or the base model's spec when it is not a registry version.")
    base_in_registry: bool = Field(True, description="False: the base is a model outside the registry (base_metrics holds its scores).")
    candidate: str = Field(description="name@version")
    suite_version: str
    wins: int
    losses: int
    ties: int
    deltas: dict[str, Any]
    base_metrics: dict[str, Any] | None = Field(None, description="The outside base's evaluation (EvalMetrics fields).")
    details: dict[str, Any] | None = Field(
        None, description="Where the evaluations were written (base_dir, candidate_dir, data_dir, split) and latency.")
    created_at: datetime


class DeploymentRecord(_Record):
    id: int
    name: str
    version: str
    action: Action
    service: str = Field(description="'*' for every service, else the one service this row covers.")
    actor: str
    notes: str
    config: dict[str, Any]
    previous_version: str | None = Field(description="What a rollback from this row returns to.")
    decision_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class Serving:
    """Which version answers a service's requests for a model name, after drift is taken into account."""

    deployed: ModelRecord | None
    """The live pointer's version (None: nothing deployed for that service)."""
    model: ModelRecord | None
    """The version that answers: ``deployed``, or after a breaking drift the newest earlier
    deployed version still compatible with the live tools; None then means the base model."""
    drift: DriftRecord | None = None
    """The deployed version's drift for the service (breaking: why it was replaced)."""

    @property
    def fell_back(self) -> bool:
        return self.deployed is not None and (self.model is None or self.model.id != self.deployed.id)


@dataclass(frozen=True)
class FieldChange:
    path: str
    """Dotted path into the config (``lora.r``) or the model field name."""
    a: Any
    b: Any


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    """``overall``, ``category:<name>``, ``tool:<name>`` or ``split:<name>``."""
    a: float | None
    b: float | None

    @property
    def delta_points(self) -> float | None:
        return None if self.a is None or self.b is None else round(100 * (self.b - self.a), 6)


@dataclass(frozen=True)
class ModelDiff:
    """What changed from model ``a`` to model ``b``."""

    a: ModelRecord
    b: ModelRecord
    fields: list[FieldChange]
    """Kind, base model, dataset, artifact and catalog hash changes."""
    config: list[FieldChange]
    catalog: CatalogDiff
    metrics: list[MetricDelta]
    suites: tuple[str | None, str | None]
    """``suite_version/split`` of the evaluations compared (None: that model has none)."""
    notes: list[str] = field(default_factory=list)


# ---- shared by the Registry and its JobQueue ------------------------------------------------


def dataset_row(s: Session, version: str) -> Dataset:
    row = s.scalar(select(Dataset).where(Dataset.version == version))
    if row is None:
        known = list(s.scalars(select(Dataset.version).order_by(Dataset.id.desc()).limit(10)))
        raise RegistryError(f"no dataset version {version!r} in the registry (recent: {', '.join(known) or 'none'}); "
                            "register it with Registry.register_dataset first.")
    return row


def stored_json(config: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    """A config (or details) as the plain JSON a row stores."""
    if isinstance(config, BaseModel):
        return config.model_dump(mode="json")
    try:
        return json.loads(json.dumps(dict(config), default=str))
    except (TypeError, ValueError) as e:
        raise RegistryError(f"config cannot be stored as JSON ({e}); pass plain values or a pydantic model.") from e


# ---- row → record (inside a session) ------------------------------------------------------


def dataset_record(d: Dataset) -> DatasetRecord:
    return DatasetRecord(id=d.id, version=d.version, content_hash=d.content_hash, catalog_hash=d.catalog_hash,
                         path=d.path, counts=d.counts, created_at=d.created_at)


def job_record(s: Session, j: TrainingJob) -> JobRecord:
    dataset = s.get(Dataset, j.dataset_id) if j.dataset_id else None
    return JobRecord(id=j.id, status=j.status, progress=j.progress, step=j.step, epoch=j.epoch, losses=j.losses,
                     config=j.config, error=j.error, run_dir=j.run_dir,
                     dataset_version=dataset.version if dataset else None, worker_pid=j.worker_pid,
                     total_steps=j.total_steps, cancel_requested=bool(j.cancel_requested), created_at=j.created_at,
                     started_at=j.started_at, updated_at=j.updated_at, finished_at=j.finished_at)


def model_records(s: Session, models: list[Model]) -> list[ModelRecord]:
    ids = [m.id for m in models]
    live: dict[int, list[str]] = {}
    if ids:
        for service, model_id in s.execute(select(LiveDeployment.service, LiveDeployment.model_id)
                                           .where(LiveDeployment.model_id.in_(ids)).order_by(LiveDeployment.service)):
            live.setdefault(model_id, []).append(service)
    datasets = {d.id: d for d in s.scalars(select(Dataset).where(Dataset.id.in_({m.dataset_id for m in models if m.dataset_id})))}
    drift: dict[int, list[DriftRecord]] = {}
    if ids:
        by_id = {m.id: m for m in models}
        db = _db_option(s)
        for row in s.scalars(select(CatalogDrift).where(CatalogDrift.model_id.in_(ids)).order_by(CatalogDrift.service)):
            model = by_id[row.model_id]
            dataset = datasets.get(model.dataset_id) if model.dataset_id else None
            drift.setdefault(row.model_id, []).append(drift_record(row, model, dataset.path if dataset else None, db))
    out = []
    for m in models:
        dataset = datasets.get(m.dataset_id) if m.dataset_id else None
        out.append(ModelRecord(
            id=m.id, name=m.name, version=m.version, kind=m.kind, status=m.status, base_model=m.base_model,
            artifact_path=m.artifact_path, catalog_hash=m.catalog_hash,
            dataset_version=dataset.version if dataset else None, dataset_hash=dataset.content_hash if dataset else None,
            job_id=m.job_id, config=m.config, config_hash=m.config_hash, artifact_hash=m.artifact_hash,
            fingerprint=m.fingerprint, live_services=live.get(m.id, []), drift=drift.get(m.id, []),
            created_at=m.created_at, updated_at=m.updated_at,
        ))
    return out


def model_record(s: Session, m: Model) -> ModelRecord:
    return model_records(s, [m])[0]


def evaluation_record(e: Evaluation, model: Model) -> EvaluationRecord:
    return EvaluationRecord(id=e.id, model=model_ref(model.name, model.version), suite_version=e.suite_version, split=e.split, overall=e.overall,
                            per_category=e.per_category, per_tool=e.per_tool, per_split=e.per_split,
                            per_service=e.per_service, examples=e.examples, created_at=e.created_at)


def comparison_record(c: Comparison, base: Model | None, candidate: Model) -> ComparisonRecord:
    label = model_ref(base.name, base.version) if base is not None else c.base_label or "base"
    return ComparisonRecord(id=c.id, base=label, base_in_registry=base is not None,
                            candidate=model_ref(candidate.name, candidate.version), suite_version=c.suite_version,
                            wins=c.wins, losses=c.losses, ties=c.ties, deltas=c.deltas, base_metrics=c.base_metrics,
                            details=c.details, created_at=c.created_at)


def drift_record(d: CatalogDrift, model: Model, dataset_path: str | None = None, db: str = "") -> DriftRecord:
    ref = model_ref(model.name, model.version)
    command = None
    if d.rating == "breaking":
        data = dataset_path or "DATA_DIR"  # a model registered without its dataset: the user knows where it is
        command = (f"tooltune models catalog {ref} --live{db} -o live-catalog.json && "
                   f"tooltune data migrate {data} --catalog live-catalog.json -o {data.rstrip('/')}-migrated")
    return DriftRecord(model=ref, service=d.service, rating=d.rating, changes=d.changes,
                       trained_catalog_hash=model.catalog_hash, live_catalog_hash=d.live_catalog_hash,
                       detected_at=d.detected_at, checked_at=d.checked_at, migrate_command=command)


def _db_option(s: Session) -> str:
    """`` --db URL`` for commands about this registry, unless it is the one they open by default
    (or its URL holds a password, which belongs in $TOOLTUNE_DB_URL, not in a printed command)."""
    from tooltune.registry.engine import default_url, normalize_url

    url = s.get_bind().url
    if url.password or url.render_as_string(hide_password=False) == normalize_url(default_url()):
        return ""
    return f" --db {url.render_as_string(hide_password=False)}"


def deployment_record(s: Session, d: Deployment) -> DeploymentRecord:
    model = s.get(Model, d.model_id)
    previous = s.get(Model, d.previous_model_id) if d.previous_model_id else None
    return DeploymentRecord(id=d.id, name=d.name, version=model.version, action=d.action, service=d.service,
                            actor=d.actor, notes=d.notes, config=d.config,
                            previous_version=previous.version if previous else None, decision_id=d.decision_id,
                            created_at=d.created_at)


def config_changes(a: Any, b: Any, prefix: str = "") -> list[FieldChange]:
    if isinstance(a, dict) and isinstance(b, dict):
        changes = []
        for key in sorted(a.keys() | b.keys(), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            changes.extend(config_changes(a.get(key), b.get(key), path) if key in a and key in b
                           else [FieldChange(path, a.get(key), b.get(key))])
        return changes
    return [] if a == b else [FieldChange(prefix or "(root)", a, b)]


def metric_deltas(ea: Evaluation | None, eb: Evaluation | None) -> list[MetricDelta]:
    if ea is None and eb is None:
        return []

    def flat(e: Evaluation | None) -> dict[str, float]:
        if e is None:
            return {}
        out = {"overall": e.overall}
        for prefix, values in (("category", e.per_category), ("tool", e.per_tool), ("split", e.per_split)):
            out.update({f"{prefix}:{k}": v for k, v in values.items()})
        return out

    fa, fb = flat(ea), flat(eb)
    keys = list(fa) + [k for k in fb if k not in fa]
    return [MetricDelta(k, fa.get(k), fb.get(k)) for k in keys]
