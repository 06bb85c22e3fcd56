"""``/v1/models``: registered versions; deploy one (gated: a refusal is a 409) or roll back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi import Path as PathParam

from tooltune.api.routes.deps import ACTOR, NO_NUL, READ, WRITE, RegistryDep, found
from tooltune.api.schemas import DeployRequest, RollbackRequest
from tooltune.registry import DeploymentRecord, ModelRecord

router = APIRouter()


@router.get("/v1/models", dependencies=READ)
def list_models(registry: RegistryDep) -> list[ModelRecord]:
    return registry.list_models()


@router.post("/v1/models/{name}/{version}/deploy", dependencies=WRITE)
def deploy(registry: RegistryDep, name: Annotated[str, PathParam(max_length=128, pattern=NO_NUL)],
           version: Annotated[str, PathParam(max_length=32, pattern=NO_NUL)],
           request: Annotated[DeployRequest | None, Body()] = None) -> list[DeploymentRecord]:
    """Make a version live (gated; a refusal is a 409 carrying the decision)."""
    request = request or DeployRequest()
    found(registry.get_model, name, version)
    return registry.deploy(name, version, actor=ACTOR, notes=request.notes, services=request.services,
                           force=request.force)


@router.post("/v1/models/{name}/rollback", dependencies=WRITE)
def rollback(registry: RegistryDep, name: Annotated[str, PathParam(max_length=128, pattern=NO_NUL)],
             request: Annotated[RollbackRequest | None, Body()] = None) -> DeploymentRecord:
    """Go back to the version live before the current one."""
    request = request or RollbackRequest()
    found(registry.get_model, name)
    return registry.rollback(name, actor=ACTOR, notes=request.notes, service=request.service)
