"""``tooltune collect``: pull every publisher concurrently, validate, quarantine, build one dataset.

For each service in ``services.yaml`` (all at once, each with its own timeout and retries):

1. read ``/.well-known/mcp-training-data.json`` (service name, version, gate, owner);
2. get the catalog: discovered from the service's MCP endpoint when ``mcp_http`` is given,
   else the one the publisher serves at ``/mcp/catalog``;
3. pull the training and test datasets incrementally: ``since`` the newest example already
   held, with the ETag of the same query last time (a 304 costs no transfer);
4. validate every record as an :class:`~tooltune.data.examples.Example` and against the
   catalog (:func:`~tooltune.data.quality.example_problems`); bad ones go to
   ``DIR/<service>/quarantine.jsonl`` with the reasons, good ones join ``DIR/<service>/``.

A service that cannot be read is reported with the error (``report.failed``), never skipped
silently; its data from earlier runs still goes into the dataset, marked stale. Then the
dataset is built into ``DIR/dataset/``: ``train.jsonl`` / ``val.jsonl`` (training examples of
every service, split by example id), ``holdout.jsonl`` (every service's test scenarios, each
example keeping its ``service``), ``catalog.json`` (the merged catalogs), ``services.json``
(each service's gate and owner) and ``report.json``. Training examples that repeat a test
scenario are dropped, so no service is evaluated on what the model was trained on.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field, ValidationError

from tooltune.collect.config import CollectConfig, ServiceEntry
from tooltune.collect.pull import DatasetPull, PullError, get_json, pull_dataset, well_known
from tooltune.data.examples import Example, read_jsonl, write_jsonl
from tooltune.data.quarantine import QuarantineRecord, write_quarantine
from tooltune.data.split import split_by_id
from tooltune.errors import CatalogError, DataError, TooltuneError
from tooltune.tools.catalog import ToolCatalog, content_hash

STATE_FILE = "state.json"
REPORT_FILE = "collect-report.json"
DATASET_DIR = "dataset"
SERVICES_FILE = "services.json"
_DATASETS = {"training": "training.jsonl", "test": "tests.jsonl"}


class ServiceReport(BaseModel):
    """What one service gave this run, and where its data came from."""

    url: str
    service: str | None = None
    status: str = Field(description="ok, not_modified (nothing new), or failed.")
    error: str | None = None
    stale: bool = Field(False, description="Failed this run; its data from an earlier run is used.")
    version: str | None = None
    owner: str | None = None
    catalog_hash: str | None = None
    catalog_source: str | None = Field(None, description="mcp:<url> or publisher:<url>/mcp/catalog.")
    min_accuracy_required: float | None = None
    received: dict[str, int] = Field(default_factory=dict, description="Records received this run per dataset.")
    quarantined: dict[str, int] = Field(default_factory=dict, description="Records quarantined this run per dataset.")
    held: dict[str, int] = Field(default_factory=dict, description="Valid examples held per dataset after this run.")
    pages: int = 0
    seconds: float = 0.0
    pulled_at: datetime | None = None


class CollectReport(BaseModel):
    output_dir: Path
    services: list[ServiceReport]
    dataset: dict[str, Any] = Field(default_factory=dict, description="Split sizes, hash and per-service counts.")

    @property
    def failed(self) -> list[ServiceReport]:
        return [s for s in self.services if s.status == "failed"]


def collect_all(config: CollectConfig, output_dir: str | Path, *, full: bool = False) -> CollectReport:
    """Run one collection into ``output_dir`` (see the module doc); returns the report, also
    written to ``DIR/collect-report.json``. ``full`` ignores the saved state."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    state = {} if full or not state_path.exists() else json.loads(state_path.read_text())
    tokens = [entry.bearer(f"services[{i}] ({entry.url})") for i, entry in enumerate(config.services)]
    reports = asyncio.run(_pull_all(config, tokens, state, out, full))
    state_path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    report = CollectReport(output_dir=out, services=reports)
    report.dataset = build_dataset(out, reports, val_fraction=config.val_fraction)
    (out / REPORT_FILE).write_text(report.model_dump_json(indent=2) + "\n")
    return report


async def _pull_all(config: CollectConfig, tokens: list[str | None], state: dict[str, Any], out: Path,
                    full: bool) -> list[ServiceReport]:
    async with httpx.AsyncClient(follow_redirects=False) as client:
        jobs = [_collect_service(client, entry, token, state, out, full) for entry, token in zip(config.services, tokens)]
        return list(await asyncio.gather(*jobs))


