"""Synthetic examples from a tool catalog: single calls, parallel calls, executed multi-step
chains, clarify turns and requests no tool serves.

Deterministic for a seed: every behaviour draws from its own ``random.Random`` (seeded with
``"{seed}/{behaviour}"``), the output order is a seeded shuffle, ``created_at`` is a fixed
config field, and executed chains run on a fresh copy of the servers' state; same seed and same
inputs give byte-identical JSONL (a teacher, when configured, is the exception it is allowed
to be). See ``docs/synthetic-data.md`` for the knobs and what each behaviour looks like.

Built for volume (100k examples in seconds): samplers, validators and phrasing templates are
built once per tool, examples are assembled without re-validation (:func:`_construct`) after
their arguments passed the compiled schema validator, and each distinct chain instance is executed once and
then re-phrased.
"""

from __future__ import annotations

import gc
import itertools
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tooltune.data.examples import (
    Behavior, Clarification, Example, ExpectedCall, Provenance, Quality, Source, resolve_references,
)
from tooltune.data.offtopic import CHITCHAT, UNSUPPORTED_FRAMES, UNSUPPORTED_VERBS
from tooltune.data.phrasing import (
    PARALLEL_FRAMES, PARALLEL_FRAMES_3, CuratedText, Segment, Template, ToolPhrasing, add_typos, clarify_question,
    curated_template, enum_text, phrasing_for, text_of,
)
from tooltune.data.quality import normalize_text
from tooltune.data.sampling import sampler_for
from tooltune.data.sequences import Chain, ChainRunner, Execution, ServerFactory, chains_for, fill_slots
from tooltune.data.vocabulary import DomainVocabulary
from tooltune.errors import ConfigError
from tooltune.tools.catalog import Tool, ToolCatalog, canonical_json, content_hash
from tooltune.tools.mcp_client import quiet_mcp_logs

BEHAVIORS = ("calls", "parallel", "multi_step", "clarify", "no_call")
SAME_SERVICE_DISTRACTOR = 0.7
"""Chance that each distractor comes from the target's own service (the harder choice)."""
NO_CALL_KINDS = (("withheld_tool", 0.45), ("chitchat", 0.35), ("unsupported_action", 0.20))
FIXED_CREATED_AT = datetime(2025, 6, 2, 9, 0, tzinfo=timezone.utc)
_PREFIXES = ["", "", "", "Hi! ", "Hello, ", "Quick request: ", "Hey, ", "Morning! "]
_SUFFIXES = ["", "", "", " Thanks!", " Thank you.", " Cheers.", " Appreciate it.", " asap please"]


class Mix(BaseModel):
    """Share of each behaviour in the output; the five must add up to 1."""

    model_config = ConfigDict(extra="forbid")

    calls: float = Field(0.55, ge=0, le=1, description="One call to one tool.")
    parallel: float = Field(0.10, ge=0, le=1, description="Two or three independent calls in one request.")
    multi_step: float = Field(0.10, ge=0, le=1, description="A chain whose later calls use earlier results (executed).")
    clarify: float = Field(0.10, ge=0, le=1, description="A required detail is missing: ask for it.")
    no_call: float = Field(0.15, ge=0, le=1, description="No offered tool fits: answer without calling.")


