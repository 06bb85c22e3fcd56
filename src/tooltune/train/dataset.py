"""Examples → token ids + labels that train ONLY on what the assistant says.

The loss covers each assistant turn's text (tool calls and answers) and the end-of-turn token that
stops it; the system prompt, tool listing, user turns, tool results and the
``<|im_start|>assistant\\n`` header are context only (label ``-100``).

The mask is found the same way for every chat template, with or without ``{% generation %}``
markers, so there is one code path to trust:

1. render the whole conversation once with :func:`~tooltune.formats.chat.render_chat` (the
   same bytes evaluation and serving use);
2. for each assistant turn *i*, render ``messages[:i]`` with ``add_generation_prompt=True`` (what the
   model sees at inference before it speaks) and ``messages[:i + 1]``; the characters the second
   adds beyond the first, minus trailing whitespace after the end-of-turn token, are the turn;
3. map those character spans onto tokens with the fast tokenizer's offset mapping.

Step 2 only makes sense for *prefix-stable* templates: the prompt must be a prefix of the
conversation, and earlier turns must render the same whether or not later turns follow. Templates
that break this (e.g. ones that drop reasoning from earlier turns) raise :class:`TemplateError`
instead of silently training on text the model never sees at inference.

Tool schemas never pass through a ``datasets.Dataset`` column (Arrow would coerce the
heterogeneous schemas and null-fill missing keys): examples are tokenized first, and the
Dataset only holds integer lists.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltune.data.examples import Example, read_jsonl, target_messages
from tooltune.errors import DataError, TemplateError, TrainError
from tooltune.formats.chat import render_chat, shared_prefix
from tooltune.tools.catalog import Tool, ToolCatalog

IGNORE_INDEX = -100
"""Label of tokens that are context only (PyTorch cross-entropy's ``ignore_index``)."""


class TrainingDataWarning(UserWarning):
    """The training data will train, but not exactly as intended (see the message)."""


@dataclass(frozen=True)
class TokenizedConversation:
    """One rendered conversation: its text, token ids, and which tokens the loss covers."""

    text: str
    input_ids: list[int]
    assistant_mask: list[int]
    """1 where the token belongs to an assistant turn (trained), 0 elsewhere."""
    spans: list[tuple[int, int]]
    """Character spans of the assistant turns in ``text``."""
    boundary_splits: int = 0
    """Assistant turns whose first or last character falls inside a token (see :func:`tokenize_conversation`)."""
    untrained_stops: int = 0
    """Assistant turns that do not end on a special (added) token, so the model may not learn to stop."""
    prefix_len: int = 0
    """Leading tokens that are the conversation's shared prefix (system turn and tool listing,
    :func:`~tooltune.formats.chat.shared_prefix`), 0 when its tokens do not start ``input_ids``."""

    @property
    def labels(self) -> list[int]:
        return [t if m else IGNORE_INDEX for t, m in zip(self.input_ids, self.assistant_mask, strict=True)]


@dataclass
class DatasetStats:
    """What went into a tokenized split, for the run manifest."""

    examples: int = 0
    skipped_too_long: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    example_ids: list[str] = field(default_factory=list)


def assistant_spans(
    tokenizer: Any, messages: list[dict[str, Any]], tools: list[Tool] | ToolCatalog | None
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of every assistant turn in it.

    Raises :class:`TemplateError` when the template is not prefix-stable (see the module docstring).
    """
    text = render_chat(tokenizer, messages, tools)
    spans = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        prompt = render_chat(tokenizer, messages[:i], tools, add_generation_prompt=True)
        upto = render_chat(tokenizer, messages[: i + 1], tools)
        if not upto.startswith(prompt):
            at = _divergence(prompt, upto)
            raise TemplateError(
                f"message {i} (assistant): the chat template is not prefix-stable: the prompt the model gets at "
                f"inference (messages[:{i}] with add_generation_prompt=True) is not a prefix of the conversation "
                f"with this turn; they differ at character {at}: prompt has {prompt[at:at + 40]!r}, conversation has "
                f"{upto[at:at + 40]!r}. Training on it would teach a context the model never sees. Use a template "
                "whose generation prompt equals the assistant header, or remove the tokenizer's chat_template to "
                "use tooltune's built-in one."
            )
        end = len(upto.rstrip())  # whitespace after the end-of-turn token is never generated
        if not text.startswith(upto[:end]):
            at = _divergence(upto[:end], text)
            raise TemplateError(
                f"message {i} (assistant): the chat template renders this turn differently once later messages "
                f"follow (at character {at}: {upto[at:at + 40]!r} alone, {text[at:at + 40]!r} in the full "
                "conversation), as templates that strip reasoning from earlier turns do. Training on the full "
                "conversation would teach the model text it does not produce at inference. Use a prefix-stable "
                "template, or split the conversation so that each example ends at one assistant turn."
            )
        if end > len(prompt):
            spans.append((len(prompt), end))
    return text, spans


def tokenize_conversation(
    tokenizer: Any, messages: list[dict[str, Any]], tools: list[Tool] | ToolCatalog | None
) -> TokenizedConversation:
    """Render and tokenize a conversation, marking the tokens of assistant turns.

    A token is trained when it starts inside an assistant span. When a span boundary falls inside a
    token (a merge across the header and the turn), ``boundary_splits`` counts it: the model is then
    trained on a tokenization it will not see at inference.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TrainError(
            f"{type(tokenizer).__name__} is a slow (Python) tokenizer; the assistant-only loss mask needs the "
            "character offsets only fast tokenizers give. Load the tokenizer with use_fast=True."
        )
    text, spans = assistant_spans(tokenizer, messages, tools)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    mask = [0] * len(ids)
    starts = {s for s, e in offsets if e > s}
    ends = {e for s, e in offsets if e > s}
    added = set(tokenizer.get_added_vocab().values())
    splits = stops = 0
    for lo, hi in spans:
        inside = [k for k, (s, e) in enumerate(offsets) if e > s and lo <= s < hi]
        for k in inside:
            mask[k] = 1
        splits += (lo not in starts) + (hi not in ends)
        stops += not inside or ids[inside[-1]] not in added
    prefix_len = _prefix_tokens(tokenizer, shared_prefix(tokenizer, messages, tools, text=text), ids, mask)
    return TokenizedConversation(text, list(ids), mask, spans, splits, stops, prefix_len)


def _prefix_tokens(tokenizer: Any, prefix: str | None, ids: list[int], mask: list[int]) -> int:
    """How many leading ``ids`` are ``prefix``'s own tokens; 0 when a merge across the boundary
    makes them differ (sharing must never change the tokens a conversation trains on)."""
    if not prefix:
        return 0
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    n = len(prefix_ids)
    if n >= len(ids) or ids[:n] != prefix_ids or any(mask[:n]):
        return 0
    return n


def tokenize_example(tokenizer: Any, example: Example, catalog: ToolCatalog | None) -> TokenizedConversation:
    """Tokenize ``target_messages(example)`` with the example's offered tools (schemas verbatim)."""
    return tokenize_conversation(tokenizer, target_messages(example), example.offered_tools(catalog))


def tokenize_split(
    tokenizer: Any,
    examples: Iterable[Example],
    catalog: ToolCatalog | None,
    *,
    max_length: int | None = None,
    where: str = "examples",
) -> tuple[list[TokenizedConversation], DatasetStats]:
    """Every example tokenized (:func:`tokenize_example`), and what went in.

    Examples longer than ``max_length`` tokens are skipped and counted, never cut: a truncated
    conversation would train a tool call without its end. ``where`` names the source in errors.
    """
    conversations: list[TokenizedConversation] = []
    stats = DatasetStats()
    splits = stops = 0
    for n, example in enumerate(examples, 1):
        try:
            tok = tokenize_example(tokenizer, example, catalog)
        except (TemplateError, DataError) as e:
            raise type(e)(f"{where}: example {n} ({example.id}): {e}") from e
        if max_length is not None and len(tok.input_ids) > max_length:
            stats.skipped_too_long += 1
            continue
        if not any(tok.assistant_mask):
            raise DataError(f"{where}: example {n} ({example.id}): no assistant tokens to train on.")
        conversations.append(tok)
        stats.examples += 1
        stats.tokens += len(tok.input_ids)
        stats.trained_tokens += sum(tok.assistant_mask)
        stats.example_ids.append(example.id)
        splits += tok.boundary_splits
        stops += tok.untrained_stops
    if splits:
        warnings.warn(
            f"{where}: {splits} assistant-turn boundaries fall inside a token (the tokenizer merges the turn with "
            "the text around it), so training sees a tokenization inference does not. Prefer a template that "
            "ends the assistant header and the turn with special tokens.",
            TrainingDataWarning,
            stacklevel=2,
        )
    if stops:
        warnings.warn(
            f"{where}: {stops} assistant turns do not end on a special token, so the model may not learn to stop. "
            "Use a chat template that closes each assistant turn with an end-of-turn token.",
            TrainingDataWarning,
            stacklevel=2,
        )
    return conversations, stats


def conversations_dataset(conversations: Iterable[TokenizedConversation]):
    """A ``datasets.Dataset`` of one conversation per row: ``input_ids`` and ``labels``
    (``-100`` outside assistant turns), ready for TRL's ``SFTTrainer`` (which uses a ``labels``
    column as is)."""
    from datasets import Dataset

    conversations = list(conversations)
    return Dataset.from_dict({"input_ids": [c.input_ids for c in conversations],
                              "labels": [c.labels for c in conversations]})


def build_dataset(
    tokenizer: Any,
    examples: Iterable[Example],
    catalog: ToolCatalog | None,
    *,
    max_length: int | None = None,
    where: str = "examples",
):
    """:func:`tokenize_split` as a one-conversation-per-row Dataset, and its :class:`DatasetStats`."""
    conversations, stats = tokenize_split(tokenizer, examples, catalog, max_length=max_length, where=where)
    return conversations_dataset(conversations), stats


def read_split(path: str | Path, *, required: bool = True) -> list[Example]:
    """All examples of one split file; a missing optional file gives an empty list."""
    path = Path(path)
    if not path.is_file():
        if not required:
            return []
        raise TrainError(
            f"{path}: not found. Point data_dir at a directory with train.jsonl and val.jsonl "
            "(written by the data build), or build the data first."
        )
    return list(read_jsonl(path))


def _divergence(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
