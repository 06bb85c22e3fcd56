"""What every route of the job API shares: the app's state as dependencies, the token checks, and
the mapping of lookup and path failures to 404 and 400.

``create_app`` puts the settings, the registry, the job supervisor and the evaluation lock on
``app.state``; routes receive them with ``Depends`` (tests can override any of them with
``app.dependency_overrides``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tooltune.api.guard import token_problem
from tooltune.api.jobs import JobSupervisor
from tooltune.api.settings import TOKEN_ENV, ApiSettings
from tooltune.errors import RegistryError
from tooltune.registry import Registry

ACTOR = "api"
"""The actor recorded in the registry for deploys, rollbacks and gate runs through the API."""
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: refuse it as a bad parameter
T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description=f"The API token (tooltune api --token, or ${TOKEN_ENV}).")


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


def get_supervisor(request: Request) -> JobSupervisor:
    return request.app.state.supervisor


def get_evaluation_lock(request: Request) -> threading.Lock:
    return request.app.state.evaluation_lock


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
SupervisorDep = Annotated[JobSupervisor, Depends(get_supervisor)]
EvaluationLockDep = Annotated[threading.Lock, Depends(get_evaluation_lock)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require_token(settings: SettingsDep, credentials: Credentials) -> None:
    problem = token_problem(settings, f"Bearer {credentials.credentials}" if credentials else None)
    if problem:
        raise HTTPException(401, problem, headers={"WWW-Authenticate": "Bearer"})


def read_access(settings: SettingsDep, credentials: Credentials) -> None:
    if not settings.reads_open:
        require_token(settings, credentials)


WRITE = [Depends(require_token)]
"""Dependencies of a mutating route: the bearer token."""
READ = [Depends(read_access)]
"""Dependencies of a read-only route: open on loopback (``ApiSettings.reads_open``), else the token."""


def found(lookup: Callable[..., T], *args: Any) -> T:
    """A registry lookup whose failure means "no such thing": 404 with the registry's message."""
    try:
        return lookup(*args)
    except RegistryError as e:
        raise HTTPException(404, str(e)) from e


@contextmanager
def paths_from_client(what: str) -> Iterator[None]:
    """A path the client named that cannot be used (missing, unreadable, a NUL byte) is their
    mistake: 400 with the reason, not 500."""
    try:
        yield
    except (OSError, ValueError) as e:
        raise HTTPException(400, f"{what}: a path in the request cannot be used: {e}") from e
