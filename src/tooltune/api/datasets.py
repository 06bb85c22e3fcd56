"""``POST /v1/datasets``: build, import or export a dataset with the data stage's own functions.

A build is :func:`tooltune.data.build.build_dataset` on a :class:`DataConfig`; an import is
:func:`tooltune.data.io.import_file`, written as a dataset directory with one ``train.jsonl``
(plus ``catalog.json`` when a catalog is given, and ``quarantine.jsonl``), so a training job
can use it directly; both are registered in the registry by content hash. An export is
:func:`tooltune.data.io.export_file` of one split of a registered dataset.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from tooltune.api.schemas import BuildRequest, DatasetResult, ExportInfo, ExportRequest, ImportRequest
from tooltune.errors import DataError
from tooltune.registry import Registry


def build(registry: Registry, work_dir: Path, request: BuildRequest) -> DatasetResult:
    from tooltune.data.build import build_dataset
    from tooltune.demo import build_server
    from tooltune.demo.chains import CHAINS

    config = request.config
    if "output_dir" not in config.model_fields_set:
        config = config.model_copy(update={"output_dir": _fresh_dir(work_dir, "build")})
    # Multi-step synthesis executes the demo's chains whose tools are all in the catalog.
    report = build_dataset(config, chains=CHAINS, server_factory=build_server)
    record = registry.register_dataset(content_hash=report.dataset_hash, catalog_hash=report.catalog_hash,
                                       path=Path(config.output_dir).resolve(), counts=report.split_sizes,
                                       version=request.version)
    return DatasetResult(dataset=record, report=report.model_dump(mode="json"))


def import_(registry: Registry, work_dir: Path, request: ImportRequest) -> DatasetResult:
    from tooltune.data.build import dataset_summary
    from tooltune.data.examples import write_jsonl
    from tooltune.data.io import import_file
    from tooltune.data.quarantine import write_quarantine
    from tooltune.tools.catalog import ToolCatalog

    catalog = ToolCatalog.load(request.catalog) if request.catalog is not None else None
    result = import_file(request.format, request.source, quality=request.quality)
    if not result.examples:
        raise DataError(f"source: {request.source} gave no examples in format {request.format} "
                        f"({len(result.quarantine)} records quarantined); check the format.")
    out = _fresh_dir(work_dir, "import")
    write_jsonl(result.examples, out / "train.jsonl")
    if catalog is not None:
        catalog.save(out / "catalog.json")
    if result.quarantine:
        write_quarantine(result.quarantine, out / "quarantine.jsonl")
    summary = dataset_summary({"train": result.examples}, catalog)
    counts = {**summary["split_sizes"], "quarantined": len(result.quarantine)}
    record = registry.register_dataset(content_hash=summary["dataset_hash"], catalog_hash=summary["catalog_hash"] or "none",
                                       path=out, counts=counts, version=request.version)
    return DatasetResult(dataset=record, report={"imported": len(result.examples), "quarantined": len(result.quarantine),
                                                 "source": request.source, "format": request.format})


def export(registry: Registry, work_dir: Path, request: ExportRequest) -> DatasetResult:
    from tooltune.data.examples import read_jsonl
    from tooltune.data.io import export_file
    from tooltune.tools.catalog import ToolCatalog

    dataset = registry.get_dataset(request.dataset)
    source = Path(dataset.path) / f"{request.split}.jsonl"
    if not source.is_file():
        raise DataError(f"split: dataset {dataset.version} has no {request.split}.jsonl in {dataset.path}; "
                        "export a split it has.")
    catalog_path = Path(dataset.path) / "catalog.json"
    catalog = ToolCatalog.load(catalog_path) if catalog_path.is_file() else None
    out = (work_dir / "exports" / _safe(dataset.version) / f"{request.split}.{request.format}.jsonl").resolve()
    result = export_file(request.format, list(read_jsonl(source)), out, catalog=catalog)
    return DatasetResult(export=ExportInfo(path=str(out), written=result.written, skipped=len(result.skipped)))


def _fresh_dir(work_dir: Path, kind: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    return (work_dir / "datasets" / f"{kind}-{stamp}").resolve()


def _safe(name: str) -> str:
    """A registry name as one path component (versions may hold any characters)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "_"
