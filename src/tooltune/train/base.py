"""The offline base model: a tiny Llama pretrained from scratch on synthetic tool calling.

No model hub is reachable offline and no Python package ships a causal LM, so tooltune owns a
small base for its demo and its offline tests of the pipeline. :func:`build_base` is its
reproducible recipe (``tooltune base build``); docs/base-model.md explains the choices.

1. **Tools**: :func:`~tooltune.train.tool_universe.tool_universe` (seeded; ~300 tools, ~50
   domains; never the demo services' tools).
2. **Corpus**: :func:`tooltune.data.synth.generate` over that universe, rich in ``no_call`` and
   ``clarify`` turns and parallel calls, each example offering a few tools (distractors
   included); split with :func:`tooltune.data.split.split_examples` into train, val, held-out
   phrasings of seen tools and held-out tools (see :data:`EVAL_SPLITS`).
3. **Tokenizer and template**: :mod:`tooltune.train.base_chat` (byte-level BPE with single-digit
   tokens; compact tool signatures; pythonic calls).
4. **Model**: a ``LlamaConfig`` from :data:`SIZES`, randomly initialised with the seed and saved,
   then trained as the ``base_model`` of tooltune's own :func:`~tooltune.train.train`
   (``method: full``, packing, high learning rate) for ``max_steps`` or a time budget.
5. **Card**: greedy exact-match accuracy per split (:mod:`tooltune.train.greedy_eval`), written
   with the weights, tokenizer and ``build.json`` into ``output_dir``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tooltune.data.examples import Behavior, Example, target_messages, write_jsonl
from tooltune.runtime.names import PACKAGED_BASE_DIR
from tooltune.tools.catalog import ToolCatalog

logger = logging.getLogger(__name__)

BUILD_INFO = "build.json"
CARD = "README.md"

Size = Literal["micro", "tiny", "small", "medium"]


@dataclass(frozen=True)
class ModelSize:
    hidden: int
    layers: int
    heads: int
    intermediate: int


SIZES: dict[str, ModelSize] = {
    "micro": ModelSize(hidden=64, layers=2, heads=2, intermediate=192),  # ~0.3M: tests and smoke builds
    "tiny": ModelSize(hidden=128, layers=4, heads=4, intermediate=384),  # ~1.2M: the committed base
    "small": ModelSize(hidden=256, layers=6, heads=8, intermediate=640),  # ~5M
    "medium": ModelSize(hidden=384, layers=8, heads=6, intermediate=1024),  # ~15M
}
"""Model shapes by ``--size``. Measured on a 2-core CPU, the 1M model trains at ~9,500 tokens/s,
5M at ~3,200 and 15M at ~1,300: in an hour's budget the smallest learns the most."""

EVAL_SPLITS = ("new_phrasing", "seen_phrasing", "unseen_tools", "irrelevance", "clarify")
"""What the card measures: calls to seen tools worded by held-out templates (new_phrasing) and
by trained templates with new values (seen_phrasing); calls to tools never offered in training
(unseen_tools); requests no offered tool serves (irrelevance); requests missing a required
detail (clarify)."""


class BaseBuildConfig(BaseModel):
    """Everything :func:`build_base` needs; every field has a default."""

    model_config = ConfigDict(extra="forbid")

    size: Size = Field("tiny", description="Model shape: micro (~0.3M params), tiny (~1.2M), small (~5M), medium (~15M).")
    seed: int = Field(0, description="Seed of the tool universe, the corpus, the splits, the weight init and training.")
    n_examples: int = Field(100_000, ge=50, description="Synthetic examples generated (before splitting).")
    minutes: float | None = Field(
        60.0, gt=0, description="Training-time budget; converted to a step count by timing a few steps first.")
    max_steps: int | None = Field(None, gt=0, description="Optimizer steps to train; overrides minutes.")
    output_dir: Path | None = Field(None, description="Where the model is written; default: the packaged tooltune/base_model/.")
    threads: int | None = Field(None, gt=0, description="torch CPU threads during the build; default: torch's own choice.")
    learning_rate: float = Field(2e-3, gt=0, description="Peak learning rate (cosine decay, 2% warmup).")
    batch_size: int = Field(
        8, gt=0, description="Packed rows of max_length tokens per optimizer step (one row per forward pass, accumulated).")
    max_length: int = Field(512, ge=128, description="Packed row length in tokens; longer examples are skipped.")
    vocab_size: int = Field(3072, ge=300, description="BPE vocabulary size, special tokens included.")
    eval_examples: int = Field(200, ge=1, description="Examples per evaluation split on the model card.")
    work_dir: Path | None = Field(
        None, description="Keep the corpus, the initial weights and the training run here (a rebuild replaces them); "
        "default: a temp dir, removed.")

    @model_validator(mode="after")
    def _needs_a_budget(self) -> BaseBuildConfig:
        if self.minutes is None and self.max_steps is None:
            raise ValueError("set minutes (a training-time budget) or max_steps; both are unset")
        return self

    @property
    def resolved_output_dir(self) -> Path:
        return self.output_dir if self.output_dir is not None else PACKAGED_BASE_DIR


