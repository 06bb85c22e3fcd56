"""The ``prompt`` training backend: no weights change, a system prompt and few-shot conversations do.

:func:`build_prompt_model` writes a *prompt-only model* directory::

    prompt_model.json   {"kind": "prompt", "base_model": <id or path>, "system": <str>,
                         "few_shot": [<OpenAI-shaped messages>]}
    manifest.json       what was chosen and why, the token count, the base model's val results

Evaluation and serving load it with :func:`tooltune.runtime.model.load_model`, which puts the system
prompt and the few-shot messages before every conversation (``LoadedModel.messages_for``) and
renders with :func:`~tooltune.formats.chat.render_chat`: the one contract, used here too to count
tokens and to find failures.

Choosing the few-shot conversations (all from ``train.jsonl``, cheapest first within each step):

1. **Coverage**: greedy set cover over the tools the training examples call, so that each one is
   shown called at least once (tools no example calls are listed as ``uncovered``).
2. **Failures** (``prompt.mine_failures``): the base model, prompted with step 1's result, answers
   ``val.jsonl`` (greedy, batched, via :mod:`tooltune.runtime.generate`), and each answer is scored
   with the evaluation matcher. For each kind of failure, by frequency, a training example of the
   same kind is added: same category and expected tool, else same tool, else same category.
   Validation examples themselves never enter the prompt, so val scores stay honest.

Both steps stop at ``prompt.max_examples`` conversations and at ``prompt.max_prompt_tokens``: the
system prompt plus every few-shot message, rendered with the base tokenizer's template, counted
in tokens. A conversation that does not fit is skipped for a cheaper one.

A call in a few-shot conversation is followed by one tool message per call (the recorded result
for executed sequences, else a placeholder), because OpenAI-compatible chat APIs reject an
assistant ``tool_calls`` message that no tool message answers.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tooltune.data.examples import Behavior, Example, target_messages
from tooltune.data.vocabulary import DomainVocabulary
from tooltune.errors import DataError, TrainError
from tooltune.formats import openai as openai_calls
from tooltune.formats.chat import call_format_for, render_chat
from tooltune.runtime.model import PROMPT_MODEL_FILE, PromptModel
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.train import manifest as mf
from tooltune.train.config import TrainConfig
from tooltune.train.dataset import read_split

PLACEHOLDER_RESULT = "(example call: result not shown)"

TOOL_USE_RULES = (
    "Call a tool only when it fits the user's request, and only a tool offered in this conversation "
    "(the worked examples may use other tools).",
    "Use the exact tool and parameter names of the tool definitions, with values of the declared types. Never "
    "invent a value the user did not give.",
    "If a required detail is missing, ask the user for it instead of calling.",
    "If the request needs several independent calls, make all of them in the same turn.",
    "If no offered tool fits, answer in plain text without calling a tool.",
)

Request = tuple[list[dict[str, Any]], list[Tool]]
Predict = Callable[["PromptModel", Sequence[Request]], list[str]]
"""Raw outputs of the base model, prompted with a prompt model, for conversations with their offered tools."""


class PromptResult(BaseModel):
    """What :func:`build_prompt_model` produced."""

    run_dir: Path = Field(description="The prompt-only model directory (prompt_model.json, manifest.json).")
    examples: int = Field(description="Few-shot conversations in the prompt.")
    prompt_tokens: int = Field(description="Tokens of system prompt plus few-shot messages.")
    uncovered_tools: list[str] = Field(default_factory=list, description="Called tools no conversation shows.")
    val_correct: int | None = Field(None, description="Val examples the base model got right with the coverage prompt.")
    val_total: int | None = Field(None, description="Val examples scored (None: failures were not mined).")
    manifest_path: Path

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts for the CLI and the pipeline."""
        return {"backend": "prompt", **self.model_dump(mode="json")}


@dataclass
class _Candidate:
    example: Example
    messages: list[dict[str, Any]]
    tools: set[str]
    key: tuple[str, str | None]
    """(category, first expected tool): the kind of case the conversation shows."""
    tokens: int = 0


