"""``build_dataset``: sources → checked, scored, deduplicated, split dataset with a report.

Steps (``docs/data-pipeline.md`` explains each): load the catalog → curated files → synthetic
generation → production logs and corrections → check every example against the catalog →
quality score → drop below ``min_quality`` → exact dedup → near-duplicate dedup → balance and
coverage → split → contamination check → write the split files, ``quarantine.jsonl``,
``catalog.json`` (for ``data migrate``) and ``report.json``.

Invalid records never stop the build by themselves: they go to ``quarantine.jsonl`` with their
reasons. The build fails only when their share exceeds ``max_error_fraction`` (a sign that the
catalog and the data disagree wholesale) or when contamination exceeds its thresholds.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, Field

from tooltune.data.config import DataConfig
from tooltune.data.examples import Behavior, Example, read_jsonl, write_jsonl
from tooltune.data.quality import (
    Duplicate, Embedder, balance, cached_ids, example_id, example_problems, exact_dedup, load_embedder, quality_score,
    semantic_dedup,
)
from tooltune.data.quarantine import QuarantineRecord, write_quarantine
from tooltune.data.sequences import Chain, ServerFactory
from tooltune.data.split import SPLITS, check_contamination, split_examples
from tooltune.data.synth import SynthConfig, generate
from tooltune.data.vocabulary import DomainVocabulary
from tooltune.errors import ConfigError, DataError
from tooltune.tools.catalog import ToolCatalog, content_hash

SPLIT_FILES = SPLITS
Progress = Callable[[str, int, int | None], None]
"""``progress(step, done, total)``: called as a step advances (``total`` None when unknown)."""


class BuildReport(BaseModel):
    """What ``report.json`` holds; every count is of examples unless named otherwise."""

    catalog_hash: str = Field(description="Hash of the catalog the dataset was built against.")
    dataset_hash: str = Field(description="Hash of the example ids of every split: equal hashes, equal datasets.")
    sources: dict[str, int] = Field(description="Usable examples read per source (curated, synthetic, production, correction).")
    records: int = Field(description="Records read from all sources, usable and invalid.")
    invalid: int = Field(description="Records that failed loading or checks (all quarantined).")
    quarantine: int = Field(description="Lines written to quarantine.jsonl.")
    dropped: dict[str, int] = Field(description="Valid examples left out, by reason.")
    dedup: dict[str, Any] = Field(description="exact and semantic duplicates dropped, backend, threshold.")
    per_tool: dict[str, int] = Field(description="Examples calling each catalog tool, all splits together.")
    per_tool_split: dict[str, dict[str, int]] = Field(description="Examples calling each tool, per split.")
    flagged_tools: list[str] = Field(description="Tools below balance_threshold x the per-tool mean.")
    behavior_mix: dict[str, int] = Field(description="calls / parallel / multi_step / clarify / no_call counts.")
    categories: dict[str, int] = Field(description="BFCL-style category counts.")
    split_sizes: dict[str, int] = Field(description="Examples per split file.")
    held_out_tools: list[str] = Field(description="Tools whose examples are only in test_zero_shot.")
    contamination: dict[str, Any] = Field(description="Exact / near-duplicate overlap of each eval split with train, and removals.")
    quality: dict[str, float] = Field(description="Mean, min and max quality score of the written examples.")
    seconds: float = Field(description="Wall time of the build.")


def build_dataset(config: DataConfig, progress: Progress | None = None, *, chains: Sequence[Chain] = (),
                  server_factory: ServerFactory | None = None) -> BuildReport:
    """Build the dataset described by ``config`` into ``config.output_dir``; see the module doc.

    ``chains`` and ``server_factory``: the multi-step chains synthesis executes, and the servers
    it executes them on (:func:`tooltune.data.synth.generate`); the caller that knows the
    services passes them (for the demo services, ``tooltune.demo.chains.CHAINS`` and
    ``tooltune.demo.build_server``). Without them the multi_step share goes to single calls."""
    with cached_ids():
        return _build(config, progress, _MultiStep(chains, server_factory))


class _MultiStep(NamedTuple):
    """What :func:`build_dataset` hands on to synthesis for multi-step examples."""

    chains: Sequence[Chain]
    server_factory: ServerFactory | None


def _build(config: DataConfig, progress: Progress | None, multi_step: _MultiStep) -> BuildReport:
    started = time.perf_counter()
    tick = progress or (lambda step, done, total: None)
    if config.catalog is None:
        raise ConfigError("data config: catalog is required. Pass --catalog (a catalog JSON from `tooltune discover`).")
    catalog = ToolCatalog.load(config.catalog)
    out = Path(config.output_dir)
    examples, quarantine, dropped = _collect(config, catalog, out, tick, multi_step)
    records = len(examples) + len(quarantine)
    sources = Counter(e.provenance.source.value for e in examples)

    scores = _score(examples, catalog, tick)
    kept = [e for e in examples if e.meta["quality"] >= config.min_quality]
    dropped["low_quality"] = len(examples) - len(kept)
    kept, exact, semantic, embedder = _dedup(kept, scores, config, tick)
    dropped["exact_duplicate"], dropped["near_duplicate"] = len(exact), len(semantic)

    tick("split", 0, None)
    result = split_examples(kept, catalog, config)
    tick("contamination", 0, None)
    splits, contamination = check_contamination(
        result.splits, embedder, threshold=config.near_dup_threshold,
        max_exact=config.max_exact_contamination, max_near_fraction=config.max_near_dup_contamination)
    dropped["contamination"] = sum(contamination.removed.values())

    tick("write", 0, None)
    for name in SPLIT_FILES:
        write_jsonl(splits[name], out / f"{name}.jsonl")
    catalog.save(out / "catalog.json")  # `data migrate` diffs the next catalog against it
    summary = dataset_summary(splits, catalog, config.balance_threshold)
    report = BuildReport(
        **summary, sources=dict(sources), records=records, invalid=len(quarantine), quarantine=len(quarantine),
        dropped=dropped,
        dedup={"exact": len(exact), "semantic": len(semantic), "backend": embedder.backend if embedder else "off",
               "threshold": config.near_dup_threshold if config.semantic_dedup else None},
        held_out_tools=result.held_out_tools,
        contamination={"exact": contamination.exact, "near": contamination.near, "removed": contamination.removed,
                       "threshold": contamination.threshold, "sample": contamination.sample,
                       "stripped_distractors": result.stripped},
        seconds=round(time.perf_counter() - started, 2),
    )
    (out / "report.json").write_text(report.model_dump_json(indent=2) + "\n")
    return report


# ---------------------------------------------------------------- steps


def _collect(
    config: DataConfig, catalog: ToolCatalog, out: Path, tick: Progress, multi_step: _MultiStep
) -> tuple[list[Example], list[QuarantineRecord], dict[str, int]]:
    """Every source's examples that pass their checks, and the quarantine (already written);
    raises when the invalid share is above ``max_error_fraction``."""
    out.mkdir(parents=True, exist_ok=True)
    # A failed build must not leave an earlier build's files looking current.
    for name in (*SPLIT_FILES, "quarantine"):
        (out / f"{name}.jsonl").unlink(missing_ok=True)
    (out / "report.json").unlink(missing_ok=True)
    examples, quarantine, dropped, vocabulary = _load_sources(config, catalog, tick, multi_step)
    examples, invalid = _check(examples, catalog, vocabulary, tick)
    quarantine += invalid
    write_quarantine(quarantine, out / "quarantine.jsonl")
    _fail_on_errors(len(quarantine), len(examples) + len(quarantine), config, out)
    return examples, quarantine, dropped


def _load_sources(
    config: DataConfig, catalog: ToolCatalog, tick: Progress, multi_step: _MultiStep
) -> tuple[list[Example], list[QuarantineRecord], dict[str, int], DomainVocabulary]:
    from tooltune.data.curated import load_curated
    from tooltune.data.feedback import ingest_logs, load_corrections

    examples: list[Example] = []
    quarantine: list[QuarantineRecord] = []
    dropped: dict[str, int] = {}
    vocabulary = DomainVocabulary()
    for i, path in enumerate(config.curated):
        tick("curated", i, len(config.curated))
        load = load_curated(path, catalog)
        examples += load.examples
        quarantine += load.quarantine
        vocabulary = vocabulary.merge(load.vocabulary)
    if config.synthetic:
        tick("synthetic", 0, config.synthetic)
        synthetic, synth_dropped = _synthesize(config, catalog, list(examples), vocabulary, multi_step)
        examples = _link_templates(examples, synthetic) + synthetic
        dropped.update({f"synthetic_{k}": v for k, v in synth_dropped.items()})
        tick("synthetic", len(synthetic), config.synthetic)
    if config.logs:  # all at once: a later line (feedback) replaces an earlier one across files
        tick("logs", 0, None)
        load = ingest_logs(config.logs, catalog)
        examples += load.examples
        log_review = load.review
        dropped["log_lines_superseded"] = len(load.superseded)
        dropped["log_lines_unrated"] = len(load.unrated)
    corrected: set[str] = set()
    for path in config.corrections:
        tick("corrections", 0, None)
        load = load_corrections(path, catalog)
        examples += load.examples
        quarantine += load.review
        corrected |= {e.meta["log_id"] for e in load.examples if e.meta.get("log_id")}
    if config.logs:
        # A failed turn whose correction is trained on needs no review: the correction is its example.
        waiting = [r for r in log_review if not (isinstance(r.record, dict) and r.record.get("id") in corrected)]
        dropped["log_lines_corrected"] = len(log_review) - len(waiting)
        quarantine += waiting
    return examples, quarantine, dropped, vocabulary


def _synthesize(
    config: DataConfig, catalog: ToolCatalog, curated: list[Example], vocabulary: DomainVocabulary,
    multi_step: _MultiStep,
) -> tuple[list[Example], dict[str, int]]:
    knobs = (config.synth or SynthConfig()).model_copy(update={"n": config.synthetic, "seed": config.seed})
    other = [tool for path in config.other_domain_tools for tool in ToolCatalog.load(path)]
    result = generate(catalog, knobs, curated=curated, vocabulary=vocabulary, chains=multi_step.chains,
                      server_factory=multi_step.server_factory, other_domains=other)
    return result.examples, result.dropped


def _link_templates(curated: list[Example], synthetic: list[Example]) -> list[Example]:
    """Give each curated example the template id of the synthetic examples worded from it, so
    that the split keeps the original and its rewordings on the same side (else the curated
    request could be tested while its rewordings are trained on)."""
    template_of = {e.meta["curated_origin"]: e.meta["template_id"] for e in synthetic
                   if e.meta.get("curated_origin") and e.meta.get("template_id")}
    out = []
    for example in curated:
        template = template_of.get(example.provenance.origin or "")
        if template and "template_id" not in example.meta:
            example = example.model_copy(update={"meta": {**example.meta, "template_id": template}})
        out.append(example)
    return out


def _check(
    examples: list[Example], catalog: ToolCatalog, vocabulary: DomainVocabulary, tick: Progress
) -> tuple[list[Example], list[QuarantineRecord]]:
    good, bad = [], []
    for i, example in enumerate(examples):
        if i % 5000 == 0:
            tick("check", i, len(examples))
        problems = example_problems(example, catalog, vocabulary)
        if problems:
            source = example.provenance.origin or f"{example.provenance.source.value}:{example.id}"
            bad.append(QuarantineRecord(source=source, reason=problems, record=example.model_dump(mode="json", exclude_none=True)))
        else:
            good.append(example)
    tick("check", len(examples), len(examples))
    return good, bad


def _fail_on_errors(invalid: int, records: int, config: DataConfig, out: Path) -> None:
    if records and invalid / records > config.max_error_fraction:
        raise DataError(
            f"{invalid} of {records} records ({invalid / records:.1%}) are invalid, above max_error_fraction "
            f"{config.max_error_fraction:.0%}. Read the reasons in {out / 'quarantine.jsonl'}: most often the "
            "catalog changed (run `tooltune data migrate`) or a source file targets another service; fix them, "
            "or raise max_error_fraction."
        )


def _score(examples: list[Example], catalog: ToolCatalog, tick: Progress) -> dict[str, float]:
    """Scores by id; each score is also set in the example's ``meta["quality"]`` (in place: the
    build owns these objects, and meta is not part of the id)."""
    scores = {}
    for i, example in enumerate(examples):
        if i % 5000 == 0:
            tick("quality", i, len(examples))
        # The examples passed their checks a moment ago: no need to check them again.
        score = scores[example_id(example)] = quality_score(example, catalog, problems=[])
        example.meta = {**example.meta, "quality": score}
    return scores


def _dedup(
    examples: list[Example], scores: dict[str, float], config: DataConfig, tick: Progress
) -> tuple[list[Example], list[Duplicate], list[Duplicate], Embedder | None]:
    """Exact then near-duplicate dedup; also returns the embedder (None when no near-duplicate
    work is configured) for the contamination check to reuse."""
    tick("exact duplicates", 0, None)
    kept, exact = exact_dedup(examples, scores)
    if not config.semantic_dedup and config.max_near_dup_contamination is None:
        return kept, exact, [], None
    tick("load embedder", 0, None)
    embedder = load_embedder(config.dedup_backend)
    if not config.semantic_dedup:
        return kept, exact, [], embedder
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        tick("near duplicates", done[0], len(kept))

    kept, semantic = semantic_dedup(kept, scores, embedder, config.near_dup_threshold, progress=advance)
    return kept, exact, semantic, embedder


# ---------------------------------------------------------------- summaries


def behavior_mix(examples: list[Example]) -> dict[str, int]:
    """calls (one call) / parallel (several calls at once) / multi_step / clarify / no_call."""
    mix = Counter({k: 0 for k in ("calls", "parallel", "multi_step", "clarify", "no_call")})
    for e in examples:
        if e.behavior is Behavior.CALLS:
            mix["parallel" if len(e.calls) > 1 else "calls"] += 1
        elif e.behavior is Behavior.SEQUENCE:
            mix["multi_step"] += 1
        else:
            mix[e.behavior.value] += 1
    return dict(mix)


def dataset_summary(splits: dict[str, list[Example]], catalog: ToolCatalog | None, threshold: float = 0.5) -> dict[str, Any]:
    """The report fields that follow from the split files alone (``report_dataset`` recomputes them)."""
    everything = [e for items in splits.values() for e in items]
    names = catalog.names if catalog else []
    bal = balance(everything, names, threshold)
    per_tool_split = {}
    for split, items in splits.items():
        counts = Counter(name for e in items for name in {c.name for c in e.calls})
        per_tool_split[split] = {**dict.fromkeys(names, 0), **counts}
    scores = [float(e.meta["quality"]) for e in everything if isinstance(e.meta.get("quality"), (int, float))]
    return {
        "catalog_hash": catalog.hash if catalog else "",
        "dataset_hash": content_hash({name: sorted(example_id(e) for e in items) for name, items in splits.items()}),
        "per_tool": bal.per_tool,
        "per_tool_split": per_tool_split,
        "flagged_tools": bal.flagged,
        "behavior_mix": behavior_mix(everything),
        "categories": bal.per_category,
        "split_sizes": {name: len(items) for name, items in splits.items()},
        "quality": ({"mean": round(sum(scores) / len(scores), 4), "min": min(scores), "max": max(scores)} if scores else {}),
    }


def catalog_beside(file: str | Path) -> Path | None:
    """The ``catalog.json`` a build wrote next to its split files, when ``file`` sits beside one:
    the default catalog of a command given a single split file (``data export``, ``eval score``)."""
    beside = Path(file).parent / "catalog.json"
    return beside if beside.exists() else None


def report_dataset(data_dir: str | Path) -> dict[str, Any]:
    """The report of a built dataset: ``report.json`` with every file-derived field recomputed
    from the split files (so edits after the build show), and ``matches_build`` saying whether
    the files are still the ones the build wrote."""
    data_dir = Path(data_dir)
    present = [n for n in SPLIT_FILES if (data_dir / f"{n}.jsonl").exists()]
    if not present:
        raise DataError(f"{data_dir}: no split files ({', '.join(f'{n}.jsonl' for n in SPLIT_FILES)}). "
                        "Point at the output folder of `tooltune data build`.")
    splits = {n: list(read_jsonl(data_dir / f"{n}.jsonl")) for n in present}
    catalog_path = data_dir / "catalog.json"
    catalog = ToolCatalog.load(catalog_path) if catalog_path.exists() else None
    saved: dict[str, Any] = {}
    if (data_dir / "report.json").exists():
        try:
            saved = json.loads((data_dir / "report.json").read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{data_dir / 'report.json'}:{e.lineno}: not valid JSON ({e.msg}). Rebuild, or delete it.") from e
    summary = dataset_summary(splits, catalog)
    if catalog is None:
        summary["catalog_hash"] = saved.get("catalog_hash", "")
    quarantine = data_dir / "quarantine.jsonl"
    summary["quarantine"] = sum(1 for line in quarantine.open() if line.strip()) if quarantine.exists() else 0
    return {**saved, **summary, "matches_build": saved.get("dataset_hash") == summary["dataset_hash"]}