def base_config_markdown() -> str:
    """A Markdown table of the BaseBuildConfig fields (docs/base-model.md; a test checks it)."""
    rows = ["| field | default | description |", "|---|---|---|"]
    for name, info in BaseBuildConfig.model_fields.items():
        default = info.get_default()
        rows.append(f"| `{name}` | {'null' if default is None else f'`{default}`'} | {info.description} |")
    return "\n".join(rows)


class BaseBuildResult(BaseModel):
    """What :func:`build_base` produced."""

    output_dir: Path = Field(description="The model directory (weights, tokenizer, README.md, build.json).")
    parameters: int = Field(description="Trainable parameters (embeddings tied with the output head).")
    tools: int = Field(description="Tools in the universe; held_out_tools of them never offered in training.")
    held_out_tools: int
    train_examples: int
    steps: int = Field(description="Optimizer steps trained.")
    train_tokens: int = Field(description="Tokens of the training set (one pass); steps x rows x length were processed.")
    train_seconds: float = Field(description="Wall time of the training loop (trainer runtime).")
    tokens_per_s: float = Field(description="Mean training throughput, input tokens per second (from metrics.jsonl).")
    train_loss: float | None = None
    eval_loss: float | None = None
    accuracy: dict[str, float] = Field(description="Greedy exact-match accuracy per EVAL_SPLITS entry.")
    build_seconds: float = Field(description="Wall time of the whole build.")


# ---------------------------------------------------------------- corpus


@dataclass
class BaseCorpus:
    """The universe, its examples by split (train, val and :data:`EVAL_SPLITS`), the held-out tools."""

    catalog: ToolCatalog
    splits: dict[str, list[Example]]
    held_out_tools: list[str]
    synth_stats: dict[str, Any]


def base_corpus(seed: int = 0, n_examples: int = 100_000, eval_examples: int = 200, *, max_val: int = 300) -> BaseCorpus:
    """Generate and split the base corpus; deterministic for ``(seed, n_examples)``."""
    from tooltune.data.config import DataConfig
    from tooltune.data.split import split_examples
    from tooltune.data.synth import Mix, SynthConfig, generate
    from tooltune.train.tool_universe import tool_universe

    catalog = tool_universe(seed)
    synth = SynthConfig(
        n=n_examples, seed=seed, execute_multistep=False,
        # The base corpus teaches reading any listing, so each example gets its own sampled one.
        listing="sampled", distractors_min=1, distractors_max=4,
        # No-call and clarify turns get 40%: a model that only learned to call scores 0% on irrelevance.
        mix=Mix(calls=0.48, parallel=0.12, multi_step=0.0, clarify=0.15, no_call=0.25),
    )
    result = generate(catalog, synth)
    data = DataConfig(seed=seed, zero_shot_fraction=0.1, phrasing_fraction=0.1, val_fraction=0.01, holdout_fraction=0.04)
    split_result = split_examples(result.examples, catalog, data)
    split = split_result.splits

    def calls(examples: list[Example]) -> list[Example]:
        return [e for e in examples if e.behavior is Behavior.CALLS]

    unseen_pool = split["holdout"] + split["test_phrasing"]  # never trained on
    eval_pools = {
        "new_phrasing": calls(split["test_phrasing"]),
        "seen_phrasing": calls(split["holdout"]),
        "unseen_tools": calls(split["test_zero_shot"]),
        "irrelevance": [e for e in unseen_pool if e.behavior is Behavior.NO_CALL],
        "clarify": [e for e in unseen_pool if e.behavior is Behavior.CLARIFY],
    }
    splits = {"train": split["train"], "val": _sample(split["val"], max_val)}
    splits.update({name: _sample(pool, eval_examples) for name, pool in eval_pools.items()})
    stats = {k: v for k, v in result.stats.items() if k in ("examples", "by_behavior", "by_category", "no_call_kinds")}
    return BaseCorpus(catalog, splits, split_result.held_out_tools, stats)


