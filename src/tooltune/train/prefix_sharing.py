"""Prefix-shared training rows: the tool listing is read once per row, not once per conversation.

Most of a tool-calling conversation's tokens are its prefix: the system turn with the tool
listing (on the demo data ~380 of ~407 prompt tokens). Conversations that offer the same tools
start with the same prefix (:func:`tooltune.formats.chat.shared_prefix`), so a row holds one
copy of it followed by as many conversations as fit::

    [ prefix | conversation 1 | conversation 2 | ... ]   segment ids 0 | 1 | 2 | ...

Each conversation attends to the prefix and to itself only, at the positions it would have alone
(``position_ids`` restart after the prefix for every conversation), through a block 4D attention
mask. Training on such a row is exact: the loss and the gradients are those of the same
conversations trained one by one (``tests/train/test_prefix_sharing.py`` checks loss and LoRA
gradients against the unshared computation, on a tiny model and on SmolLM2). Only the prefix's
gradient contributions are summed inside the row instead of across rows, which is the same sum.

Conversations whose prefix no other conversation shares, or whose prefix tokens are not a token
prefix of the conversation (a tokenizer merge across the boundary), are packed whole into rows
of their own kind (segment ids 1, 2, ... and no shared segment): today's packing, with the
isolation done by the same mask.

The mask needs an attention implementation that takes a custom 4D mask: transformers' ``sdpa``
(a boolean mask) and ``eager`` (an additive float mask). Others (flash-attention kernels take
only sequence lengths; flex attention wants its own BlockMask) fall back to TRL's padding-free
packing, and the reason is logged.

Sliding-window layers (Gemma 3: five of every six layers see the last 512 positions) get a mask
of their own: a token there sees the prefix and its conversation only within the window, as it
would alone. transformers hands a given 4D mask to every layer as it is, so one mask would let
the sliding layers read the whole listing in training and a window of it in use; the collator
passes one mask per layer type instead (:class:`LayerMasks`). Layer types a block mask cannot
express (chunked or linear attention) fall back to plain packing.

Rows are filled first-fit over a seeded shuffle of each prefix group's conversations, so a row
mixes behaviours (calls, chains, clarifications, no-call answers).
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tooltune.train.dataset import IGNORE_INDEX, TokenizedConversation

logger = logging.getLogger(__name__)

PREFIX_SEGMENT = 0
"""Segment id of a row's shared prefix; conversations are 1, 2, ...; padding is -1."""
PAD_SEGMENT = -1
MASKABLE_ATTENTION = {"sdpa": "bool", "eager": "float"}
"""Attention implementations that take a custom 4D mask, and the mask kind each wants."""


@dataclass
class RowStats:
    """What sharing saved, for the run manifest and the log."""

    rows: int = 0
    conversations: int = 0
    shared_conversations: int = 0
    """Conversations placed after a shared prefix (the rest were packed whole)."""
    prefixes: int = 0
    """Distinct shared prefixes."""
    tokens: int = 0
    """Tokens in all rows (what the model reads)."""
    unshared_tokens: int = 0
    """Tokens the same conversations have one by one (what plain packing reads)."""

    @property
    def saving(self) -> float:
        """How many times fewer tokens the rows hold than the conversations one by one."""
        return self.unshared_tokens / self.tokens if self.tokens else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "conversations": self.conversations, "shared_conversations": self.shared_conversations,
                "prefixes": self.prefixes, "tokens": self.tokens, "unshared_tokens": self.unshared_tokens,
                "saving": round(self.saving, 3)}


