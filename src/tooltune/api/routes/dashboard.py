"""The dashboard page (``/``, its files under ``/static``) and the counts it opens with (``/v1/stats``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from tooltune.api.routes.deps import READ, RegistryDep
from tooltune.api.schemas import Stats

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/v1/stats", dependencies=READ)
def stats(registry: RegistryDep) -> Stats:
    models = registry.list_models()
    jobs = Counter(j.status.value for j in registry.jobs.recent(limit=500))
    return Stats(datasets=len(registry.list_datasets()), jobs=dict(jobs), models=len(models),
                 deployed=[m.ref for m in models if m.live_services], last_decision=registry.last_decision())