@dataclass
class _Selection:
    """Chosen conversations, in prompt order, and why each was chosen."""

    chosen: list[_Candidate] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def build_prompt_model(config: TrainConfig, *, progress: bool = True, predict: Predict | None = None) -> PromptResult:
    """Choose few-shot conversations and write the prompt-only model directory ``config.output_dir``.

    ``predict`` replaces the base model when mining failures (tests); by default the base model
    is loaded once and generates greedily in batches of ``prompt.batch_size``.
    """
    started = time.perf_counter()
    if config.backend != "prompt":
        raise TrainError(f"backend: build_prompt_model() runs the prompt backend; got {config.backend!r}.")
    config = config.resolved()
    settings = config.prompt
    run_dir = config.output_dir
    if (run_dir / PROMPT_MODEL_FILE).exists() or (run_dir / mf.MANIFEST_NAME).exists():
        raise TrainError(f"{run_dir}: already holds a run (prompt_model.json or manifest.json). Choose another "
                         "output_dir (or delete this one).")
    catalog = ToolCatalog.load(config.catalog_path) if config.catalog or config.catalog_path.is_file() else None
    train_path, val_path = config.data_dir / "train.jsonl", config.data_dir / "val.jsonl"
    train, val = read_split(train_path), read_split(val_path, required=False)
    system = system_prompt(settings.rules, _vocabulary(config, catalog))

    loaded = None
    if settings.mine_failures and val and predict is None:
        from tooltune.runtime.model import load_model

        loaded = load_model(config.base_model)  # ConfigError names the model when it cannot be loaded
        predict = _model_predict(loaded, settings.max_new_tokens, settings.batch_size)
    tokenizer = loaded.tokenizer if loaded is not None else _tokenizer(config.base_model)
    call_format = call_format_for(tokenizer).name

    budget = _Budget(tokenizer, system, settings.max_prompt_tokens, settings.max_examples)
    candidates = [c for c in (_candidate(e, catalog, k) for k, e in enumerate(train)) if c is not None]
    for c in candidates:
        c.tokens = budget.cost([c])
    selection = _Selection()
    called = sorted({name for c in candidates for name in c.tools} | _called_tools(train))
    uncovered = _cover(candidates, called, selection, budget)

    val_results = None
    if settings.mine_failures and val and predict is not None:
        if progress:
            _say(f"mining failures: the base model answers {len(val)} val examples")
        val_results = _score(val, catalog, budget.model(config.base_model, selection), predict, call_format)
        _add_for_failures(candidates, val, val_results, selection, budget)

    model = budget.model(config.base_model, selection)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / PROMPT_MODEL_FILE).write_text(model.model_dump_json(indent=2) + "\n")
    prompt_tokens = budget.tokens(selection.chosen)
    correct = sum(r["correct"] for r in val_results) if val_results is not None else None
    manifest_path = mf.write_manifest(run_dir, {
        "base_model": mf.base_model_identity(config.base_model, config.base_revision, None),
        "backend": "prompt",
        "catalog": {"path": str(config.catalog_path), "hash": catalog.hash} if catalog is not None else None,
        "data": {"dir": str(config.data_dir), "hash": mf.dataset_hash([e.id for e in train], [e.id for e in val]),
                 "train": {"examples": len(train), "candidates": len(candidates)}, "val": {"examples": len(val)}},
        "prompt": {"tokens": prompt_tokens, "budget": settings.max_prompt_tokens, "examples": len(selection.chosen),
                   "messages": len(model.few_shot), "uncovered_tools": uncovered},
        "few_shot": [{"example_id": c.example.id, "category": c.key[0], "tokens": c.tokens, "reason": why}
                     for c, why in zip(selection.chosen, selection.reasons, strict=True)],
        "val_with_coverage_prompt": None if val_results is None else {
            "correct": correct, "total": len(val_results),
            "failures": dict(Counter(f"{r['key'][0]}/{r['key'][1] or '-'}" for r in val_results if not r["correct"])),
        },
        "config": config.model_dump(mode="json"),
        "git": mf.git_state(),
        "wall_time_s": round(time.perf_counter() - started, 2),
        **mf.peak_memory(),
        "versions": mf.library_versions(),
    })
    return PromptResult(run_dir=run_dir, examples=len(selection.chosen), prompt_tokens=prompt_tokens,
                        uncovered_tools=uncovered, val_correct=correct,
                        val_total=len(val_results) if val_results is not None else None, manifest_path=manifest_path)


def system_prompt(rules: Sequence[str] = (), vocabulary: DomainVocabulary | None = None) -> str:
    """Tool-use rules, then the domain's rules (``rules``, then those of ``vocabulary``)."""
    lines = ["You are an assistant that acts by calling the tools offered in the conversation.", "", "Rules:"]
    lines += [f"- {rule}" for rule in TOOL_USE_RULES]
    domain = [*rules, *vocabulary_rules(vocabulary)] if vocabulary else list(rules)
    if domain:
        lines += ["", "Domain rules:", *(f"- {rule}" for rule in domain)]
    lines += ["", "The conversations before the current one are worked examples of these rules."]
    return "\n".join(lines)


