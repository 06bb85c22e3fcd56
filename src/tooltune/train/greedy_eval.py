"""A small greedy-generation evaluation: exact-match accuracy of a local model, per split.

Used by the base-model build (its model card) and ``benchmarks/base_finetune.py``. Prompts are
rendered with :func:`~tooltune.formats.chat.render_chat` (``add_generation_prompt=True``),
generated greedily in batches with left padding, parsed with the tokenizer's call format
(:func:`~tooltune.formats.chat.call_format_for`) and checked with
:func:`tooltune.eval.match.match` (BFCL's AST rules: names, required and expected parameters,
types and values; no_call and clarify turns must not call). It is deliberately simple: the
full evaluator with failure classes and reports is :mod:`tooltune.eval`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from tooltune.data.examples import Example
from tooltune.eval.match import match
from tooltune.formats.chat import call_format_for, render_chat
from tooltune.tools.catalog import ToolCatalog


class SplitScore(BaseModel):
    """Exact-match accuracy of one split."""

    examples: int
    correct: int
    accuracy: float = Field(description="correct / examples (0 when the split is empty).")
    reasons: dict[str, int] = Field(default_factory=dict, description="Failure reason code → count.")
    samples: list[dict[str, Any]] = Field(default_factory=list, description="A few failures: request, expected, output.")


def generate_replies(model: Any, tokenizer: Any, examples: Sequence[Example], catalog: ToolCatalog | None, *,
                     batch_size: int = 32, max_new_tokens: int = 160) -> list[str]:
    """Greedy replies to each example's conversation (its offered tools listed), in order."""
    import torch

    prompts = [render_chat(tokenizer, ex.messages, ex.offered_tools(catalog), add_generation_prompt=True) for ex in examples]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # similar lengths batch together
    replies: list[str] = [""] * len(prompts)
    pad = tokenizer.pad_token_id
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            width = max(len(encoded[i]) for i in batch)
            ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch])
            mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch])
            with torch.no_grad():
                out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                                     max_new_tokens=max_new_tokens, do_sample=False,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=pad)
            for row, i in enumerate(batch):
                replies[i] = tokenizer.decode(out[row, width:], skip_special_tokens=True).strip()
    finally:
        model.train(was_training)
    return replies


def score_replies(examples: Sequence[Example], replies: Sequence[str], catalog: ToolCatalog | None, tokenizer: Any,
                  *, samples: int = 3) -> SplitScore:
    """Parse each reply with the tokenizer's call format and match it against its example."""
    fmt = call_format_for(tokenizer)
    correct = 0
    reasons: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    for example, reply in zip(examples, replies, strict=True):
        result = match(example, fmt.parse(reply), example.offered_tools(catalog))
        if result.correct:
            correct += 1
            continue
        reasons[result.reason.value if result.reason else "wrong"] += 1
        if len(failures) < samples:
            failures.append({"request": example.user_text, "behavior": example.behavior.value,
                             "expected": [c.model_dump(include={"name", "arguments"}) for c in example.calls],
                             "output": reply, "reason": result.message})
    n = len(examples)
    return SplitScore(examples=n, correct=correct, accuracy=correct / n if n else 0.0,
                      reasons=dict(reasons.most_common()), samples=failures)


def evaluate_splits(model: Any, tokenizer: Any, splits: Mapping[str, Sequence[Example]], catalog: ToolCatalog | None,
                    *, batch_size: int = 32, max_new_tokens: int = 160) -> dict[str, SplitScore]:
    """:class:`SplitScore` of every split (greedy generation, exact match)."""
    scores = {}
    for name, examples in splits.items():
        replies = generate_replies(model, tokenizer, examples, catalog, batch_size=batch_size, max_new_tokens=max_new_tokens)
        scores[name] = score_replies(examples, replies, catalog, tokenizer)
    return scores
