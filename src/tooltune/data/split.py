"""Split examples into train, val, four kinds of test, and holdout, and check for contamination.

Every choice is a hash of the seed and a stable key (a tool name, a template, an example id),
never a shuffle, so an example keeps its split when the dataset grows. Rules, first match wins:

1. ``test_zero_shot``: the example calls a held-out tool, or can only be about held-out tools
   (a clarify whose missing parameters belong only to held-out tools; a no_call offering only
   held-out tools, or asking for a held-out tool that is withheld, ``meta["withheld_tool"]``). Held-out tools are ``held_out_tools`` or the ``zero_shot_fraction`` of the
   catalog with the lowest hash (at least one when the catalog has two or more tools).
2. ``holdout``: created after ``holdout_after`` (time-based: the freshest data is never tuned on).
3. ``test_multistep``: a sequence example whose *template* is chosen (``multistep_test_fraction``
   of multi-step templates). The other multi-step templates stay in the pool so that the model
   still learns orchestration; whole templates move, so test sequences are unseen phrasings.
4. ``test_phrasing``: the example's template is chosen: about ``phrasing_fraction`` of each
   tool's templates. A template is ``meta["template_id"]``, or the normalized request text for
   curated and imported examples that have none.
5. Otherwise the example id's hash picks ``val`` / ``holdout`` / ``train`` in the proportions
   val_fraction : holdout_fraction : rest, scaled to the pool left after test_phrasing, so the
   whole dataset is about 60 / 10 / 10 / 20 (train / val / test_phrasing / holdout) by default.

A template is chosen when its hash falls below the fraction, which does not depend on the other
templates. A tool with 3 or more templates and none chosen gets its lowest-hash template chosen
(so every such tool is tested on phrasing); that forced choice is the one assignment that can
change as templates are added.

Held-out tools are never offered in ``train`` or ``val`` (the sets tuning sees), not even as
distractors: they are removed from the offered ``tools`` of those examples (and from their
recorded negatives), which changes those examples' ids. Test sets and holdout keep them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tooltune.data.config import DataConfig
from tooltune.data.examples import Behavior, Example
from tooltune.data.quality import Duplicate, Embedder, exact_key, example_id, near_duplicates_of, normalize_text
from tooltune.errors import DataError
from tooltune.tools.catalog import ToolCatalog

SPLITS = ("train", "val", "test_phrasing", "test_zero_shot", "test_multistep", "holdout")
EVAL_SPLITS = SPLITS[1:]
_MIN_TEMPLATES_FOR_FORCED_PICK = 3


@dataclass
class SplitResult:
    splits: dict[str, list[Example]]
    held_out_tools: list[str]
    phrasing_templates: set[str] = field(default_factory=set)
    """Template keys held out for test_phrasing."""
    multistep_templates: set[str] = field(default_factory=set)
    """Template keys of multi-step examples held out for test_multistep."""
    stripped: int = 0
    """Train/val examples that offered a held-out tool as a distractor (removed)."""

    @property
    def sizes(self) -> dict[str, int]:
        return {name: len(self.splits[name]) for name in SPLITS}


def _unit(*parts: object) -> float:
    """A stable number in [0, 1) from ``parts``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def template_key(example: Example) -> str:
    """``meta["template_id"]``, else the normalized request text: the unit of phrasing."""
    template = example.meta.get("template_id")
    return f"template:{template}" if template else "text:" + normalize_text(example.user_text)


def tool_key(example: Example) -> str:
    """What an example is 'about' for per-tool choices: its called tools, else its behaviour."""
    names = sorted({c.name for c in example.calls})
    return "+".join(names) if names else f"({example.behavior.value})"


def hold_out_tools(tool_names: Sequence[str], fraction: float, seed: int, chosen: Iterable[str] | None = None) -> list[str]:
    """``chosen`` when given (each must be a catalog tool), else the ``fraction`` of tools with
    the lowest seeded hash: at least one when there are two or more tools, never all of them."""
    names = list(tool_names)
    if chosen is not None:
        chosen = list(chosen)
        unknown = [n for n in chosen if n not in names]
        if unknown:
            raise DataError(f"held_out_tools: {', '.join(map(repr, unknown))} not in the catalog. "
                            f"Use catalog tool names: {', '.join(names)}.")
        return chosen
    if fraction <= 0 or len(names) < 2:
        return []
    k = min(len(names) - 1, max(1, round(fraction * len(names))))
    return sorted(sorted(names, key=lambda n: _unit(seed, "zero_shot", n))[:k])