def vocabulary_rules(vocabulary: DomainVocabulary) -> list[str]:
    """A curated domain vocabulary as plain-language rules: its rules, cents parameters, terms."""
    out = list(vocabulary.rules)
    if vocabulary.cents:
        out.append(f"{', '.join(vocabulary.cents)} {'is' if len(vocabulary.cents) == 1 else 'are'} in cents: "
                   "$12.50 is written 1250.")
    for term in vocabulary.terms:
        says = " or ".join(json.dumps(s) for s in term.says)
        out.append(f"{says} means {term.param} = {json.dumps(term.value)}.")
    return out


def few_shot_messages(example: Example, shot: int = 0) -> list[dict[str, Any]] | None:
    """The example's conversation as OpenAI-shaped messages (arguments as JSON strings, call ids
    ``shot<k>_call_<i>``, each call answered by a tool message), or None when it cannot be shown
    (a sequence whose references were never resolved by execution)."""
    if example.behavior is Behavior.SEQUENCE and not example.step_results:
        return None
    out: list[dict[str, Any]] = []
    pending: list[str] = []
    for message in target_messages(example):
        if message.get("role") == "assistant" and message.get("tool_calls"):
            calls = [_tool_call(tc, f"shot{shot}_call_{len(out)}_{i}") for i, tc in enumerate(message["tool_calls"])]
            rendered = openai_calls.to_message(calls, message.get("content") or None)
            out.append(rendered)
            pending = [c.id for c in calls if c.id]
            continue
        if message.get("role") == "tool":
            content = message.get("content")
            call_id = pending.pop(0) if pending else str(message.get("tool_call_id"))
            out.append({"role": "tool", "tool_call_id": call_id,
                        "content": content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)})
            continue
        out += [{"role": "tool", "tool_call_id": p, "content": PLACEHOLDER_RESULT} for p in pending]
        pending = []
        if message.get("role") != "system":  # the prompt model has one system prompt, at the top
            out.append(dict(message))
    out += [{"role": "tool", "tool_call_id": p, "content": PLACEHOLDER_RESULT} for p in pending]
    return out


def _tool_call(tool_call: dict[str, Any], call_id: str) -> ToolCall:
    fn = tool_call.get("function", tool_call)
    args = fn.get("arguments", {})
    return ToolCall(fn["name"], json.loads(args) if isinstance(args, str) else dict(args), call_id)


def _candidate(example: Example, catalog: ToolCatalog | None, k: int) -> _Candidate | None:
    messages = few_shot_messages(example, k)
    if messages is None:
        return None
    names = {c.name for c in example.calls} if example.behavior in (Behavior.CALLS, Behavior.SEQUENCE) else set()
    return _Candidate(example, messages, names, _key(example))


def _key(example: Example) -> tuple[str, str | None]:
    first = example.calls[0].name if example.calls and example.behavior in (Behavior.CALLS, Behavior.SEQUENCE) else None
    return example.category.value, first


def _called_tools(examples: list[Example]) -> set[str]:
    return {c.name for e in examples if e.behavior in (Behavior.CALLS, Behavior.SEQUENCE) for c in e.calls}


class _Budget:
    """Counts the prompt's tokens exactly as it will be rendered (system + few-shot, no tools)."""

    def __init__(self, tokenizer: Any, system: str, max_tokens: int, max_examples: int | None):
        self.tokenizer, self.system, self.max_tokens, self.max_examples = tokenizer, system, max_tokens, max_examples
        self.floor = self.tokens([])
        if self.floor > max_tokens:
            raise TrainError(f"prompt.max_prompt_tokens: the system prompt alone is {self.floor} tokens, more than "
                             f"the budget of {max_tokens}. Raise the budget or shorten prompt.rules.")

    def model(self, base_model: str, selection: _Selection | list[_Candidate]) -> PromptModel:
        chosen = selection.chosen if isinstance(selection, _Selection) else selection
        return PromptModel(base_model=base_model, system=self.system,
                           few_shot=[m for c in chosen for m in c.messages])

    def tokens(self, chosen: list[_Candidate]) -> int:
        text = render_chat(self.tokenizer, self.model("", chosen).prefix())
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def cost(self, chosen: list[_Candidate]) -> int:
        """Tokens ``chosen`` add to the bare system prompt (for ordering candidates by price)."""
        return self.tokens(chosen) - self.floor

    def admits(self, selection: _Selection, candidate: _Candidate) -> bool:
        if self.max_examples is not None and len(selection.chosen) >= self.max_examples:
            return False
        return self.tokens([*selection.chosen, candidate]) <= self.max_tokens


