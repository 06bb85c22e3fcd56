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
- Routes live in :mod:`tooltune.api.routes`, one ``APIRouter`` per resource; they get the
  registry, settings and job supervisor from ``app.state`` through ``Depends``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from tooltune.api.guard import guard, record_refusal
from tooltune.api.jobs import JobSupervisor
from tooltune.api.routes import ROUTERS
from tooltune.api.routes.dashboard import STATIC
from tooltune.api.schemas import ErrorBody
from tooltune.api.settings import ApiSettings
from tooltune.errors import GateError, RegistryError, TooltuneError
from tooltune.registry import Registry

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 404, 409)}


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The job API over the registry at ``settings.registry_url``; the job supervisor runs with the app's lifespan."""
    settings = settings or ApiSettings()
    registry = Registry(settings.registry_url)
    supervisor = JobSupervisor(registry, settings)

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
    app.state.evaluation_lock = threading.Lock()  # evaluations load a model each: one at a time on a shared machine
    _error_handlers(app)
    guard(app, settings)  # token, Host and body size checked before a body is read
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app


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
