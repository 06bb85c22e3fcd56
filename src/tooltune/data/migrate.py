"""Carry a dataset over to a new catalog version: keep, migrate, or quarantine each example.

Each example is classified against the new catalog, using the changes :func:`tools.diff.diff`
finds between the old catalog (passed in, or the ``catalog.json`` the build wrote beside the
data) and the new one:

- **valid**: it passes every check against the new catalog unchanged (a new optional parameter,
  a reworded description, an added enum value);
- **migrated**: a mechanical edit makes it pass: a renamed parameter is renamed in the calls
  (arguments, alternatives, optional), in clarify's missing list and in recorded negatives, and a
  removed tool that was only offered as a distractor is no longer offered;
- **invalid**: it still fails: a called tool was removed, a new required parameter has no value,
  a value no longer fits a changed type, an enum value was removed. It goes to quarantine with
  the check's messages and the catalog changes behind them.

Valid and migrated examples get the new catalog hash in their provenance. An example stays in
its split file; a migrated example's id changes with its content, but the split is kept, so test
examples never move into train.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltune.data.examples import Behavior, Example, ExpectedCall, read_jsonl, write_jsonl
from tooltune.data.quality import example_problems
from tooltune.data.quarantine import QuarantineRecord, write_quarantine
from tooltune.errors import DataError
from tooltune.tools.catalog import ToolCatalog
from tooltune.tools.diff import CatalogDiff, ChangeKind, diff


class MigrationStatus(str, enum.Enum):
    VALID = "valid"
    MIGRATED = "migrated"
    INVALID = "invalid"


@dataclass
class Migration:
    """What happened to one example."""

    status: MigrationStatus
    example: Example
    """The migrated example (the original when invalid)."""
    edits: list[str] = field(default_factory=list)
    """Mechanical edits applied, e.g. ``create_payment.amount renamed to amount_cents``."""
    reasons: list[str] = field(default_factory=list)
    """Why it is invalid: check messages, then the catalog changes behind them."""


class _Renames:
    def __init__(self, changes: CatalogDiff):
        self.params: dict[str, dict[str, str]] = {}
        for c in changes.changes:
            if c.kind is ChangeKind.PARAM_RENAMED and c.param and c.new_param:
                self.params.setdefault(c.tool, {})[c.param] = c.new_param
        self.removed_tools = {c.tool for c in changes.changes if c.kind is ChangeKind.TOOL_REMOVED}

    def keys(self, tool: str, mapping: dict[str, Any]) -> dict[str, Any]:
        names = self.params.get(tool, {})
        return {names.get(k, k): v for k, v in mapping.items()}


def migrate_example(example: Example, new: ToolCatalog, changes: CatalogDiff) -> Migration:
    """Classify and, where possible, migrate one example (see module doc)."""
    renames = _Renames(changes)
    edits: list[str] = []
    reasons = [f"calls[{i}] calls {c.name!r}, which the new catalog removed. Rewrite the example for the tool "
               "that replaces it, or drop it." for i, c in enumerate(example.calls) if c.name in renames.removed_tools]
    if reasons:
        return Migration(MigrationStatus.INVALID, example, reasons=reasons + _context(example, changes))
    update: dict[str, Any] = {}
    calls = [_renamed_call(c, renames, edits) for c in example.calls]
    if calls != example.calls:
        update["calls"] = calls
    offered = [t for t in example.tools if t not in renames.removed_tools]
    if offered != example.tools:
        update["tools"] = offered
        edits += [f"no longer offers removed tool {t!r}" for t in example.tools if t not in offered]
    if example.clarify and example.clarify.missing:
        missing = [_renamed_param(p, offered, renames) for p in example.clarify.missing]
        if missing != example.clarify.missing:
            update["clarify"] = example.clarify.model_copy(update={"missing": missing})
            edits.append(f"clarify.missing renamed to {missing}")
    if "negatives" in example.meta:
        update["meta"] = {**example.meta, "negatives": [_renamed_negative(n, renames) for n in example.meta["negatives"]]}
    migrated = example.model_copy(update=update) if update else example
    problems = example_problems(migrated, new)
    if problems or (example.behavior is Behavior.NO_CALL and not offered):
        problems = problems or ["no_call example offers no tool once removed tools are dropped. Drop it, "
                                "or offer tools of the new catalog."]
        return Migration(MigrationStatus.INVALID, example, edits, problems + _context(example, changes))
    provenance = migrated.provenance.model_copy(update={"catalog_hash": new.hash})
    migrated = migrated.model_copy(update={"provenance": provenance})
    status = MigrationStatus.MIGRATED if edits else MigrationStatus.VALID
    return Migration(status, migrated, edits)


def _renamed_call(call: ExpectedCall, renames: _Renames, edits: list[str]) -> ExpectedCall:
    names = renames.params.get(call.name, {})
    hit = [p for p in (*call.arguments, *call.alternatives, *call.optional) if p in names]
    if not hit:
        return call
    edits += [f"{call.name}.{p} renamed to {names[p]}" for p in dict.fromkeys(hit)]
    return call.model_copy(update={
        "arguments": renames.keys(call.name, call.arguments),
        "alternatives": renames.keys(call.name, call.alternatives),
        "optional": [names.get(p, p) for p in call.optional],
    })


def _renamed_param(param: str, offered: list[str], renames: _Renames) -> str:
    for tool in offered:
        if param in renames.params.get(tool, {}):
            return renames.params[tool][param]
    return param


def _renamed_negative(negative: Any, renames: _Renames) -> Any:
    if isinstance(negative, dict) and isinstance(negative.get("arguments"), dict) and negative.get("name"):
        return {**negative, "arguments": renames.keys(negative["name"], negative["arguments"])}
    return negative


def _context(example: Example, changes: CatalogDiff) -> list[str]:
    """The catalog changes to the example's called tools: why its checks now fail."""
    called = {c.name for c in example.calls}
    return [f"catalog change: {c}" for c in changes.changes if c.tool in called]


