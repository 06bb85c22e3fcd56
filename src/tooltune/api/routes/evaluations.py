"""``/v1/evaluations`` and ``/v1/comparisons``: evaluate a registered model (:mod:`tooltune.api.evaluations`),
then read the comparisons with its baseline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from tooltune.api.evaluations import comparison_view, evaluate
from tooltune.api.routes.deps import READ, WRITE, EvaluationLockDep, RegistryDep, SettingsDep, found, paths_from_client
from tooltune.api.schemas import ComparisonView, EvaluationRequest, EvaluationResult
from tooltune.registry import ComparisonRecord

router = APIRouter()


@router.post("/v1/evaluations", dependencies=WRITE)
def post_evaluation(registry: RegistryDep, settings: SettingsDep, one_evaluation: EvaluationLockDep,
                    request: EvaluationRequest) -> EvaluationResult:
    """Evaluate a registered model on a dataset split (and compare with its baseline, then gate)."""
    found(registry.resolve, request.model)
    found(registry.get_dataset, request.dataset)
    if request.baseline is not None:
        found(registry.resolve, request.baseline)
    with one_evaluation, paths_from_client("evaluation"):
        return evaluate(registry, settings.work_dir, request)


@router.get("/v1/comparisons", dependencies=READ)
def list_comparisons(registry: RegistryDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[ComparisonRecord]:
    return registry.list_comparisons(limit)


@router.get("/v1/comparisons/{comparison_id}", dependencies=READ)
def get_comparison(registry: RegistryDep, settings: SettingsDep,
                   comparison_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> ComparisonView:
    found(registry.get_comparison, comparison_id)
    return comparison_view(registry, settings.work_dir, comparison_id)