def _cover(candidates: list[_Candidate], tools: list[str], selection: _Selection, budget: _Budget) -> list[str]:
    """Greedy set cover: the conversation showing the most uncovered tools, cheapest on ties."""
    uncovered = set(tools)
    pool = [c for c in candidates if c.tools & uncovered]
    while uncovered and pool:
        best = max(pool, key=lambda c: (len(c.tools & uncovered), -c.tokens))
        pool.remove(best)
        if not best.tools & uncovered or not budget.admits(selection, best):
            continue
        selection.chosen.append(best)
        selection.reasons.append("covers " + ", ".join(sorted(best.tools & uncovered)))
        uncovered -= best.tools
    return sorted(uncovered)


def _score(val: list[Example], catalog: ToolCatalog | None, prompt: PromptModel, predict: Predict,
           call_format: str) -> list[dict[str, Any]]:
    from tooltune.eval.score import score_output

    tools = [e.offered_tools(catalog) for e in val]
    outputs = predict(prompt, [(e.messages, t) for e, t in zip(val, tools, strict=True)])
    results = []
    for example, text, offered in zip(val, outputs, tools, strict=True):
        scored = score_output(example, text, call_format, offered)
        results.append({"id": example.id, "correct": scored.match.correct, "key": _key(example),
                        "reason": scored.match.reason.value if scored.match.reason else None})
    return results


def _add_for_failures(candidates: list[_Candidate], val: list[Example], results: list[dict[str, Any]],
                      selection: _Selection, budget: _Budget) -> None:
    """Round-robin over failure kinds (most frequent first): one training conversation of the
    same kind per round, until nothing more fits or matches."""
    kinds = Counter(tuple(r["key"]) for r in results if not r["correct"])
    order = [k for k, _ in kinds.most_common()]
    matchers = (lambda c, k: c.key == k, lambda c, k: k[1] is not None and c.key[1] == k[1],
                lambda c, k: c.key[0] == k[0])
    added = True
    while added and order:
        added = False
        for kind in list(order):
            pool = [c for c in candidates if c not in selection.chosen]
            match = next((m for m in matchers if any(m(c, kind) for c in pool)), None)
            options = sorted((c for c in pool if match and match(c, kind)), key=lambda c: c.tokens)
            pick = next((c for c in options if budget.admits(selection, c)), None)
            if pick is None:
                order.remove(kind)
                continue
            selection.chosen.append(pick)
            selection.reasons.append(f"base model fails {kinds[kind]} val {kind[0]}/{kind[1] or '-'} example(s)")
            added = True


def _model_predict(loaded: Any, max_new_tokens: int, batch_size: int) -> Predict:
    """Generation as evaluation and serving do it: the loaded prompt model puts the prefix in
    front (``LoadedModel.messages_for``) and renders with ``render_chat``."""
    from tooltune.runtime.generate import Generator

    generator = Generator(loaded, max_new_tokens=max_new_tokens, batch_size=batch_size)

    def predict(prompt: PromptModel, requests: Sequence[Request]) -> list[str]:
        loaded.system, loaded.few_shot = prompt.system, prompt.few_shot
        return [g.text for g in generator.generate(requests)]

    return predict


def _tokenizer(base_model: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(base_model)
    except (OSError, ValueError) as e:
        raise TrainError(f"base_model: cannot load the tokenizer of {base_model!r}: {e}") from e


def _vocabulary(config: TrainConfig, catalog: ToolCatalog | None) -> DomainVocabulary | None:
    path = config.prompt.vocabulary
    if path is None:
        return None
    if catalog is None:
        raise TrainError(f"prompt.vocabulary: reading {path} needs the tool catalog ({config.catalog_path} is "
                         "missing).")
    from tooltune.data.curated import load_curated

    try:
        return load_curated(path, catalog).vocabulary
    except DataError as e:
        raise TrainError(f"prompt.vocabulary: {e}") from e


def _say(text: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(f"[bold]prompt[/] {text}")