async def _collect_service(client: httpx.AsyncClient, entry: ServiceEntry, token: str | None, state: dict[str, Any],
                           out: Path, full: bool) -> ServiceReport:
    started = time.monotonic()
    report = ServiceReport(url=entry.url, service=entry.name, status="ok")
    try:
        document = await well_known(client, entry)
        if entry.name and document.service != entry.name:
            raise PullError(f"{entry.url} publishes service {document.service!r}, but services.yaml expects "
                            f"{entry.name!r}; fix the url or the name")
        name = document.service
        report.service, report.version = name, document.version
        report.owner = entry.owner or document.owner
        report.min_accuracy_required = entry.min_accuracy_required if entry.min_accuracy_required is not None \
            else document.test_data.min_accuracy_required
        catalog, report.catalog_source = await _catalog(client, entry, token, name)
        report.catalog_hash = catalog.hash
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        catalog.save(folder / "catalog.json")
        own = state.setdefault(entry.url, {})
        if own.get("catalog_hash") not in (None, catalog.hash) or own.get("service") not in (None, name):
            own.clear()  # a new catalog (or another service at this URL) invalidates what is held: pull it all again
            for file in _DATASETS.values():
                (folder / file).unlink(missing_ok=True)
        pulled = {}
        for dataset, path in (("training", document.endpoints.training_dataset), ("test", document.endpoints.test_dataset)):
            mark = own.get(dataset, {})
            # The ETag is only valid for the exact query it was given for (same since).
            since = mark.get("watermark")
            etag = mark.get("etag") if mark.get("queried_since") == since else None
            pulled[dataset] = (await pull_dataset(client, entry, path, token=token, since=since, etag=etag), since)
        report.pulled_at = datetime.now(timezone.utc)
        for dataset, (pull, since) in pulled.items():
            report.pages += pull.pages
            newest = _store(folder, dataset, pull, catalog, report, name)
            # Quarantined records move the watermark too: a bad record is reported once, not every run.
            watermark = max(filter(None, [since, newest]), default=None)
            own[dataset] = {"queried_since": since, "etag": pull.etag, "watermark": watermark}
        own.update({"service": name, "catalog_hash": catalog.hash, "version": document.version,
                    "pulled_at": report.pulled_at.isoformat()})
        if all(pull.not_modified for pull, _ in pulled.values()):
            report.status = "not_modified"
        _write_meta(folder, report)
    except (PullError, TooltuneError, httpx.HTTPError) as e:
        report.status, report.error = "failed", str(e)
        report.stale = bool(report.service and (out / report.service / _DATASETS["training"]).exists())
        if not report.service:  # no .well-known: maybe an earlier run knew the name
            report.service = state.get(entry.url, {}).get("service")
            report.stale = bool(report.service and (out / report.service / _DATASETS["training"]).exists())
        if report.stale:
            _fill_from_meta(out / report.service, report)
    report.seconds = round(time.monotonic() - started, 3)
    return report


async def _catalog(client: httpx.AsyncClient, entry: ServiceEntry, token: str | None, name: str) -> tuple[ToolCatalog, str]:
    if entry.mcp_http:
        from tooltune.tools.discover import discover_mcp_http_async

        catalog = await discover_mcp_http_async(entry.mcp_http, timeout=entry.timeout, service=name)
        return catalog, f"mcp:{entry.mcp_http}"
    _, body, _ = await get_json(client, entry, "/mcp/catalog", token=token)
    try:
        catalog = ToolCatalog.from_dict(body, where=f"{entry.url}/mcp/catalog")
    except (CatalogError, ValidationError) as e:
        raise PullError(f"{entry.url}/mcp/catalog: not a tool catalog: {str(e).splitlines()[0]}") from None
    return catalog, f"publisher:{entry.url}/mcp/catalog"