def shared_rows(conversations: Sequence[TokenizedConversation], max_length: int, *,
                seed: int = 0) -> tuple[dict[str, list[list[int]]], RowStats]:
    """Rows of ``input_ids``, ``labels``, ``position_ids`` and ``segment_ids``, at most
    ``max_length`` tokens each, holding every conversation exactly once (each must fit alone).
    Which conversations share a row is a seeded shuffle (see :func:`_add_rows`)."""
    rng = random.Random(seed)
    groups: dict[tuple[int, ...], list[TokenizedConversation]] = defaultdict(list)
    for conv in conversations:
        if len(conv.input_ids) > max_length:
            raise ValueError(f"a conversation of {len(conv.input_ids)} tokens does not fit max_length={max_length}")
        groups[tuple(conv.input_ids[:conv.prefix_len])].append(conv)
    whole = groups.pop((), [])
    for prefix in [p for p, members in groups.items() if len(members) == 1]:
        whole += groups.pop(prefix)  # nobody to share with: pack it whole
    rows: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": [], "segment_ids": []}
    stats = RowStats(conversations=len(conversations), prefixes=len(groups),
                     unshared_tokens=sum(len(c.input_ids) for c in conversations))
    for prefix, members in groups.items():
        stats.shared_conversations += len(members)
        suffixes = [(c.input_ids[len(prefix):], c.labels[len(prefix):]) for c in members]
        _add_rows(rows, list(prefix), suffixes, max_length, rng)
    if whole:
        _add_rows(rows, [], [(c.input_ids, c.labels) for c in whole], max_length, rng)
    stats.rows = len(rows["input_ids"])
    stats.tokens = sum(map(len, rows["input_ids"]))
    return rows, stats


def _add_rows(rows: dict[str, list[list[int]]], prefix: list[int], suffixes: list[tuple[list[int], list[int]]],
              max_length: int, rng: random.Random) -> None:
    """Pack ``suffixes`` into rows of ``max_length - len(prefix)`` tokens, each row starting with ``prefix``.

    First fit over a seeded shuffle, written here because the library packers (TRL's
    best-fit-decreasing) sort by length: rows would then hold only long multi-step chains, or only
    short no-call answers, and each optimizer step would see one behaviour. Conversations are
    short next to a row, so first fit still fills rows to within a conversation of full."""
    capacity = max_length - len(prefix)
    order = list(range(len(suffixes)))
    rng.shuffle(order)
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(suffixes[i][0])
        at = next((b for b, left in enumerate(room) if left >= n), None)
        if at is None:
            bins.append([])
            room.append(capacity)
            at = len(bins) - 1
        bins[at].append(i)
        room[at] -= n
    for members in bins:
        ids, labels = list(prefix), [IGNORE_INDEX] * len(prefix)
        positions, segments = list(range(len(prefix))), [PREFIX_SEGMENT] * len(prefix)
        for k, i in enumerate(members, 1):
            suffix_ids, suffix_labels = suffixes[i]
            ids += suffix_ids
            labels += suffix_labels
            positions += range(len(prefix), len(prefix) + len(suffix_ids))
            segments += [k] * len(suffix_ids)
        rows["input_ids"].append(ids)
        rows["labels"].append(labels)
        rows["position_ids"].append(positions)
        rows["segment_ids"].append(segments)


def block_mask(segment_ids: Any, kind: str, dtype: Any = None, *, position_ids: Any = None,
               window: int | None = None) -> Any:
    """The 4D attention mask ``(batch, 1, length, length)`` of rows of segment ids: a token sees
    the earlier tokens of its own segment and the row's prefix (segment 0); a padding token sees
    only itself (a fully masked query row would turn the softmax into NaN). ``kind`` "bool"
    (True = attend, for sdpa) or "float" (0 / most negative ``dtype`` value, added to the scores
    by eager attention). With a sliding ``window``, a token also sees only keys fewer than
    ``window`` positions back (``position_ids``: the positions each token has alone), as a
    sliding-window layer would show the conversation on its own."""
    import torch

    seg = segment_ids
    length = seg.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=seg.device).tril()
    query, key = seg[:, :, None], seg[:, None, :]
    same = (query == key) & (query != PAD_SEGMENT)
    prefix = (key == PREFIX_SEGMENT) & (query > PREFIX_SEGMENT)
    pad_self = (query == PAD_SEGMENT) & torch.eye(length, dtype=torch.bool, device=seg.device)
    allowed = (same | prefix) & causal
    if window is not None:
        allowed &= (position_ids[:, :, None] - position_ids[:, None, :]) < window
    allowed = (allowed | pad_self)[:, None]
    if kind == "bool":
        return allowed
    dtype = dtype or torch.float32
    return torch.zeros(allowed.shape, dtype=dtype, device=seg.device).masked_fill(~allowed, torch.finfo(dtype).min)


