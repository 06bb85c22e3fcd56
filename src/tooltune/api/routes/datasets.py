"""``/v1/datasets``: list and show registered datasets; build, import or export one (:mod:`tooltune.api.datasets`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi import Path as PathParam

from tooltune.api import datasets as dataset_ops
from tooltune.api.routes.deps import NO_NUL, READ, WRITE, RegistryDep, SettingsDep, found, paths_from_client
from tooltune.api.schemas import DatasetRequest, DatasetResult, ExportRequest, ImportRequest
from tooltune.registry import DatasetRecord

router = APIRouter()


@router.get("/v1/datasets", dependencies=READ)
def list_datasets(registry: RegistryDep) -> list[DatasetRecord]:
    return registry.list_datasets()


@router.get("/v1/datasets/{version}", dependencies=READ)
def get_dataset(registry: RegistryDep, version: Annotated[str, PathParam(max_length=128, pattern=NO_NUL)]) -> DatasetRecord:
    return found(registry.get_dataset, version)


@router.post("/v1/datasets", dependencies=WRITE)
def post_dataset(registry: RegistryDep, settings: SettingsDep, request: Annotated[DatasetRequest, Body()]) -> DatasetResult:
    """Build a dataset (a DataConfig), import one (a file in a public format), or export a
    registered one's split to another training format."""
    with paths_from_client(request.action):
        if isinstance(request, ExportRequest):
            found(registry.get_dataset, request.dataset)
            return dataset_ops.export(registry, settings.work_dir, request)
        if isinstance(request, ImportRequest):
            return dataset_ops.import_(registry, settings.work_dir, request)
        return dataset_ops.build(registry, settings.work_dir, request)
