"""The job API and dashboard: datasets, training jobs, models, evaluations and comparisons over HTTP.

``create_app(ApiSettings(...))`` returns the FastAPI app that ``tooltune api`` runs with uvicorn.
The OpenAPI schema is at ``/openapi.json`` (docs at ``/docs``); the dashboard at ``/``.

- Mutating routes need ``Authorization: Bearer <token>`` (``ApiSettings.token``, default
  ``$TOOLTUNE_API_TOKEN``), else 401. Read-only routes are open when the server listens on a
  loopback address (``open_reads`` overrides).
- Bodies are validated by the models the CLI uses (``TrainConfig``, ``DataConfig``,
  ``GateConfig``); a bad body or parameter is a 400 naming each field (``errors[].field``),
  an unknown id a 404, a state conflict (deploy refused by the gates, cancel of a finished job)
  a 409. Every error body is :class:`~tooltune.api.schemas.ErrorBody`.
- Training runs in worker processes (:mod:`tooltune.api.jobs`); state lives in the registry, so
  the API can restart while jobs run.
"""


import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from tooltune.api import datasets as dataset_ops
from tooltune.api.evaluations import comparison_view, evaluate
from tooltune.api.guard import guard, record_refusal, token_problem
from tooltune.api.jobs import JobSupervisor, eta_seconds
from tooltune.api.schemas import (
    ComparisonView,
    DatasetRequest,
    DatasetResult,
    DeployRequest,
    ErrorBody,
    EvaluationRequest,
    EvaluationResult,
    ExportRequest,
    ImportRequest,
    JobView,
    RollbackRequest,
    Stats,
)
from tooltune.api.settings import TOKEN_ENV, ApiSettings
from tooltune.errors import GateError, RegistryError, TooltuneError
from tooltune.registry import (
    ComparisonRecord,
    DatasetRecord,
    DeploymentRecord,
    JobRecord,
    JobStatus,
    ModelRecord,
    Registry,
)
from tooltune.train.config import TrainConfig