FULL_ATTENTION, SLIDING_ATTENTION = "full_attention", "sliding_attention"
"""The layer types (``config.layer_types``) whose masks shared rows can express."""


class LayerMasks(dict):
    """One mask per layer type, the form transformers takes for models that mix full and
    sliding-window layers (Gemma 3): a single 4D mask would be given to every layer as it is, so
    the sliding layers would see the whole listing in training and only a window of it in use."""

    def sum(self) -> Any:
        # TRL counts a batch's tokens as attention_mask.sum(); the collator's num_tokens replaces it.
        return self[FULL_ATTENTION].sum()


class PrefixSharedCollator:
    """Pads a batch of shared rows and builds its block mask (see the module docstring); for a model
    with sliding-window layers (``sliding_window``), the window's mask too (see :func:`sliding_window`)."""

    def __init__(self, pad_token_id: int, kind: str, dtype: Any = None, *,
                 sliding_window: tuple[int, bool] | None = None):
        if kind not in ("bool", "float"):
            raise ValueError(f"kind must be 'bool' or 'float', got {kind!r}")
        self.pad_token_id, self.kind, self.dtype, self.sliding_window = pad_token_id, kind, dtype, sliding_window

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        length = max(len(r["input_ids"]) for r in rows)

        def padded(key: str, value: int) -> Any:
            return torch.tensor([list(r[key]) + [value] * (length - len(r[key])) for r in rows], dtype=torch.long)

        segments, positions = padded("segment_ids", PAD_SEGMENT), padded("position_ids", 0)
        return {
            "input_ids": padded("input_ids", self.pad_token_id),
            "labels": padded("labels", IGNORE_INDEX),
            "position_ids": positions,
            "attention_mask": self._mask(segments, positions),
            # Real (unpadded) tokens: the trainer's throughput counter cannot read them off a 4D mask.
            "num_tokens": int((segments != PAD_SEGMENT).sum()),
        }

    def _mask(self, segments: Any, positions: Any) -> Any:
        if self.sliding_window is None:
            return block_mask(segments, self.kind, self.dtype)
        window, mixed = self.sliding_window
        windowed = block_mask(segments, self.kind, self.dtype, position_ids=positions, window=window)
        if not mixed:
            return windowed
        return LayerMasks({FULL_ATTENTION: block_mask(segments, self.kind, self.dtype), SLIDING_ATTENTION: windowed})


def sliding_window(model: Any) -> tuple[int, bool] | None:
    """``(window, mixed)`` for a model with sliding-window attention layers (``mixed``: beside
    full-attention ones), or None where every layer attends to the whole sequence."""
    config = model.config.get_text_config()
    window = getattr(config, "sliding_window", None)
    if window is None:
        return None
    types = set(_layer_types(config) or [SLIDING_ATTENTION])
    if SLIDING_ATTENTION not in types:
        return None
    return window, FULL_ATTENTION in types


def _layer_types(config: Any) -> list[str]:
    """``config.layer_types`` where the model's config class declares it. transformers keeps an
    unknown key of a checkpoint's config.json as an attribute (a Mistral checkpoint may carry
    layer_types), but only models whose config declares the field take one mask per layer type."""
    declared = any("layer_types" in getattr(k, "__annotations__", {}) for k in type(config).__mro__)
    return list(getattr(config, "layer_types", None) or []) if declared else []


def mask_kind(model: Any) -> tuple[str | None, str]:
    """The mask kind ``model``'s attention implementation takes, or None and why not."""
    impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if impl not in MASKABLE_ATTENTION:
        return None, (f"attn_implementation={impl!r} does not take a custom 4D attention mask (only "
                      f"{', '.join(MASKABLE_ATTENTION)} do), so conversations are packed whole (TRL padding-free) "
                      "and each reads its own copy of the tool listing")
    other = set(_layer_types(model.config.get_text_config())) - {FULL_ATTENTION, SLIDING_ATTENTION}
    if other:
        return None, (f"layer types {sorted(other)} attend in ways a block mask cannot express, so conversations are "
                      "packed whole (TRL padding-free) and each reads its own copy of the tool listing")
    return MASKABLE_ATTENTION[impl], f"attn_implementation={impl!r} takes a custom 4D mask"
