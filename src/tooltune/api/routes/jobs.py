"""``/v1/jobs``: training jobs, each run by a worker process (:mod:`tooltune.api.jobs`); progress as
server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Body, Depends, Query
from fastapi import Path as PathParam
from fastapi.sse import EventSourceResponse, ServerSentEvent

from tooltune.api.jobs import JobSupervisor, eta_seconds
from tooltune.api.routes.deps import MODEL_NAME, READ, WRITE, RegistryDep, SupervisorDep, found, paths_from_client
from tooltune.api.schemas import JobView
from tooltune.registry import JobRecord, JobStatus
from tooltune.train.config import TrainConfig

EVENT_POLL_S = 0.5
JobId = Annotated[int, PathParam(ge=1, le=2**62, description="Training job id.")]

router = APIRouter()


def job_view(job: JobRecord, supervisor: JobSupervisor) -> JobView:
    return JobView(**job.model_dump(), eta_s=eta_seconds(job), log=str(supervisor.log_path(job.id)))


def existing_job(registry: RegistryDep, job_id: JobId) -> JobRecord:
    return found(registry.jobs.get, job_id)


@router.get("/v1/jobs", dependencies=READ)
def list_jobs(registry: RegistryDep, supervisor: SupervisorDep, status: JobStatus | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[JobView]:
    return [job_view(j, supervisor) for j in registry.jobs.recent(status, limit)]


@router.post("/v1/jobs", dependencies=WRITE, status_code=201)
def create_job(
    supervisor: SupervisorDep,
    config: Annotated[TrainConfig, Body(description="A TrainConfig, as in a `tooltune train --config` file.")],
    register: Annotated[str | None, Query(pattern=MODEL_NAME, description="Register the trained model under this name.")] = None,
) -> JobView:
    """Start a training job in a worker process; poll it or follow its events."""
    with paths_from_client("job"):
        return job_view(supervisor.create(config, register), supervisor)


@router.get("/v1/jobs/{job_id}", dependencies=READ)
def get_job(job: Annotated[JobRecord, Depends(existing_job)], supervisor: SupervisorDep) -> JobView:
    return job_view(job, supervisor)


@router.post("/v1/jobs/{job_id}/cancel", dependencies=WRITE)
def cancel_job(job: Annotated[JobRecord, Depends(existing_job)], supervisor: SupervisorDep) -> JobView:
    """Stop a pending or running job; it ends ``cancelled`` within seconds."""
    return job_view(supervisor.cancel(job.id), supervisor)


@router.get("/v1/jobs/{job_id}/events", dependencies=READ, response_class=EventSourceResponse)
async def job_events(job: Annotated[JobRecord, Depends(existing_job)], registry: RegistryDep,
                     supervisor: SupervisorDep) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: ``progress`` (the job) on every change, then ``end`` once it has finished."""
    seen = None
    while True:
        current = await anyio.to_thread.run_sync(registry.jobs.get, job.id)
        if current.updated_at != seen:
            seen = current.updated_at
            yield ServerSentEvent(event="progress", data=job_view(current, supervisor).model_dump(mode="json"))
        if current.status not in (JobStatus.PENDING, JobStatus.RUNNING):
            yield ServerSentEvent(event="end", data={"status": current.status.value})
            return
        await asyncio.sleep(EVENT_POLL_S)
