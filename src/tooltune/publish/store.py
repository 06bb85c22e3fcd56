"""A service's published examples and tests, loaded once: anonymized, filtered, paged and converted.

What is served is fixed at load time. When ``metadata.yaml`` says ``anonymized: true`` every
example is run through :class:`tooltune.data.anonymize.Anonymizer` here, before any request can
see it, so no code path can serve an unscrubbed record.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tooltune.data.examples import Example
from tooltune.errors import DataError
from tooltune.publish.config import PublishConfig
from tooltune.data.publication import (
    FORMATS,
    ORCHESTRATOR_ROLE,
    AuthInfo,
    Counts,
    Endpoints,
    PublicationMetadata,
    TestSummary,
    TrainingDataDocument,
)
from tooltune.tools.catalog import ToolCatalog, content_hash

_TEST_FILES = ("tests.jsonl", "holdout.jsonl")
ENDPOINTS = Endpoints(training_dataset="/mcp/training-dataset", test_dataset="/mcp/test-dataset", catalog="/mcp/catalog")


@dataclass
class Page:
    items: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    total: int
    pages: int
    etag: str


class PublishedData:
    """Everything one publisher serves; build it with :meth:`load`."""

    def __init__(self, service: str, training: list[Example], tests: list[Example], catalog: ToolCatalog,
                 metadata: PublicationMetadata, problems: list[str], config: PublishConfig):
        self.service, self.training, self.tests, self.catalog = service, training, tests, catalog
        self.metadata, self.problems, self.config = metadata, problems, config
        self.version = metadata.version or content_hash(sorted(e.id for e in training + tests))

    @classmethod
    def load(cls, config: PublishConfig) -> PublishedData:
        from tooltune.data.anonymize import Anonymizer

        metadata = PublicationMetadata.load(config.data_dir / "metadata.yaml")
        problems: list[str] = []
        test_files = [config.tests] if config.tests else _default_test_files(config.data_dir)
        training_files = [p for p in sorted(config.data_dir.glob("*.jsonl"))
                          if p not in test_files and not _is_test_file(p) and not p.name.startswith("quarantine")]
        scrub = Anonymizer().scrub if metadata.anonymized else None
        training = [e for p in training_files for e in _read(p, problems, scrub)]
        tests = [e for p in test_files for e in _read(p, problems, scrub)]
        if not config.catalog_path.exists():
            raise DataError(f"{config.catalog_path}: no catalog. Write one with `tooltune tools discover -o "
                            f"{config.catalog_path}` (or pass --catalog).")
        catalog = ToolCatalog.load(config.catalog_path)
        for problem in problems:  # a publisher keeps serving its valid examples; the team sees the rest
            print(f"tooltune publish: skipped {problem}", file=sys.stderr)
        return cls(config.service, training, tests, catalog, metadata, problems, config)

    def document(self) -> TrainingDataDocument:
        from mcp_types import LATEST_PROTOCOL_VERSION

        stamps = [e.provenance.created_at for e in self.training + self.tests]
        covered = sorted({c.name for e in self.training for c in e.calls if c.name in self.catalog})
        return TrainingDataDocument(
            service=self.service, version=self.version, owner=self.metadata.owner,
            mcp_protocol_version=LATEST_PROTOCOL_VERSION, catalog_hash=self.catalog.hash,
            counts=Counts(total=len(self.training), by_source=dict(Counter(e.provenance.source.value for e in self.training))),
            tools_covered=covered, last_updated=max(stamps) if stamps else None,
            quality=dict(Counter(e.provenance.quality.value for e in self.training)),
            anonymized=self.metadata.anonymized, consent=self.metadata.consent, restrictions=self.metadata.restrictions,
            formats=list(FORMATS), endpoints=ENDPOINTS,
            auth=AuthInfo(algorithms=[self.config.algorithm], required_role=ORCHESTRATOR_ROLE,
                          rate_limit=f"{self.config.rate_limit}/{self.config.rate_window_s:g}s"),
            test_data=TestSummary(
                total=len(self.tests), critical_scenarios=sum(bool(e.meta.get("critical")) for e in self.tests),
                min_accuracy_required=self.metadata.min_accuracy_required,
                by_category=dict(Counter(e.category.value for e in self.tests))),
        )

    def page(self, dataset: str, *, fmt: str, since: datetime | None, page: int, page_size: int) -> Page:
        """One page of ``dataset`` ('training' or 'test') newer than ``since``, in ``fmt``."""
        examples = self.training if dataset == "training" else self.tests
        if since is not None:
            since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
            examples = [e for e in examples if e.provenance.created_at > since]
        total = len(examples)
        chunk = examples[(page - 1) * page_size: page * page_size]
        # The ETag names the content and the request's shape: the same query over the same data
        # gives the same tag, so If-None-Match answers 304 without sending anything.
        etag = content_hash({"ids": [e.id for e in chunk], "version": self.version, "fmt": fmt, "page": page,
                             "page_size": page_size, "total": total, "since": since.isoformat() if since else None})
        items, skipped = self._convert(chunk, fmt)
        return Page(items=items, skipped=skipped, total=total, pages=max(1, math.ceil(total / page_size)), etag=f'"{etag}"')

    def _convert(self, examples: list[Example], fmt: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if fmt == "tooltune":
            return [e.model_dump(mode="json", exclude_none=True) for e in examples], []
        from tooltune.data.io import export_file

        with tempfile.TemporaryDirectory(prefix="tooltune-publish-") as tmp:
            out = Path(tmp) / f"page.{fmt}.jsonl"
            result = export_file(fmt, examples, out, catalog=self.catalog)
            items = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        skipped = [{"source": q.source, "reason": q.reason} for q in result.skipped]
        return items, skipped


def _is_test_file(path: Path) -> bool:
    return path.name in _TEST_FILES or path.name.startswith("test_")


def _default_test_files(data_dir: Path) -> list[Path]:
    if (data_dir / "tests.jsonl").exists():
        return [data_dir / "tests.jsonl"]
    return [p for p in sorted(data_dir.glob("*.jsonl")) if _is_test_file(p)]


def _read(path: Path, problems: list[str], scrub: Any) -> list[Example]:
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            out.append(Example.model_validate(scrub(raw) if scrub else raw))
        except (ValueError, ValidationError) as e:
            problems.append(f"{path}:{lineno}: not a tooltune example: {str(e).splitlines()[0]}")
    return out