def _store(folder: Path, dataset: str, pull: DatasetPull, catalog: ToolCatalog, report: ServiceReport,
           name: str) -> str | None:
    """Validate the new records; merge the good ones into the held file, quarantine the rest.
    Returns the newest ``created_at`` among the records that parsed (ISO 8601), if any."""
    from tooltune.data.quality import example_problems

    good: list[Example] = []
    bad: list[QuarantineRecord] = []
    stamps: list[datetime] = []
    for i, item in enumerate(pull.items):
        source = f"{report.url} {dataset} #{i} (version {report.version})"
        try:
            example = Example.model_validate(item)
        except ValidationError as e:
            reasons = [f"{source}: {'.'.join(map(str, err['loc'])) or '(root)'}: {err['msg']}" for err in e.errors()]
            bad.append(QuarantineRecord(source=source, reason=reasons, record=item))
            continue
        stamps.append(example.provenance.created_at)
        problems = example_problems(example, catalog)
        if example.service not in (None, name):
            problems.append(f"{source}: example says service {example.service!r}, but it was published by {name!r}")
        if problems:
            bad.append(QuarantineRecord(source=source, reason=problems, record=item))
            continue
        meta = {**example.meta, "collected": {"service": name, "url": report.url, "version": report.version,
                                              "catalog_hash": catalog.hash}}
        provenance = example.provenance.model_copy(update={"catalog_hash": example.provenance.catalog_hash or catalog.hash})
        good.append(example.model_copy(update={"service": name, "meta": meta, "provenance": provenance}))
    for skipped in pull.publisher_skipped:  # the publisher could not express these; keep its reason
        bad.append(QuarantineRecord(source=f"{report.url} {dataset} (publisher)", reason=list(skipped.get("reason") or ["skipped by the publisher"]),
                                    record=skipped))
    if bad:
        write_quarantine(bad, folder / "quarantine.jsonl")
    path = folder / _DATASETS[dataset]
    held = {e.id: e for e in read_jsonl(path)} if path.exists() else {}
    held.update({e.id: e for e in good})
    write_jsonl(held.values(), path)
    report.received[dataset] = len(pull.items)
    report.quarantined[dataset] = len(bad)
    report.held[dataset] = len(held)
    return max(stamps).isoformat() if stamps else None


def _write_meta(folder: Path, report: ServiceReport) -> None:
    (folder / "service.json").write_text(report.model_dump_json(indent=2) + "\n")


def _fill_from_meta(folder: Path, report: ServiceReport) -> None:
    """A failed service's gate, owner and counts from its last good pull (the data used is that pull's)."""
    meta = folder / "service.json"
    if meta.exists():
        last = ServiceReport.model_validate_json(meta.read_text())
        report.version, report.owner = last.version, last.owner
        report.min_accuracy_required, report.catalog_hash = last.min_accuracy_required, last.catalog_hash
        report.held, report.pulled_at = last.held, last.pulled_at


def build_dataset(out: Path, reports: list[ServiceReport], *, val_fraction: float = 0.1) -> dict[str, Any]:
    """Write ``DIR/dataset/`` from every service's held examples; returns its summary."""
    usable = [r for r in reports if r.service and (r.status != "failed" or r.stale)]
    target = out / DATASET_DIR
    target.mkdir(parents=True, exist_ok=True)
    catalog = ToolCatalog()
    training: list[Example] = []
    tests: list[Example] = []
    gates: dict[str, Any] = {}
    for r in usable:
        folder = out / r.service  # type: ignore[operator]
        try:
            catalog = catalog.merge(ToolCatalog.load(folder / "catalog.json"))
        except CatalogError as e:
            raise DataError(f"cannot merge the catalog of {r.service} ({r.url}) into the others: {e}") from e
        training += list(read_jsonl(folder / _DATASETS["training"])) if (folder / _DATASETS["training"]).exists() else []
        tests += list(read_jsonl(folder / _DATASETS["test"])) if (folder / _DATASETS["test"]).exists() else []
        gates[r.service] = {"min_accuracy_required": r.min_accuracy_required, "owner": r.owner, "url": r.url,  # type: ignore[index]
                            "version": r.version, "stale": r.stale}
    test_ids = {e.id for e in tests}
    unique = {e.id: e for e in training if e.id not in test_ids}
    contaminated = len({e.id for e in training}) - len(unique)
    splits = {**split_by_id(unique.values(), val_fraction), "holdout": list({e.id: e for e in tests}.values())}
    for name, examples in splits.items():
        write_jsonl(examples, target / f"{name}.jsonl")
    catalog.save(target / "catalog.json")
    (target / SERVICES_FILE).write_text(json.dumps(gates, indent=2) + "\n")
    summary = {
        "dataset_hash": content_hash({name: sorted(e.id for e in examples) for name, examples in splits.items()}),
        "catalog_hash": catalog.hash,
        "split_sizes": {name: len(examples) for name, examples in splits.items()},
        "per_service": {s: {"train": sum(e.service == s for e in splits["train"] + splits["val"]),
                            "tests": sum(e.service == s for e in splits["holdout"])} for s in gates},
        "dropped_repeating_a_test": contaminated,
        "services_failed": [r.url for r in reports if r.status == "failed"],
    }
    (target / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