STATIC = Path(__file__).parent / "static"
ACTOR = "api"
EVENT_POLL_S = 0.5
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: refuse it as a bad parameter
JobId = Annotated[int, PathParam(ge=1, le=2**62, description="Training job id.")]
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 404, 409)}
T = TypeVar("T")


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    registry = Registry(settings.registry_url)
    supervisor = JobSupervisor(registry, settings)
    one_evaluation = threading.Lock()  # evaluations load a model each: one at a time on a shared machine

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        supervisor.start()
        try:
            yield
        finally:
            supervisor.stop()
            registry.close()

    app = FastAPI(title="tooltune job API", version="1", lifespan=lifespan, responses=ERRORS,
                  description="Datasets, training jobs, models, evaluations and comparisons of one tooltune registry.")
    app.state.settings, app.state.registry, app.state.supervisor = settings, registry, supervisor
    _error_handlers(app)
    guard(app, settings)  # token, Host and body size checked before a body is read
    bearer = HTTPBearer(auto_error=False, description=f"The API token (tooltune api --token, or ${TOKEN_ENV}).")

    def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        problem = token_problem(settings, f"Bearer {credentials.credentials}" if credentials else None)
        if problem:
            raise HTTPException(401, problem, headers={"WWW-Authenticate": "Bearer"})

    def read_access(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if not settings.reads_open:
            require_token(credentials)

    write = [Depends(require_token)]
    read = [Depends(read_access)]

    def view(job: JobRecord) -> JobView:
        return JobView(**job.model_dump(), eta_s=eta_seconds(job), log=str(supervisor.log_path(job.id)))

    # ---- dashboard ----------------------------------------------------------------------------

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/v1/stats", dependencies=read)
    def stats() -> Stats:
        models = registry.list_models()
        jobs = Counter(j.status.value for j in registry.jobs.recent(limit=500))
        return Stats(datasets=len(registry.list_datasets()), jobs=dict(jobs), models=len(models),
                     deployed=[m.ref for m in models if m.live_services], last_decision=registry.last_decision())

    # ---- datasets -----------------------------------------------------------------------------

    @app.get("/v1/datasets", dependencies=read)
    def list_datasets() -> list[DatasetRecord]:
        return registry.list_datasets()

    @app.get("/v1/datasets/{version}", dependencies=read)
    def get_dataset(version: Annotated[str, PathParam(max_length=128, pattern=NO_NUL)]) -> DatasetRecord:
        return _found(registry.get_dataset, version)

    @app.post("/v1/datasets", dependencies=write)
    def post_dataset(request: Annotated[DatasetRequest, Body()]) -> DatasetResult:
        """Build a dataset (a DataConfig), import one (a file in a public format), or export a
        registered one's split to another training format."""
        with _paths_from_client(request.action):
            if isinstance(request, ExportRequest):
                _found(registry.get_dataset, request.dataset)
                return dataset_ops.export(registry, settings.work_dir, request)
            if isinstance(request, ImportRequest):
                return dataset_ops.import_(registry, settings.work_dir, request)
            return dataset_ops.build(registry, settings.work_dir, request)

    # ---- jobs ---------------------------------------------------------------------------------

    @app.get("/v1/jobs", dependencies=read)
    def list_jobs(status: JobStatus | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[JobView]:
        return [view(j) for j in registry.jobs.recent(status, limit)]

    @app.post("/v1/jobs", dependencies=write, status_code=201)
    def create_job(
        config: Annotated[TrainConfig, Body(description="A TrainConfig, as in a `tooltune train --config` file.")],
        register: Annotated[str | None, Query(pattern=MODEL_NAME, description="Register the trained model under this name.")] = None,
    ) -> JobView:
        """Start a training job in a worker process; poll it or follow its events."""
        with _paths_from_client("job"):
            return view(supervisor.create(config, register))

    @app.get("/v1/jobs/{job_id}", dependencies=read)
    def get_job(job_id: JobId) -> JobView:
        return view(_found(registry.jobs.get, job_id))

    @app.post("/v1/jobs/{job_id}/cancel", dependencies=write)
    def cancel_job(job_id: JobId) -> JobView:
        """Stop a pending or running job; it ends ``cancelled`` within seconds."""
        _found(registry.jobs.get, job_id)
        return view(supervisor.cancel(job_id))

    def existing_job(job_id: JobId) -> JobRecord:
        return _found(registry.jobs.get, job_id)

    @app.get("/v1/jobs/{job_id}/events", dependencies=read, response_class=EventSourceResponse)
    async def job_events(job: Annotated[JobRecord, Depends(existing_job)]) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events: ``progress`` (the job) on every change, then ``end`` once it has finished."""
        seen = None
        while True:
            current = await anyio.to_thread.run_sync(registry.jobs.get, job.id)
            if current.updated_at != seen:
                seen = current.updated_at
                yield ServerSentEvent(event="progress", data=view(current).model_dump(mode="json"))
            if current.status not in (JobStatus.PENDING, JobStatus.RUNNING):
                yield ServerSentEvent(event="end", data={"status": current.status.value})
                return
            await asyncio.sleep(EVENT_POLL_S)

    # ---- models -------------------------------------------------------------------------------

    @app.get("/v1/models", dependencies=read)
    def list_models() -> list[ModelRecord]:
        return registry.list_models()

    @app.post("/v1/models/{name}/{version}/deploy", dependencies=write)
    def deploy(name: Annotated[str, PathParam(max_length=128, pattern=NO_NUL)],
               version: Annotated[str, PathParam(max_length=32, pattern=NO_NUL)],
               request: Annotated[DeployRequest | None, Body()] = None) -> list[DeploymentRecord]:
        """Make a version live (gated; a refusal is a 409 carrying the decision)."""
        request = request or DeployRequest()
        _found(registry.get_model, name, version)
        return registry.deploy(name, version, actor=ACTOR, notes=request.notes, services=request.services,
                               force=request.force)

    @app.post("/v1/models/{name}/rollback", dependencies=write)
    def rollback(name: Annotated[str, PathParam(max_length=128, pattern=NO_NUL)],
                 request: Annotated[RollbackRequest | None, Body()] = None) -> DeploymentRecord:
        """Go back to the version live before the current one."""
        request = request or RollbackRequest()
        _found(registry.get_model, name)
        return registry.rollback(name, actor=ACTOR, notes=request.notes, service=request.service)

    # ---- evaluations and comparisons ----------------------------------------------------------

    @app.post("/v1/evaluations", dependencies=write)
    def post_evaluation(request: EvaluationRequest) -> EvaluationResult:
        """Evaluate a registered model on a dataset split (and compare with its baseline, then gate)."""
        _found(registry.resolve, request.model)
        _found(registry.get_dataset, request.dataset)
        if request.baseline is not None:
            _found(registry.resolve, request.baseline)
        with one_evaluation, _paths_from_client("evaluation"):
            return evaluate(registry, settings.work_dir, request)

    @app.get("/v1/comparisons", dependencies=read)
    def list_comparisons(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[ComparisonRecord]:
        return registry.list_comparisons(limit)

    @app.get("/v1/comparisons/{comparison_id}", dependencies=read)
    def get_comparison(comparison_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> ComparisonView:
        _found(registry.get_comparison, comparison_id)
        return comparison_view(registry, settings.work_dir, comparison_id)

    return app


def _found(lookup: Callable[..., T], *args: Any) -> T:
    """A registry lookup whose failure means "no such thing": 404 with the registry's message."""
    try:
        return lookup(*args)
    except RegistryError as e:
        raise HTTPException(404, str(e)) from e


@contextmanager
def _paths_from_client(what: str) -> Iterator[None]:
    """A path the client named that cannot be used (missing, unreadable, a NUL byte) is their
    mistake: 400 with the reason, not 500."""
    try:
        yield
    except (OSError, ValueError) as e:
        raise HTTPException(400, f"{what}: a path in the request cannot be used: {e}") from e


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": _field(err.get("loc", ())), "message": _message(err)} for err in exc.errors()]
        detail = "invalid request: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse(ErrorBody(detail=detail, errors=problems).model_dump(mode="json", exclude_none=True), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (401, 403):
            record_refusal(request.method, request.url.path, request.client.host if request.client else "unknown",
                           exc.status_code, str(exc.detail))
        return JSONResponse({"detail": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(GateError)
    async def gate_refused(request: Request, exc: GateError) -> JSONResponse:
        decision = getattr(exc, "decision", None)
        body = ErrorBody(detail=str(exc), decision=decision)
        return JSONResponse(body.model_dump(mode="json", exclude_none=True), 409)

    @app.exception_handler(TooltuneError)
    async def tooltune_error(request: Request, exc: TooltuneError) -> JSONResponse:
        # A registry refusal is a conflict with the current state; anything else is bad input.
        status = 409 if isinstance(exc, RegistryError) else 400
        return JSONResponse({"detail": f"{type(exc).__name__}: {exc}"}, status)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        where, parts = parts[0], parts[1:]
        return ".".join(parts) or where
    return ".".join(parts) or "(request)"


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    value = err.get("input")
    if err.get("type") != "missing" and isinstance(value, (str, int, float, bool)) and len(repr(value)) < 80:
        msg += f" (got {value!r})"
    return msg
