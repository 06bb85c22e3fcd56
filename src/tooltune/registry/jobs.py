"""The registry's training jobs: a queue of runs in the same database as the models they produce.

``Registry(...).jobs`` is the :class:`JobQueue` over that registry's database; every method is one
transaction, as the registry's own. A job is ``pending`` → ``running`` → ``completed``, ``failed``
or ``cancelled`` (:data:`JOB_TRANSITIONS`).

Two ways to drive a job:

- a training run of one's own: ``start`` (``running`` now), ``update`` with progress and losses,
  ``finish``;
- the job API's worker protocol (:mod:`tooltune.api`): the API ``start``\\ s a ``queued`` job and
  records the worker it spawned (``set_worker``); the worker ``claim``\\ s it, reports progress
  (``report_progress`` answers whether a cancel was asked for, ``request_cancel``) and
  ``finish``\\ es it; the API marks a job failed when its worker is gone (``fail_if_active``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tooltune.errors import RegistryError
from tooltune.registry.records import JobRecord, dataset_row, job_record, stored_json
from tooltune.registry.tables import JobStatus, TrainingJob, utcnow

JOB_TRANSITIONS: dict[JobStatus, tuple[JobStatus, ...]] = {
    JobStatus.PENDING: (JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED),
    JobStatus.RUNNING: (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED),
    JobStatus.COMPLETED: (),
    JobStatus.FAILED: (),
    JobStatus.CANCELLED: (),
}
ACTIVE = (JobStatus.PENDING, JobStatus.RUNNING)


class JobQueue:
    """The training jobs of one registry database (``Registry.jobs``)."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def start(self, *, config: Mapping[str, Any] | BaseModel, run_dir: str | Path,
              dataset_version: str | None = None, queued: bool = False) -> JobRecord:
        """Record a training run: ``running`` now, or ``pending`` when ``queued`` (start it with
        ``update(status="running")`` or, for the job API's worker, ``claim``)."""
        with self._sessions.begin() as s:
            dataset = dataset_row(s, dataset_version) if dataset_version else None
            now = utcnow()
            job = TrainingJob(status=JobStatus.PENDING if queued else JobStatus.RUNNING, losses=[],
                              config=stored_json(config), run_dir=str(run_dir), error=None,
                              dataset_id=dataset.id if dataset else None, started_at=None if queued else now)
            s.add(job)
            s.flush()
            return job_record(s, job)

    def update(self, job_id: int, *, status: JobStatus | str | None = None, progress: float | None = None,
               step: int | None = None, epoch: float | None = None,
               losses: Mapping[str, float] | None = None) -> JobRecord:
        """Report progress; ``losses`` (e.g. ``{"loss": 0.41, "eval_loss": 0.52}``) is appended with step and epoch."""
        with self._sessions.begin() as s:
            job = job_row(s, job_id)
            if status is not None:
                _transition(job, JobStatus(status))
            if job.status not in ACTIVE:
                raise RegistryError(f"training job {job_id} is {job.status}; a finished job takes no more updates.")
            if progress is not None:
                if not 0.0 <= progress <= 1.0:
                    raise RegistryError(f"training job {job_id}: progress {progress} is outside [0, 1]; report a fraction.")
                job.progress = progress
            if step is not None:
                job.step = step
            if epoch is not None:
                job.epoch = epoch
            if losses:
                # Assign a new list: SQLAlchemy does not see in-place changes to a JSON value.
                job.losses = [*job.losses, {"step": job.step, "epoch": job.epoch, **{k: float(v) for k, v in losses.items()}}]
            job.updated_at = utcnow()
            return job_record(s, job)

    def finish(self, job_id: int, status: JobStatus | str = JobStatus.COMPLETED, error: str | None = None) -> JobRecord:
        """End a job as completed, failed (give ``error``) or cancelled."""
        status = JobStatus(status)
        if status in ACTIVE:
            raise RegistryError(f"training job {job_id}: finish takes completed, failed or cancelled, not {status}.")
        with self._sessions.begin() as s:
            job = job_row(s, job_id)
            _transition(job, status)
            job.error = error
            job.finished_at = job.updated_at = utcnow()
            if status is JobStatus.COMPLETED:
                job.progress = 1.0
            return job_record(s, job)

    # ---- the job API's worker protocol --------------------------------------------------------

    def set_worker(self, job_id: int, pid: int) -> JobRecord:
        """Record the process that runs (or will run) a pending or running job."""
        with self._sessions.begin() as s:
            job = job_row(s, job_id)
            _check_active(job)
            job.worker_pid, job.updated_at = pid, utcnow()
            return job_record(s, job)

    def claim(self, job_id: int, pid: int) -> JobRecord:
        """The worker ``pid`` takes a pending job: it becomes ``running``. Refused (RegistryError)
        when the job is not pending, e.g. cancelled before the worker got to it."""
        with self._sessions.begin() as s:
            job = job_row(s, job_id)
            if job.status is not JobStatus.PENDING or job.cancel_requested:
                state = "cancel was requested" if job.cancel_requested else f"it is {job.status}"
                raise RegistryError(f"training job {job_id} cannot be claimed: {state}.")
            _transition(job, JobStatus.RUNNING)
            job.worker_pid, job.updated_at = pid, utcnow()
            return job_record(s, job)

    def report_progress(self, job_id: int, *, step: int, total_steps: int | None, epoch: float,
                        losses: Sequence[Mapping[str, Any]] = ()) -> bool:
        """Store a running job's step / total, epoch and new loss entries (each with its own step
        and epoch); returns whether a cancel was requested, so one transaction does both."""
        with self._sessions.begin() as s:
            job = job_row(s, job_id)
            if job.status is not JobStatus.RUNNING:
                raise RegistryError(f"training job {job_id} is {job.status}; only a running job reports progress.")
            job.step, job.epoch, job.total_steps = step, epoch, total_steps
            if total_steps:
                job.progress = min(1.0, max(0.0, step / total_steps))
            if losses:
                job.losses = [*job.losses, *({k: v for k, v in entry.items()} for entry in losses)]
            job.updated_at = utcnow()
            return bool(job.cancel_requested)

    def request_cancel(self, job_id: int) -> JobRecord:
        """Ask a pending or running job to stop; the worker ends it as ``cancelled``."""
        with self._sessions.begin() as s:
            job = job_row(s, job_id)
            _check_active(job)
            job.cancel_requested, job.updated_at = True, utcnow()
            return job_record(s, job)

    def fail_if_active(self, job_id: int, reason: str) -> JobRecord | None:
        """Mark a job failed with ``reason`` unless it has already finished (then None): for a
        worker found dead, which may have finished the job just before."""
        with self._sessions.begin() as s:
            job = job_row(s, job_id)
            if job.status not in ACTIVE:
                return None
            _transition(job, JobStatus.FAILED)
            job.error = reason
            job.finished_at = job.updated_at = utcnow()
            return job_record(s, job)

    # ---- reading ------------------------------------------------------------------------------

    def get(self, job_id: int) -> JobRecord:
        with self._sessions.begin() as s:
            return job_record(s, job_row(s, job_id))

    def active(self) -> list[JobRecord]:
        """Pending and running jobs, oldest first."""
        with self._sessions.begin() as s:
            query = select(TrainingJob).where(TrainingJob.status.in_(ACTIVE)).order_by(TrainingJob.id)
            return [job_record(s, j) for j in s.scalars(query)]

    def recent(self, status: JobStatus | str | None = None, limit: int = 50) -> list[JobRecord]:
        """The latest ``limit`` jobs (of one ``status``), newest first."""
        with self._sessions.begin() as s:
            query = select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit)
            if status is not None:
                query = query.where(TrainingJob.status == JobStatus(status))
            return [job_record(s, j) for j in s.scalars(query)]


def job_row(s: Session, job_id: int) -> TrainingJob:
    """The job's row inside a session; RegistryError when there is none (also for ``Registry.register_model(job_id=)``)."""
    job = s.get(TrainingJob, job_id)
    if job is None:
        raise RegistryError(f"no training job {job_id} in the registry; Registry.jobs.start returns the id to use.")
    return job


def _transition(job: TrainingJob, to: JobStatus) -> None:
    if job.status is to:
        return
    if to not in JOB_TRANSITIONS[job.status]:
        moves = ", ".join(a.value for a in JOB_TRANSITIONS[job.status]) or "nothing (it has finished)"
        raise RegistryError(f"training job {job.id} is {job.status}; it can move to {moves}, not {to}.")
    job.status = to
    if to is JobStatus.RUNNING:
        job.started_at = utcnow()


def _check_active(job: TrainingJob) -> None:
    if job.status not in ACTIVE:
        raise RegistryError(f"training job {job.id} is {job.status}; it has finished, so there is nothing to change.")