def _sample(examples: list[Example], n: int) -> list[Example]:
    # Ids are content hashes: sorting by them is a fixed pseudo-random order.
    return sorted(examples, key=lambda e: e.id)[:n]


# ---------------------------------------------------------------- build


def build_base(config: BaseBuildConfig, *, progress: bool = False) -> BaseBuildResult:
    """Build the base model described by ``config`` into its output dir (see the module doc).

    Files in ``output_dir`` with the same names are replaced. ``progress`` shows the trainer's
    progress bar on stderr.
    """
    import torch

    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    work = Path(tempfile.mkdtemp(prefix="tooltune-base-")) if config.work_dir is None else Path(config.work_dir)
    try:
        return _build(config, work, started, progress=progress)
    finally:
        torch.set_num_threads(previous_threads)
        if config.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def _build(config: BaseBuildConfig, work: Path, started: float, *, progress: bool) -> BaseBuildResult:
    import torch

    from tooltune.train import TrainConfig, train
    from tooltune.train.greedy_eval import evaluate_splits

    logger.info("base build: generating the corpus (%d examples, seed %d)", config.n_examples, config.seed)
    corpus = base_corpus(config.seed, config.n_examples, config.eval_examples)
    data_dir = work / "data"
    write_jsonl(corpus.splits["train"], data_dir / "train.jsonl")
    write_jsonl(corpus.splits["val"], data_dir / "val.jsonl")
    corpus.catalog.save(data_dir / "catalog.json")

    logger.info("base build: training the tokenizer")
    tokenizer = _train_tokenizer(corpus, config)
    init_dir = work / "init"
    torch.manual_seed(config.seed)
    model = init_model(config.size, tokenizer)
    model.save_pretrained(init_dir)
    tokenizer.save_pretrained(init_dir)
    parameters = sum(p.numel() for p in model.parameters())

    shutil.rmtree(work / "run", ignore_errors=True)  # a rebuild in the same work_dir starts over
    steps = config.max_steps or steps_for_minutes(
        model, config.minutes, rows=config.batch_size, length=config.max_length)  # type: ignore[arg-type]
    del model
    train_config = TrainConfig(
        base_model=str(init_dir), method="full", data_dir=data_dir, output_dir=work / "run",
        max_length=config.max_length, packing=True, learning_rate=config.learning_rate, max_steps=steps,
        # One packed row per forward: TRL's padding-free collator concatenates a batch into one
        # sequence, and attention over batch x max_length positions costs ~4x more on a CPU.
        batch_size=1, grad_accum=config.batch_size, warmup_ratio=0.02, gradient_checkpointing=False, seed=config.seed,
        eval_steps=max(1, steps // 10), early_stopping_patience=None, save_steps=steps, save_total_limit=1,
        logging_steps=max(1, min(50, steps // 20)),
        # fp32 on every machine: the card's pinned command rebuilds the same weights anywhere, which
        # precision: auto (bf16 on an AMX CPU, fp32 elsewhere) would not.
        precision="fp32",
    )
    logger.info("base build: training %s (%d parameters) for %d steps", config.size, parameters, steps)
    run = train(train_config, progress=progress)
    trained = run.trained_model

    logger.info("base build: evaluating")
    eval_splits = {name: corpus.splits[name] for name in EVAL_SPLITS}
    scores = evaluate_splits(trained, tokenizer, eval_splits, corpus.catalog)

    out = config.resolved_output_dir
    out.mkdir(parents=True, exist_ok=True)
    trained.config.use_cache = True  # training turned it off; generation wants the KV cache
    trained.generation_config.eos_token_id = tokenizer.eos_token_id
    trained.generation_config.pad_token_id = tokenizer.pad_token_id
    trained.save_pretrained(out)
    tokenizer.save_pretrained(out)

    manifest = json.loads(run.manifest_path.read_text())
    metrics = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rates = [m["tokens_per_s"] for m in metrics if m.get("tokens_per_s")]
    result = BaseBuildResult(
        output_dir=out, parameters=parameters, tools=len(corpus.catalog), held_out_tools=len(corpus.held_out_tools),
        train_examples=manifest["data"]["train"]["trained_examples"], steps=run.global_step,
        train_tokens=manifest["data"]["train"]["tokens"], train_seconds=round(run.metrics.get("train_runtime", 0.0), 1),
        tokens_per_s=round(sum(rates) / len(rates), 1) if rates else 0.0,
        train_loss=run.metrics.get("train_loss"), eval_loss=run.metrics.get("eval_loss"),
        accuracy={name: round(score.accuracy, 4) for name, score in scores.items()},
        build_seconds=round(time.perf_counter() - started, 1),
    )
    info = {
        "config": config.model_dump(mode="json", exclude={"output_dir", "work_dir"}),
        "result": result.model_dump(mode="json", exclude={"output_dir"}),
        "corpus": {"splits": {k: len(v) for k, v in corpus.splits.items()}, "synth": corpus.synth_stats,
                   "catalog_hash": corpus.catalog.hash, "held_out_tools": corpus.held_out_tools},
        "evaluation": {name: score.model_dump() for name, score in scores.items()},
        "training": {"manifest": {k: manifest.get(k) for k in ("data", "training", "metrics", "versions", "git")}},
    }
    (out / BUILD_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    (out / CARD).write_text(model_card(config, result, info, corpus, tokenizer))
    return result


def _train_tokenizer(corpus: BaseCorpus, config: BaseBuildConfig, *, limit: int = 20_000) -> Any:
    from tooltune.formats.chat import render_chat
    from tooltune.train.base_chat import base_tokenizer, train_tokenizer

    renderer = base_tokenizer()
    examples = corpus.splits["train"][:limit]
    texts = (render_chat(renderer, target_messages(e), e.offered_tools(corpus.catalog)) for e in examples)
    return train_tokenizer(texts, config.vocab_size)


def init_model(size: Size, tokenizer: Any) -> Any:
    """A randomly initialised Llama of ``size`` for ``tokenizer`` (seed torch first)."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    shape = SIZES[size]
    llama = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=shape.hidden, intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers, num_attention_heads=shape.heads, num_key_value_heads=shape.heads,
        max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return AutoModelForCausalLM.from_config(llama)


def steps_for_minutes(model: Any, minutes: float, *, rows: int, length: int, timed: int = 3) -> int:
    """Optimizer steps of ``rows`` packed rows of ``length`` tokens that fit in ``minutes``: time
    a few steps (forward and backward per row, then AdamW) and keep 15% for the trainer's own
    overhead, logging and evaluation (a smoke build's loop took 14% longer than the raw steps)."""
    import torch

    ids = torch.randint(0, model.config.vocab_size, (1, length), generator=torch.Generator().manual_seed(0))
    # Three examples packed per row, as TRL's padding-free rows are: a block-diagonal mask.
    third = length // 3
    positions = torch.cat([torch.arange(third), torch.arange(third), torch.arange(length - 2 * third)])[None]
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    was_training = model.training
    model.train()

    def step() -> None:
        for _ in range(rows):
            model(input_ids=ids, position_ids=positions, labels=ids, use_cache=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    try:
        step()  # warm-up: allocations, kernel selection
        begin = time.perf_counter()
        for _ in range(timed):
            step()
        seconds = (time.perf_counter() - begin) / timed
    finally:
        model.train(was_training)
    steps = max(1, int(minutes * 60 * 0.85 / seconds))
    logger.info("%.2f s/step (%.0f tokens/s) -> %d steps in %.1f minutes", seconds, rows * length / seconds, steps, minutes)
    return steps


# ---------------------------------------------------------------- model card


def build_command(config: BaseBuildConfig) -> str:
    """The ``tooltune base build`` command line that rebuilds ``config``."""
    parts = ["tooltune base build", f"--size {config.size}", f"--seed {config.seed}", f"--examples {config.n_examples}"]
    parts.append(f"--max-steps {config.max_steps}" if config.max_steps else f"--minutes {config.minutes:g}")
    defaults = BaseBuildConfig()
    for name in ("learning_rate", "batch_size", "max_length", "vocab_size", "eval_examples"):
        if getattr(config, name) != getattr(defaults, name):
            parts.append(f"--{name.replace('_', '-')} {getattr(config, name)}")
    if config.threads:
        parts.append(f"--threads {config.threads}")
    if config.output_dir is not None:
        parts.append(f"-o {config.output_dir}")
    return " ".join(parts)


_SPLIT_TEXT = {
    "new_phrasing": "seen tools, held-out phrasings",
    "seen_phrasing": "seen tools, trained phrasings, new values",
    "unseen_tools": "tools never offered in training",
    "irrelevance": "no offered tool fits: answer without a call",
    "clarify": "a required detail is missing: ask, do not call",
}


def reproduce_command(config: BaseBuildConfig, result: BaseBuildResult) -> str:
    """The command that rebuilds these weights: a time budget became a step count on the
    building machine, so the card pins the steps."""
    return build_command(config.model_copy(update={"max_steps": result.steps, "output_dir": None}))


def _budget_note(config: BaseBuildConfig) -> str:
    if config.max_steps:
        return ""
    return (f"\n(Built as `{build_command(config.model_copy(update={'output_dir': None}))}`: the {config.minutes:g}-minute "
            "budget was converted to the step count above by timing a few steps on the building machine.)\n")


def model_card(config: BaseBuildConfig, result: BaseBuildResult, info: dict[str, Any], corpus: BaseCorpus,
               tokenizer: Any) -> str:
    """The README.md written next to the weights."""
    from tooltune.formats.chat import render_chat

    example = corpus.splits["new_phrasing"][0] if corpus.splits["new_phrasing"] else corpus.splits["train"][0]
    shown = render_chat(tokenizer, target_messages(example), example.offered_tools(corpus.catalog))
    shape = SIZES[config.size]
    evaluation = info["evaluation"]
    rows = "\n".join(
        f"| {name} | {_SPLIT_TEXT[name]} | {evaluation[name]['examples']} | {100 * evaluation[name]['accuracy']:.1f}% |"
        for name in EVAL_SPLITS)
    versions = info["training"]["manifest"].get("versions") or {}
    return f"""# tooltune offline base model ({config.size})

A {result.parameters / 1e6:.2f}M-parameter Llama trained **from scratch** by tooltune on synthetic
tool calling, so that the demo and the pipeline run with no model hub and no download. It reads a
compact tool listing and answers with a pythonic call list, a clarifying question, or a short
plain reply. Rebuild it with:

```console
$ {reproduce_command(config, result)}
```
{_budget_note(config)}
## What it is, and what it is not

- It **is** a starting point for fine-tuning on a small tool catalog (`method: full`, a few
  minutes on a CPU): it already knows the chat format, the call syntax, copying ids, numbers and
  enum values from a request into arguments, and declining when no offered tool fits.
- It is **not** a language model in any general sense: it has seen only synthetic requests about
  {result.tools} made-up tools, no prose, no world knowledge. Outside that it produces nonsense.
- It is **not** a benchmark result: the numbers below are on its own synthetic distribution.

## Model

| | |
|---|---|
| architecture | LlamaForCausalLM, hidden {shape.hidden}, {shape.layers} layers, {shape.heads} heads, MLP {shape.intermediate}, tied embeddings |
| parameters | {result.parameters:,} |
| tokenizer | byte-level BPE, {len(tokenizer)} tokens, digits split into single tokens |
| context | trained on packed rows of {config.max_length} tokens |
| call format | `pythonic` (`[f(a=1), g(b="x")]`), detected by `tooltune.formats.chat.chat_setup` |

## Data

{result.tools} tools in {len(corpus.catalog.services)} domains (`tooltune.train.tool_universe`, seed {config.seed}),
{result.held_out_tools} of them held out of training. {config.n_examples:,} synthetic examples
(`tooltune.data.synth`): {json.dumps(info["corpus"]["synth"].get("by_behavior", {}))}; each offers 1–5 tools
including distractors. Trained on {result.train_examples:,} examples ({result.train_tokens:,} tokens a pass).

## Training

tooltune's own `train()`: `method: full`, packing, learning rate {config.learning_rate:g} (cosine,
2% warmup), {config.batch_size} rows × {config.max_length} tokens a step, seed {config.seed}.
{result.steps} steps in {result.train_seconds / 60:.1f} minutes ({result.tokens_per_s:,.0f} tokens/s);
final train loss {_num(result.train_loss)}, val loss {_num(result.eval_loss)}. Whole build: {result.build_seconds / 60:.1f} minutes.

## Accuracy

Greedy decoding, exact match of the calls (tooltune's BFCL-style `eval.match`; no_call and
clarify turns must not call).

| split | what | examples | exact match |
|---|---|---|---|
{rows}

## Prompt format

```text
{shown}
```

Versions: {", ".join(f"{k} {v}" for k, v in versions.items() if v)}.
"""


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