def needs_tools(example: Example, held_out: set[str], catalog: ToolCatalog) -> bool:
    """Whether ``example`` calls, or can only be about, a held-out tool (rule 1)."""
    if any(c.name in held_out for c in example.calls):
        return True
    if example.behavior is Behavior.NO_CALL:
        # A request for a tool that is not offered (synthesis records it as withheld_tool) still
        # shows how users ask for that tool.
        if example.meta.get("withheld_tool") in held_out:
            return True
        return bool(example.tools) and all(n in held_out for n in example.tools)
    if example.behavior is Behavior.CLARIFY and example.clarify and example.clarify.missing:
        missing = set(example.clarify.missing)
        owners = [n for n in example.tools if n in catalog and missing & set(catalog.get(n).properties)]
        return bool(owners) and all(n in held_out for n in owners)
    return False


def _choose(keys: set[str], fraction: float, seed: int, salt: str, *, keep_one_out: bool = False) -> set[str]:
    chosen = {k for k in keys if _unit(seed, salt, k) < fraction}
    ranked = sorted(keys, key=lambda k: _unit(seed, salt, k))
    if not chosen and fraction > 0 and len(keys) >= _MIN_TEMPLATES_FOR_FORCED_PICK:
        chosen = {ranked[0]}
    if keep_one_out and len(keys) >= 2 and chosen == keys:
        chosen.discard(ranked[-1])
    return chosen


def split_examples(examples: Sequence[Example], catalog: ToolCatalog, config: DataConfig) -> SplitResult:
    """Assign every example to one of :data:`SPLITS` by the rules in the module doc."""
    held_out = hold_out_tools(catalog.names, config.zero_shot_fraction, config.seed, config.held_out_tools)
    held = set(held_out)
    splits: dict[str, list[Example]] = {name: [] for name in SPLITS}
    pool = []
    for example in examples:
        if needs_tools(example, held, catalog):
            splits["test_zero_shot"].append(example)
        elif config.holdout_after and example.provenance.created_at.date() > config.holdout_after:
            splits["holdout"].append(example)
        else:
            pool.append(example)

    sequences = {template_key(e) for e in pool if e.behavior is Behavior.SEQUENCE}
    multistep = _choose(sequences, config.multistep_test_fraction, config.seed, "multistep", keep_one_out=True)
    phrasing = _phrasing_templates([e for e in pool if template_key(e) not in multistep], config)
    val_cut = config.val_fraction / (1 - config.phrasing_fraction)
    holdout_cut = val_cut + config.holdout_fraction / (1 - config.phrasing_fraction)
    for example in pool:
        key = template_key(example)
        if key in multistep:
            splits["test_multistep"].append(example)
        elif key in phrasing:
            splits["test_phrasing"].append(example)
        else:
            u = _unit(config.seed, "row", example_id(example))
            splits["val" if u < val_cut else "holdout" if u < holdout_cut else "train"].append(example)

    stripped = 0
    for name in ("train", "val"):
        splits[name], n = _strip(splits[name], held)
        stripped += n
    return SplitResult(splits, held_out, phrasing, multistep, stripped)


def split_by_id(examples: Iterable[Example], val_fraction: float) -> dict[str, list[Example]]:
    """``train`` and ``val`` of a pool that needs none of the rules above: a collection's training
    data, whose tests come from each publisher (``tooltune collect``). The id's own hash picks the
    side, so an example keeps its side in every run as the pool grows; then
    :func:`move_one_to_val`.

    Not :func:`split_examples`' rule 5, which hashes the seed with the id: a collection has no
    seed, and its datasets have been split this way since the first one (changing the rule would
    move examples between the train and val of existing collections)."""
    splits: dict[str, list[Example]] = {"train": [], "val": []}
    for example in examples:
        splits["val" if int(example.id[:8], 16) / 0xFFFFFFFF < val_fraction else "train"].append(example)
    move_one_to_val(splits, val_fraction)
    return splits


def move_one_to_val(splits: dict[str, list[Example]], val_fraction: float) -> None:
    """Small pools would often leave val empty (no evaluation or early stopping in training):
    move the train example with the smallest id there (stable across runs)."""
    if val_fraction > 0 and not splits["val"] and len(splits["train"]) >= 2:
        first = min(splits["train"], key=lambda e: e.id)
        splits["train"].remove(first)
        splits["val"].append(first)