class SynthConfig(BaseModel):
    """Knobs of :func:`generate`."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(1000, ge=1, description="Number of examples to generate.")
    seed: int = Field(0, description="Seed of every random choice: same seed and inputs give identical output.")
    mix: Mix = Field(default_factory=Mix, description="Share of each behaviour.")
    typo_rate: float = Field(0.1, ge=0, le=1, description="Share of requests given one or two typos (never inside values).")
    optional_rate: float = Field(0.35, ge=0, le=1, description="Chance that each optional parameter is filled.")
    curated_rate: float = Field(0.3, ge=0, le=1, description="Share of a tool's single calls worded from its curated queries, when it has some.")
    listing: Literal["service", "sampled"] = Field(
        "service",
        description="Which tools an example offers. service: the service's own listing (every tool of the called "
        "tools' service, in catalog order: what `tooltune serve` and `tooltune chat` render for that service), and "
        "for listing_variants of the examples one of a small fixed set of variants (reversed order, the called tools "
        "only, the listing without one other tool), so most conversations share one prompt prefix (prefix-shared "
        "training reads it once per row). sampled: the called tools plus distractors_min to distractors_max random "
        "others, shuffled (nearly every example a different list).",
    )
    listing_variants: float = Field(0.25, ge=0, le=1, description="listing: service only. Share of examples offered a variant of their service's listing instead of the listing itself.")
    other_domains: float = Field(
        0.0, ge=0, le=1,
        description="Share of no_call examples offered one to four tools of other domains (the data config's "
        "other_domain_tools) instead of their own service's, beside a request none of them serves (chit-chat): "
        "the model learns to read the listing rather than call "
        "whatever is offered (BFCL irrelevance). Needs other_domain_tools.")
    distractors_min: int = Field(0, ge=0, description="listing: sampled only. Fewest extra tools offered beside the called ones.")
    distractors_max: int = Field(4, ge=0, description="listing: sampled only. Most extra tools offered (fewer when the catalog is smaller).")
    teacher_url: str | None = Field(None, description="OpenAI-compatible endpoint (base URL, e.g. http://127.0.0.1:8000/v1) that paraphrases requests.")
    teacher_model: str | None = Field(None, description="Model name sent to the teacher endpoint.")
    teacher_rate: float = Field(0.2, ge=0, le=1, description="Share of examples whose request the teacher paraphrases.")
    teacher_workers: int = Field(8, ge=1, le=64, description="Concurrent requests to the teacher.")
    chain_instances: int = Field(24, ge=1, description="Most distinct slot choices executed per chain; examples re-phrase them.")
    execute_multistep: bool = Field(True, description="Execute the caller's chains on its MCP servers; off (or no chain fits): multi_step share goes to calls.")
    data_dir: Path | None = Field(None, description="Server state to execute chains on (seeded if new; only read, writes use copies). Default: a temp dir.")
    created_at: datetime = Field(FIXED_CREATED_AT, description="Stamped on every example; fixed so output is byte-identical for a seed.")

    @model_validator(mode="after")
    def _check(self) -> SynthConfig:
        problems = []
        total = sum(getattr(self.mix, b) for b in BEHAVIORS)
        if abs(total - 1) > 1e-6:
            problems.append(f"mix: shares add up to {total:g}, not 1; adjust {', '.join(BEHAVIORS)} so they sum to 1")
        if self.distractors_min > self.distractors_max:
            problems.append(f"distractors_min ({self.distractors_min}) is above distractors_max ({self.distractors_max}); "
                            "lower the min or raise the max")
        if bool(self.teacher_url) != bool(self.teacher_model):
            problems.append("teacher_url and teacher_model go together: set both to use a teacher, or neither")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class SynthResult(BaseModel):
    """What :func:`generate` made, what it threw away and why, and counts to report."""

    examples: list[Example]
    dropped: dict[str, int] = Field(default_factory=dict, description="Reason code → examples dropped for it.")
    stats: dict[str, Any] = Field(default_factory=dict)


def generate(catalog: ToolCatalog, config: SynthConfig, *, curated: Sequence[Example] = (),
             vocabulary: DomainVocabulary | None = None, chains: Sequence[Chain] = (),
             server_factory: ServerFactory | None = None, other_domains: Sequence[Tool] = ()) -> SynthResult:
    """Generate ``config.n`` examples for ``catalog``.

    ``curated`` single-call examples become extra phrasing templates (their values swapped for
    new samples, their ``meta["negatives"]`` carried over); ``vocabulary`` words money and enum
    values the way users say them. ``chains`` are the caller's declared multi-step chains (the
    demo's are :data:`tooltune.demo.chains.CHAINS`); those whose tools are all in the catalog are
    executed on servers from ``server_factory`` (the demo's is :func:`tooltune.demo.build_server`).
    Without a chain that fits, the multi_step share goes to single calls. ``other_domains`` are
    tools never called, offered in ``config.other_domains`` of the no_call examples (carried inline:
    they are in no catalog); their names must differ from the catalog's."""
    if not len(catalog):
        raise ConfigError("synth: the catalog has no tools; discover or load a catalog first.")
    if chains and server_factory is None:
        raise ConfigError("synth: chains were given without a server_factory to execute them on; pass both "
                          "(for the demo services: tooltune.demo.chains.CHAINS and tooltune.demo.build_server).")
    if config.other_domains and not other_domains:
        raise ConfigError("synth: other_domains is above 0 but no other-domain tools were given; list catalog files in "
                          "the data config's other_domain_tools (the demo's: src/tooltune/demo/curated/other-domains.json) "
                          "or set synth.other_domains to 0.")
    clash = sorted({t.name for t in other_domains} & set(catalog.names))
    if clash:
        raise ConfigError(f"synth: other-domain tools {clash} have the names of catalog tools; an example could not "
                          "tell them apart. Drop them from the other-domain file.")
    with _collector_paused():
        return _generate(catalog, config, curated, vocabulary, chains, server_factory, list(other_domains))


def _generate(catalog: ToolCatalog, config: SynthConfig, curated: Sequence[Example], vocabulary: DomainVocabulary | None,
              chains: Sequence[Chain], server_factory: ServerFactory | None, other_domains: list[Tool]) -> SynthResult:
    started = time.perf_counter()
    gen = _Generator(catalog, config, vocabulary, other_domains)
    gen.add_curated(curated)
    counts = _counts(config)
    runnable = gen.chains(chains)
    if counts["multi_step"] and not (config.execute_multistep and runnable):
        why = "execute_multistep is off" if not config.execute_multistep else "no declared chain fits this catalog"
        gen.stats["reallocated"] = {"multi_step_to_calls": counts["multi_step"], "reason": why}
        counts["calls"] += counts.pop("multi_step")
        counts["multi_step"] = 0
    examples = gen.build("calls", counts["calls"], gen.single)
    examples += gen.build("parallel", counts["parallel"], gen.parallel)
    if counts["multi_step"]:
        examples += gen.sequences(counts["multi_step"], runnable, server_factory)
    examples += gen.build("clarify", counts["clarify"], gen.clarify)
    examples += gen.build("no_call", counts["no_call"], gen.no_call)
    if config.teacher_url:
        from tooltune.data.teacher import paraphrase

        examples = paraphrase(examples, config, gen.stats)
    random.Random(f"{config.seed}/order").shuffle(examples)
    gen.finish(examples, time.perf_counter() - started)
    return SynthResult(examples=examples, dropped=dict(sorted(gen.dropped.items())), stats=gen.stats)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while generating.

    100k examples are millions of live objects, and every full collection walks all of them to
    find nothing (examples hold no reference cycles): a quarter of the run time. Reference
    counting still frees everything as usual; the collector is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _counts(config: SynthConfig) -> dict[str, int]:
    # Largest remainder: the counts add up to n exactly, and ties go in BEHAVIORS order.
    raw = {b: config.n * getattr(config.mix, b) for b in BEHAVIORS}
    counts = {b: int(v) for b, v in raw.items()}
    for b in sorted(BEHAVIORS, key=lambda b: -(raw[b] - counts[b]))[: config.n - sum(counts.values())]:
        counts[b] += 1
    return counts


class _Generator:
    """Per-run state: the per-tool samplers and templates, counters, and the dedup set."""

    def __init__(self, catalog: ToolCatalog, config: SynthConfig, vocabulary: DomainVocabulary | None,
                 other_domains: list[Tool]):
        self.catalog = catalog
        self.other_domains = other_domains
        self.config = config
        self.vocabulary = vocabulary
        self.phrasings = {t.name: phrasing_for(sampler_for(t, vocabulary), vocabulary) for t in catalog}
        self.by_service: dict[str | None, list[str]] = {}
        self.service_of = {t.name: t.service for t in catalog}
        self.names = catalog.names
        self.tools = {t.name: t for t in catalog}
        for t in catalog:
            self.by_service.setdefault(t.service, []).append(t.name)
        self.others = {s: [n for n in self.names if self.service_of[n] != s] for s in self.by_service}
        self.with_required = [n for n in self.names if self.tools[n].required]
        self._unsupported: dict[str, list[str]] = {}
        self.catalog_hash = catalog.hash
        self.dropped: Counter[str] = Counter()
        self.stats: dict[str, Any] = {}
        self.seen: set[str] = set()
        self.no_call_kinds: Counter[str] = Counter()

    # ------------------------------------------------------------ setup

    def add_curated(self, curated: Sequence[Example]) -> None:
        used: Counter[str] = Counter()
        for ex in curated:
            # A reworded curated query can come out as the query itself: count that as a duplicate.
            self.seen.add(_dedup_key(ex))
            if ex.behavior is not Behavior.CALLS or len(ex.calls) != 1 or len(ex.messages) != 1:
                continue
            call = ex.calls[0]
            ph = self.phrasings.get(call.name)
            if ph is None:
                continue
            template = curated_template(ph, ex.user_text, call.arguments, optional=call.optional,
                                        alternatives=call.alternatives, negatives=ex.meta.get("negatives", ()),
                                        origin=ex.provenance.origin)
            if template is not None and template.id not in {t.id for t in ph.curated}:
                ph.curated.append(template)
                used[call.name] += 1
        self.stats["curated_templates"] = dict(sorted(used.items()))

    def chains(self, chains: Sequence[Chain]) -> list[Chain]:
        return chains_for(self.catalog, list(chains))

    # ------------------------------------------------------------ the loop shared by behaviours

    def build(self, behavior: str, count: int, make: Callable[[random.Random, int], Example | None]) -> list[Example]:
        """Call ``make(rng, index)`` until ``count`` new examples exist; duplicates and failed
        draws are counted in ``dropped`` and retried, up to a bound (then the shortfall is reported)."""
        rng = random.Random(f"{self.config.seed}/{behavior}")
        out: list[Example] = []
        attempts = 0
        limit = count * 4 + 200
        while len(out) < count and attempts < limit:
            attempts += 1
            example = make(rng, len(out))
            if example is None:
                continue
            if self._keep(example, behavior):
                out.append(example)
        if len(out) < count:
            self.stats.setdefault("shortfall", {})[behavior] = count - len(out)
        return out

    def _keep(self, example: Example, behavior: str) -> bool:
        key = _dedup_key(example)
        if key in self.seen:
            self.dropped[f"duplicate:{behavior}"] += 1
            return False
        self.seen.add(key)
        return True

    # ------------------------------------------------------------ pieces

    def _offered(self, rng: random.Random, called: list[str], *, exclude: Sequence[str] = (), minimum: int | None = None) -> list[str]:
        """The tools an example offers (see ``SynthConfig.listing``); ``exclude`` is never offered."""
        if self.config.listing == "service":
            return self._service_listing(rng, called, exclude)
        return self._sampled(rng, called, exclude=exclude, minimum=minimum)

    def _service_listing(self, rng: random.Random, called: list[str], exclude: Sequence[str]) -> list[str]:
        """The called tools' service listing, or for ``listing_variants`` of the calls one of its fixed
        variants: the listing reversed, the called tools alone, or the listing without one other tool.
        A fixed set, not a fresh list per example: conversations keep sharing their prefix."""
        services = {self.service_of[n] for n in called}
        listing = [n for n in self.names if self.service_of[n] in services and n not in exclude]
        if rng.random() >= self.config.listing_variants:
            return listing
        variant = rng.choice(("reversed", "called_only", "without_one"))
        if variant == "reversed":
            return listing[::-1]
        if variant == "called_only":
            return [n for n in listing if n in called]
        others = [n for n in listing if n not in called]
        if not others:
            return listing
        dropped = rng.choice(others)
        return [n for n in listing if n != dropped]

    def _sampled(self, rng: random.Random, called: list[str], *, exclude: Sequence[str] = (), minimum: int | None = None) -> list[str]:
        """The called tools plus distractors, shuffled: each distractor from the same service
        with :data:`SAME_SERVICE_DISTRACTOR`, else from another service."""
        service = self.service_of.get(called[0]) if called else None
        taken = set(called) | set(exclude)
        same = [n for n in self.by_service.get(service, []) if n not in taken]
        other = self.others[service]  # may be large: drawn by rejection, not filtered
        low = self.config.distractors_min if minimum is None else max(minimum, self.config.distractors_min)
        k = rng.randint(low, max(low, self.config.distractors_max))
        picked: list[str] = []
        for _ in range(k):
            if same and (not other or rng.random() < SAME_SERVICE_DISTRACTOR):
                pick = same.pop(rng.randrange(len(same)))
            else:
                pick = _draw_free(rng, other, taken)
            if pick is None:
                break
            taken.add(pick)
            picked.append(pick)
        tools = [*dict.fromkeys(called), *picked]
        rng.shuffle(tools)
        return tools

    def _sample(self, ph: ToolPhrasing, rng: random.Random, template: Template | None = None) -> dict[str, Any] | None:
        ct = template.curated if template is not None else None
        if ct is not None:
            args = ph.sampler.sample(rng, include=ct.include, fixed=ct.fixed)
        else:
            args = ph.sampler.sample(rng, optional_rate=self.config.optional_rate)
        if args is None:
            self.dropped[f"unsampleable:{ph.name}"] += 1
            return None
        if ct is None:
            # A value equal to the default is what leaving it out gives: treat it as left out.
            # (A curated template keeps its parameters: its text has a slot for each.)
            for p in ph.sampler.params:
                if not p.required and p.has_default and p.name in args and args[p.name] == p.default:
                    del args[p.name]
        return args

    def _expected(self, ph: ToolPhrasing, args: dict[str, Any], template: Template | None = None) -> ExpectedCall:
        optional: list[str] = []
        alternatives: dict[str, list[Any]] = {}
        for p in ph.sampler.params:
            if not p.required and p.name not in args and p.has_default:
                optional.append(p.name)
                alternatives[p.name] = [p.default]
        ct = template.curated if template is not None else None
        if ct is not None:
            optional += [o for o in ct.optional if o not in optional]
            for k, v in ct.alternatives.items():
                alternatives[k] = [*alternatives.get(k, []), *v]
        return _construct(ExpectedCall, name=ph.name, arguments=args, alternatives=alternatives, optional=optional)

    def _finish_text(self, segments: list[Segment], rng: random.Random, meta: dict[str, Any], register: str = "") -> str:
        if register == "informal":
            segments = [(t if p else t.lower(), p) for t, p in segments]
        if rng.random() < self.config.typo_rate:
            segments, made = add_typos(segments, rng, rng.choice((1, 1, 2)))
            if made:
                meta["typos"] = made
        return text_of(segments)

    def _example(self, behavior: Behavior, text: str, tools: list[str], calls: list[ExpectedCall], meta: dict[str, Any],
                 index: int, kind: str, *, clarify: Clarification | None = None, answer: str | None = None,
                 step_results: list[Any] | None = None) -> Example:
        service = self.service_of[calls[0].name] if calls else self.service_of[tools[0]] if tools else None
        meta["distractors"] = len(tools) - len({c.name for c in calls})
        provenance = _construct(
            Provenance, source=Source.SYNTHETIC, quality=Quality.MEDIUM, created_at=self.config.created_at, author=None,
            catalog_hash=self.catalog_hash, origin=f"synth:seed={self.config.seed}:{kind}:{index}")
        return _construct(
            Example, service=service, messages=[{"role": "user", "content": text}], tools=tools, inline_tools=[],
            behavior=behavior, calls=calls, step_results=step_results or [], clarify=clarify, answer=answer,
            provenance=provenance, meta=meta)

    # ------------------------------------------------------------ behaviours

    def single(self, rng: random.Random, index: int) -> Example | None:
        ph = self.phrasings[rng.choice(self.names)]
        template = rng.choice(ph.curated) if ph.curated and rng.random() < self.config.curated_rate else rng.choice(ph.templates)
        args = self._sample(ph, rng, template)
        if args is None:
            return None
        meta: dict[str, Any] = {"template_id": template.id, "register": template.register}
        if template.curated is not None:
            meta["curated_origin"] = template.curated.origin
            if template.curated.negatives:
                meta["negatives"] = _rebased(template.curated, args)
        text = self._finish_text(ph.render(template, args, rng), rng, meta, template.register)
        call = self._expected(ph, args, template)
        return self._example(Behavior.CALLS, text, self._offered(rng, [ph.name]), [call], meta, index, "calls")

    def parallel(self, rng: random.Random, index: int) -> Example | None:
        first = rng.choice(self.names)
        size = 3 if rng.random() < 0.25 else 2
        if rng.random() < 0.4:
            names = [first] * size
        else:
            pool = [n for n in self.by_service.get(self.service_of[first], []) if n != first]
            if rng.random() < 0.2 or not pool:
                pool = [n for n in self.names if n != first]
            if not pool:
                names = [first] * size
            else:
                names = [first, *rng.sample(pool, min(size - 1, len(pool)))]
        calls, clauses, ids = [], [], []
        for i, name in enumerate(names):
            ph = self.phrasings[name]
            template = rng.choice(ph.sentences)
            args = self._sample(ph, rng)
            if args is None:
                return None
            call = self._expected(ph, args)
            if any(c.name == call.name and c.arguments == call.arguments for c in calls):
                self.dropped["parallel_repeat"] += 1
                return None
            if i and name == names[i - 1] and rng.random() < 0.5:
                clause = [(rng.choice(["the same", "do the same", "the same thing"]), False),
                          *ph.clause(template, args, rng, action=False)]
            else:
                clause = ph.clause(template, args, rng)
            calls.append(call)
            clauses.append(clause)
            ids.append(template.id)
        frame = rng.choice(PARALLEL_FRAMES_3 if len(clauses) == 3 else PARALLEL_FRAMES)
        segments = _join_clauses(frame, clauses)
        meta: dict[str, Any] = {"template_id": f"parallel/{content_hash([frame, *ids], 10)}"}
        text = self._finish_text(segments, rng, meta, "informal" if frame[0].islower() else "")
        return self._example(Behavior.CALLS, text, self._offered(rng, names), calls, meta, index, "parallel")

    def clarify(self, rng: random.Random, index: int) -> Example | None:
        candidates = self.with_required
        if not candidates:
            self.dropped["clarify_no_required_params"] += 1
            return None
        ph = self.phrasings[rng.choice(candidates)]
        required = [p.name for p in ph.sampler.params if p.required]
        missing = rng.sample(required, 2 if len(required) > 1 and rng.random() < 0.2 else 1)
        template = rng.choice(ph.sentences)
        if set(template.slots) & set(missing):  # the action itself names a missing value
            template = rng.choice([t for t in ph.sentences if not set(t.slots) & set(missing)])
        args = self._sample(ph, rng)
        if args is None:
            return None
        if len(missing) == 1:
            question = clarify_question(ph, missing[0], rng)
        else:
            labels = [ph.params[m].label for m in missing]
            question = rng.choice(["Could you tell me the {a} and the {b}?", "Sure. What {a} and which {b} should I use?"]) \
                .format(a=labels[0], b=labels[1])
        meta: dict[str, Any] = {"template_id": template.id, "register": template.register, "tool": ph.name}
        text = self._finish_text(_wrapped(ph.render(template, args, rng, hide=missing), rng), rng, meta, template.register)
        return self._example(Behavior.CLARIFY, text, self._offered(rng, [ph.name]), [], meta, index, "clarify",
                             clarify=_construct(Clarification, question=question, missing=missing), answer=question)

    def no_call(self, rng: random.Random, index: int) -> Example | None:
        # Drawn only when other domains are on, so that a config without them keeps its examples.
        if self.config.other_domains and rng.random() < self.config.other_domains:
            kind = "other_domain"
        else:
            roll = rng.random()
            kind = "chitchat"
            for name, share in NO_CALL_KINDS:
                if roll < share:
                    kind = name
                    break
                roll -= share
        example = getattr(self, f"_{kind}")(rng, index)
        if example is not None:
            example.meta["no_call_kind"] = kind
            self.no_call_kinds[kind] += 1
        return example

    def _chitchat(self, rng: random.Random, index: int) -> Example:
        prompt, answer = rng.choice(CHITCHAT)
        meta: dict[str, Any] = {"template_id": f"chitchat/{content_hash(prompt, 8)}"}
        text = self._finish_text(_wrapped([(prompt, False)], rng), rng, meta)
        anchor = rng.choice(self.names)
        return self._example(Behavior.NO_CALL, text, self._offered(rng, [anchor], minimum=1), [], meta, index, "no_call",
                             answer=answer)

    def _withheld_tool(self, rng: random.Random, index: int) -> Example | None:
        ph = self.phrasings[rng.choice(self.names)]
        service = self.service_of[ph.name]
        # Tools about the same object (get_orders for get_latest_order) might do the job in a
        # pinch, so they are not offered: the request must be clearly out of reach.
        near = [n for n in self.by_service.get(service, []) if _head(self.phrasings[n].noun) == _head(ph.noun)]
        offered = [n for n in self.by_service.get(service, []) if n not in near]
        if not offered:
            offered = [n for n in self.names if n not in near]
        if not offered:
            self.dropped["no_call_nothing_to_offer"] += 1
            return None
        template = rng.choice(ph.sentences)
        args = self._sample(ph, rng)
        if args is None:
            return None
        meta: dict[str, Any] = {"template_id": template.id, "register": template.register, "withheld_tool": ph.name}
        text = self._finish_text(_wrapped(ph.render(template, args, rng), rng), rng, meta, template.register)
        anchor = rng.choice(offered)
        tools = self._offered(rng, [anchor], exclude=near)
        answer = f"I can't {ph.templates[0].action} with the tools I have here."
        return self._example(Behavior.NO_CALL, text, tools, [], meta, index, "no_call", answer=answer)

    def _other_domain(self, rng: random.Random, index: int) -> Example:
        """One to four tools of other domains beside chit-chat, under the chit-chat template ids.

        Chit-chat only: a request for one of the catalog's own tools beside other domains' tools
        (answered "I can't …") taught the small demo model to refuse shop requests its own listing
        serves (chains 30% → 10% in the ablation, docs/training.md)."""
        offered = rng.sample(self.other_domains, min(len(self.other_domains), rng.randint(1, 4)))
        prompt, answer = rng.choice(CHITCHAT)
        meta: dict[str, Any] = {"template_id": f"chitchat/{content_hash(prompt, 8)}"}
        text = self._finish_text(_wrapped([(prompt, False)], rng), rng, meta)
        example = self._example(Behavior.NO_CALL, text, [], [], meta, index, "no_call", answer=answer)
        example.meta["distractors"] = len(offered)
        return example.model_copy(update={
            "tools": [t.name for t in offered],
            "inline_tools": [t.model_dump(include={"name", "description", "parameters"}) for t in offered]})

    def _unsupported_action(self, rng: random.Random, index: int) -> Example | None:
        ph = self.phrasings[rng.choice(self.names)]
        noun = _head(ph.noun)
        service = self.service_of[ph.name]
        if noun not in self._unsupported:
            self._unsupported[noun] = [v for v in UNSUPPORTED_VERBS if not any(
                v in n.split("_") and noun in _head(self.phrasings[n].noun) for n in self.names)]
        verbs = self._unsupported[noun]
        if not verbs or not noun:
            self.dropped["no_call_no_unsupported_verb"] += 1
            return None
        verb = rng.choice(verbs)
        frame = rng.choice(UNSUPPORTED_FRAMES)
        nouns = noun if noun.endswith("s") else noun + "s"
        prompt = frame.format(verb=verb, Verb=verb.capitalize(), noun=noun, nouns=nouns)
        meta: dict[str, Any] = {"template_id": f"unsupported/{content_hash([verb, frame], 8)}"}
        text = self._finish_text(_wrapped([(prompt, False)], rng), rng, meta)
        anchor = rng.choice(self.by_service.get(service) or self.names)
        tools = self._offered(rng, [anchor], minimum=1)
        answer = f"Sorry, I can't {verb} {nouns}: none of the available tools does that."
        return self._example(Behavior.NO_CALL, text, tools, [], meta, index, "no_call", answer=answer)

    # ------------------------------------------------------------ multi-step

    def sequences(self, count: int, chains: list[Chain], factory: ServerFactory) -> list[Example]:
        with quiet_mcp_logs():
            return anyio.run(self._sequences, count, chains, factory)

    async def _sequences(self, count: int, chains: list[Chain], factory: ServerFactory) -> list[Example]:
        rng = random.Random(f"{self.config.seed}/multi_step")
        pools = {c.id: _instances(c, rng, self.config.chain_instances) for c in chains}
        cache: dict[tuple[str, int], Execution] = {}
        executed = failed = 0
        out: list[Example] = []
        attempts = 0
        async with ChainRunner(self.catalog, factory, self.config.data_dir) as runner:
            while len(out) < count and attempts < count * 4 + 200:
                attempts += 1
                live = [c for c in chains if pools[c.id]]
                if not live:
                    break
                # Weighted by instances left: a chain with few working instances (pay the latest
                # order: most are already paid) would otherwise repeat the same few requests.
                chain = rng.choices(live, weights=[len(pools[c.id]) for c in live])[0]
                pool = pools[chain.id]
                pick = rng.randrange(len(pool))
                slots = pool[pick]
                key = (chain.id, _slot_key(slots))
                if key not in cache:
                    cache[key] = await runner.run(chain, slots)
                    executed += 1
                execution = cache[key]
                if not execution.ok:
                    # Failed on the real server: drop it once, and never draw it again.
                    failed += 1
                    self.dropped[execution.failure or "chain_failed"] += 1
                    pool.pop(pick)
                    continue
                example = self._sequence_example(rng, chain, slots, execution, len(out))
                if self._keep(example, "multi_step"):
                    out.append(example)
        self.stats["chains"] = {"instances_executed": executed, "instances_failed": failed,
                                "chains": sorted(c.id for c in chains)}
        if len(out) < count:
            self.stats.setdefault("shortfall", {})["multi_step"] = count - len(out)
        return out

    def _sequence_example(self, rng: random.Random, chain: Chain, slots: dict[str, Any], execution: Execution,
                          index: int) -> Example:
        request = rng.choice(chain.requests)
        segments: list[Segment] = []
        for piece in _split_slots(request):
            if piece.startswith("{") and piece[1:-1] in slots:
                name = piece[1:-1]
                segments.append((self._slot_text(chain, name, slots[name], rng), True))
            elif piece:
                segments.append((piece, False))
        segments = _wrapped(segments, rng)
        meta: dict[str, Any] = {"template_id": f"chain/{chain.id}/{content_hash(request, 8)}", "chain": chain.id}
        text = self._finish_text(segments, rng, meta)
        calls = []
        for step, sent in zip(chain.steps, execution.arguments):
            tool = self.tools[step.tool]
            args = fill_slots(step.arguments, slots)
            optional = [p for p in args if p not in tool.required and "default" in tool.properties[p]
                        and sent.get(p) == tool.properties[p]["default"]]
            calls.append(_construct(ExpectedCall, name=step.tool, arguments=args, alternatives={}, optional=optional))
        answer = _chain_answer(chain, slots, execution)
        return self._example(Behavior.SEQUENCE, text, self._offered(rng, chain.tools), calls, meta, index, "multi_step",
                             answer=answer, step_results=list(execution.results))

    def _slot_text(self, chain: Chain, name: str, value: Any, rng: random.Random) -> str:
        target = chain.slot_params.get(name)
        if target:
            tool, _, param = target.rpartition(".")
            phrases = self.vocabulary.phrases_for(tool, param, value) if self.vocabulary else []
            return enum_text(value, phrases, rng, one_word=True)
        return str(value)

    # ------------------------------------------------------------ report

    def finish(self, examples: list[Example], seconds: float) -> None:
        by_behavior = Counter(e.behavior.value for e in examples)
        distractors = Counter(e.meta.get("distractors", 0) for e in examples)
        templates = {name: len(ph.templates) + len(ph.curated) for name, ph in self.phrasings.items()}
        self.stats.update({
            "examples": len(examples),
            "by_behavior": dict(sorted(by_behavior.items())),
            "by_category": dict(sorted(Counter(e.category.value for e in examples).items())),
            "no_call_kinds": dict(sorted(self.no_call_kinds.items())),
            "distractors": {str(k): v for k, v in sorted(distractors.items())},
            "templates_per_tool": dict(sorted(templates.items())),
            "templates_used": len({e.meta.get("template_id") for e in examples}),
            "with_typos": sum(1 for e in examples if "typos" in e.meta),
            "from_curated_templates": sum(1 for e in examples if "curated_origin" in e.meta),
            "seconds": round(seconds, 3),
        })


def _draw_free(rng: random.Random, pool: list[str], taken: set[str]) -> str | None:
    for _ in range(8):
        pick = rng.choice(pool) if pool else None
        if pick is None or pick not in taken:
            return pick
    return next((n for n in pool if n not in taken), None)


def _wrapped(segments: list[Segment], rng: random.Random) -> list[Segment]:
    """A greeting before and thanks after, sometimes: variety for fixed requests, which are
    not new templates (the template id stays the request's)."""
    prefix, suffix = rng.choice(_PREFIXES), rng.choice(_SUFFIXES)
    if prefix and segments and not segments[0][1]:
        segments = [(segments[0][0][:1].lower() + segments[0][0][1:] if prefix.endswith(", ") else segments[0][0], False),
                    *segments[1:]]
    return [(prefix, False), *segments, (suffix, False)]


def _head(noun: str) -> str:
    word = noun.split()[-1] if noun else ""
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


_M = TypeVar("_M", bound=BaseModel)


def _construct(cls: type[_M], **values: Any) -> _M:
    """``cls.model_construct(**values)`` for callers that give every field, already valid.

    ``model_construct`` walks every field to fill defaults and track which were set; with all
    fields given, that walk is a third of the cost of building 100k examples. This sets what it
    would have set: the instance dict and pydantic's three instance slots.
    ``tests/data/test_synth.py`` round-trips every example through JSON and compares."""
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def _dedup_key(example: Example) -> str:
    """:func:`tooltune.data.quality.exact_key` without its hash (a set of strings needs none):
    the same normalized text, behaviour and canonical calls, so the pipeline's exact dedup finds
    nothing left to drop. ``tests/data/test_synth.py`` checks the two agree."""
    calls = [canonical_json({"name": c.name, "arguments": c.arguments}) for c in example.calls]
    if example.behavior is not Behavior.SEQUENCE:
        calls.sort()
    return "\x1f".join([normalize_text(example.messages[-1]["content"]), example.behavior.value, *calls])


def _instances(chain: Chain, rng: random.Random, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` slot choices of ``chain``, a seeded sample of all combinations."""
    combos = list(itertools.product(*chain.slots.values()))
    if len(combos) > limit:
        combos = rng.sample(combos, limit)
    return [dict(zip(chain.slots, combo)) for combo in combos]


def _slot_key(slots: dict[str, Any]) -> str:
    return content_hash(slots, 12)


def _split_slots(text: str) -> list[str]:
    return re.split(r"(\{[a-z_][a-z0-9_]*\})", text)


def _join_clauses(frame: str, clauses: list[list[Segment]]) -> list[Segment]:
    out: list[Segment] = []
    for piece in re.split(r"(\{c[123]\})", frame):
        if piece in ("{c1}", "{c2}", "{c3}"):
            clause = clauses[int(piece[2]) - 1]
            if not out and clause and not clause[0][1]:
                clause = [(clause[0][0][:1].upper() + clause[0][0][1:], False), *clause[1:]]
            out += clause
        elif piece:
            out.append((piece, False))
    return out


def _chain_answer(chain: Chain, slots: dict[str, Any], execution: Execution) -> str | None:
    if not chain.answer:
        return None
    text = _split_slots(chain.answer)
    filled = "".join(str(slots[p[1:-1]]) if p.startswith("{") and p[1:-1] in slots else p for p in text)
    return str(resolve_references(filled, execution.results, len(execution.results)))


def _rebased(ct: CuratedText, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The curated example's negatives moved onto the new arguments: a mistake's wrong values
    stay, the values it shared with the curated call take the new ones."""
    out = []
    for negative in ct.negatives:
        neg = dict(negative)
        if neg.get("name") == ct.tool and isinstance(neg.get("arguments"), dict):
            wrong = {k: v for k, v in neg["arguments"].items() if k not in ct.curated_args or ct.curated_args[k] != v}
            neg["arguments"] = {**args, **wrong}
        out.append(neg)
    return out