# ---------------------------------------------------------------- datasets


@dataclass
class MigrationResult:
    examples: list[Example]
    """Valid and migrated examples, in input order."""
    quarantine: list[QuarantineRecord]
    counts: dict[str, int]
    """Examples per :class:`MigrationStatus` value."""
    edits: dict[str, int]
    """How often each mechanical edit was applied."""


def migrate_examples(
    examples: list[Example], new: ToolCatalog, old: ToolCatalog | None = None, *, source: str = "examples",
) -> MigrationResult:
    """Migrate ``examples`` from ``old`` (``None``: unknown, so only checks apply, no renames) to
    ``new``; ``source`` names them in quarantine records (``source:index``)."""
    changes = diff(old, new) if old is not None else CatalogDiff([])
    kept, quarantine = [], []
    counts: Counter[str] = Counter({s.value: 0 for s in MigrationStatus})
    edits: Counter[str] = Counter()
    for i, example in enumerate(examples):
        m = migrate_example(example, new, changes)
        counts[m.status.value] += 1
        edits.update(m.edits)
        if m.status is MigrationStatus.INVALID:
            quarantine.append(QuarantineRecord(source=example.provenance.origin or f"{source}:{i + 1}",
                                               reason=m.reasons, record=example.model_dump(mode="json", exclude_none=True)))
        else:
            kept.append(m.example)
    return MigrationResult(kept, quarantine, dict(counts), dict(edits))


def migrate_dataset(data_dir: str | Path, new: ToolCatalog, out_dir: str | Path, old: ToolCatalog | None = None) -> dict[str, Any]:
    """Migrate every split file of a built dataset in ``data_dir`` to ``new`` and write the result
    (same split files, ``quarantine.jsonl``, ``catalog.json``, ``migration.json``, ``report.json``)
    to ``out_dir``. ``old`` defaults to the ``catalog.json`` the build wrote. Returns the
    migration report (also saved as ``migration.json``)."""
    from tooltune.data.build import SPLIT_FILES, dataset_summary  # build imports this module

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if data_dir.resolve() == out_dir.resolve():
        raise DataError(f"{out_dir}: migrating in place would overwrite the original split files. Choose another -o folder.")
    old = old or _saved_catalog(data_dir)
    present = [n for n in SPLIT_FILES if (data_dir / f"{n}.jsonl").exists()]
    if not present:
        raise DataError(f"{data_dir}: no split files ({', '.join(f'{n}.jsonl' for n in SPLIT_FILES)}). "
                        "Point at the output folder of `tooltune data build`.")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "quarantine.jsonl").unlink(missing_ok=True)
    report: dict[str, Any] = {
        "old_catalog_hash": old.hash if old else None, "new_catalog_hash": new.hash,
        "catalog_changes": [str(c) for c in diff(old, new).changes] if old else [],
        "splits": {}, "counts": Counter(), "edits": Counter(),
    }
    splits = {}
    for name in present:
        path = data_dir / f"{name}.jsonl"
        result = migrate_examples(list(read_jsonl(path)), new, old, source=str(path))
        write_jsonl(result.examples, out_dir / f"{name}.jsonl")
        write_quarantine(result.quarantine, out_dir / "quarantine.jsonl")
        report["splits"][name] = result.counts
        report["counts"].update(result.counts)
        report["edits"].update(result.edits)
        splits[name] = result.examples
    report["counts"], report["edits"] = dict(report["counts"]), dict(report["edits"])
    if old is None:
        report["note"] = f"{data_dir}/catalog.json not found and no old catalog given: renames could not be applied."
    new.save(out_dir / "catalog.json")
    (out_dir / "migration.json").write_text(json.dumps(report, indent=2) + "\n")
    summary = {**dataset_summary(splits, new), "quarantine": report["counts"].get("invalid", 0),
               "migration": report}
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return report


def _saved_catalog(data_dir: Path) -> ToolCatalog | None:
    path = data_dir / "catalog.json"
    return ToolCatalog.load(path) if path.exists() else None