def _phrasing_templates(pool: Iterable[Example], config: DataConfig) -> set[str]:
    by_tool: dict[str, set[str]] = {}
    for example in pool:
        by_tool.setdefault(tool_key(example), set()).add(template_key(example))
    chosen: set[str] = set()
    for templates in by_tool.values():
        # Salted by template only: a template shared by two tools is held out for both, so its
        # phrasing never reaches train through the other tool.
        chosen |= _choose(templates, config.phrasing_fraction, config.seed, "phrasing")
    return chosen


def _strip(examples: list[Example], held: set[str]) -> tuple[list[Example], int]:
    out, n = [], 0
    for example in examples:
        if held & set(example.tools):
            n += 1
            negatives = [neg for neg in example.meta.get("negatives", []) if neg.get("name") not in held]
            meta = {**example.meta, "negatives": negatives} if "negatives" in example.meta else example.meta
            example = example.model_copy(update={"tools": [t for t in example.tools if t not in held], "meta": meta})
        out.append(example)
    return out, n


# ---------------------------------------------------------------- contamination


@dataclass
class Contamination:
    exact: dict[str, int]
    """Per eval split: examples whose exact key equals a train example's."""
    near: dict[str, int]
    """Per eval split: examples at least ``threshold`` similar to a train example (exact ones excluded)."""
    removed: dict[str, int]
    """Per eval split: contaminated examples removed (within the allowed thresholds)."""
    threshold: float | None
    sample: list[dict[str, str]] = field(default_factory=list)
    """Up to 5 contaminated pairs, for the report and error messages."""


def check_contamination(
    splits: dict[str, list[Example]],
    embedder: Embedder | None,
    *,
    threshold: float = 0.95,
    max_exact: int = 0,
    max_near_fraction: float | None = 0.02,
) -> tuple[dict[str, list[Example]], Contamination]:
    """Compare every eval split with train; remove contaminated eval examples, or raise
    :class:`DataError` when a split has more than ``max_exact`` exact repeats or a larger share
    than ``max_near_fraction`` of near-duplicates (``None`` or no ``embedder``: exact only).

    Removing rather than moving: a test example that repeats train teaches nothing new in train,
    and a zero-shot one must not enter train at all."""
    train_keys = {exact_key(e): e for e in splits["train"]}
    exact, near, removed, sample = {}, {}, {}, []
    cleaned = dict(splits)
    for name in EVAL_SPLITS:
        items = splits[name]
        hits = [Duplicate(e, train_keys[exact_key(e)]) for e in items if exact_key(e) in train_keys]
        exact_ids = {id(d.dropped) for d in hits}
        if embedder is not None and max_near_fraction is not None:
            rest = [e for e in items if id(e) not in exact_ids]
            near_hits = near_duplicates_of(rest, splits["train"], embedder, threshold)
        else:
            near_hits = []
        exact[name], near[name] = len(hits), len(near_hits)
        sample += [_pair(name, d) for d in (hits + near_hits)[: 5 - len(sample)]]
        gone = exact_ids | {id(d.dropped) for d in near_hits}
        cleaned[name] = [e for e in items if id(e) not in gone]
        removed[name] = len(gone)
    report = Contamination(exact, near, removed, threshold if max_near_fraction is not None else None, sample)
    _fail_above(splits, report, max_exact, max_near_fraction)
    return cleaned, report


def _pair(split: str, d: Duplicate) -> dict[str, str]:
    return {"split": split, "eval": d.dropped.user_text[:120], "train": d.kept.user_text[:120],
            "similarity": f"{d.similarity:.3f}"}


def _fail_above(splits: dict[str, list[Example]], report: Contamination, max_exact: int, max_near: float | None) -> None:
    problems = []
    for name in EVAL_SPLITS:
        total = len(splits[name]) or 1
        if report.exact[name] > max_exact:
            problems.append(f"{name}: {report.exact[name]} of {len(splits[name])} examples repeat a train example "
                            f"exactly (allowed: {max_exact})")
        if max_near is not None and report.near[name] / total > max_near:
            problems.append(f"{name}: {report.near[name]} of {len(splits[name])} examples "
                            f"({report.near[name] / total:.1%}) near-duplicate train at cosine >= {report.threshold} "
                            f"(allowed: {max_near:.1%})")
    if problems:
        first = report.sample[0] if report.sample else None
        example = f' First pair: eval "{first["eval"]}" ~ train "{first["train"]}".' if first else ""
        raise DataError(
            "contamination between train and evaluation splits: " + "; ".join(problems) + "." + example
            + " Fix: deduplicate the sources (keep semantic_dedup on), give near-identical requests one "
            "meta.template_id so they split together, or raise max_exact_contamination / "
            "max_near_dup_contamination if the overlap is intended."
        )

