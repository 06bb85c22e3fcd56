"""Prefix caching: the system turn and tool listing are prefilled once, not once per prompt.

Nearly every prompt tooltune generates from starts with the same text: the system turn with the
tool listing (on the demo data, ~380 of ~407 prompt tokens). :class:`~tooltune.runtime.generate.Generator`
prefills that **prefix** once, keeps its KV cache in a :class:`PrefixCache`, and copies it into
the KV cache of every batch row that starts with it; only the rest of each prompt is prefilled.

- **What is shared.** The prefix of a conversation is the rendered text before its first user
  turn (:func:`prompt_prefix`: the system text, the tool listing, a prompt-only model's few-shot
  turns; with the opener of the user turn, ``<|im_start|>``, when it is an added token). It is
  used only when its token ids are exactly the first ids of the whole prompt's: tokenization can
  merge across the boundary, and then that prompt is prefilled whole. Nothing is approximated.
- **Exactness.** Each prefix is prefilled alone (one row, no padding), at positions 0..P-1, as
  the whole prompt would be. In a batch, row *r*'s cache holds its prefix left-padded to the
  batch's longest prefix, then its left-padded remainder; the attention mask hides both pads and
  the positions come from the mask (prefix 0..P-1, remainder from P on), so each row attends to
  what it would alone. Greedy outputs are those of uncached decoding: the tests compare exact
  strings over hundreds of prompts, base and adapter.
- **Across requests.** The cache is an LRU keyed by the model (base, adapter, whole model: a
  base's prefix is wrong for an adapter that changes the attention projections) and the prefix
  token ids, bounded in bytes (``max_mb``; a prefix larger than the bound is used for its batch
  and not kept). SmolLM2-135M in fp32 holds ~46 KB per prefix token: a 380-token listing is
  ~17 MB.
- **Where it does not apply.** Models whose KV cache is not one plain full-attention layer per
  layer (sliding windows, linear attention) and runtimes other than transformers (ONNX,
  llama.cpp) prefill every prompt whole, as before.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from tooltune.formats.chat import shared_prefix

DEFAULT_PREFIX_CACHE_MB = 512
"""Default bound of a :class:`PrefixCache` (eval and serve), in MiB of KV tensors."""

_MODEL_TOKENS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def prompt_prefix(loaded: Any, messages: list[dict[str, Any]], tools: Any, prompt: str) -> str:
    """The part of ``prompt`` (the rendering of ``messages`` offering ``tools``,
    :meth:`LoadedModel.render`) that other prompts share: :func:`tooltune.formats.chat.shared_prefix`
    with the model's own rendering (few-shot turns, tool listing style). ``''`` when there is none."""
    return shared_prefix(loaded.tokenizer, messages, text=prompt, render=lambda msgs: loaded.render(msgs, tools)) or ""


def model_scope(loaded: Any) -> tuple[str, str, str | None]:
    """The cache key part naming what computes the KV: the model object, the served name and the
    adapter (one PEFT model serves several adapters, and its base with adapters disabled)."""
    model = loaded.model
    token = _MODEL_TOKENS.get(model)
    if token is None:
        token = _MODEL_TOKENS[model] = uuid.uuid4().hex  # ids of freed models are reused; tokens are not
    return token, loaded.name, loaded.adapter


def supports_prefix_cache(model: Any) -> bool:
    """Whether ``model`` is a transformers (or PEFT) torch model that takes a KV cache."""
    import torch

    return isinstance(model, torch.nn.Module) and hasattr(model, "config") and hasattr(model, "generate")


@dataclass
class PrefixKV:
    """The KV cache of one prefix: per layer, keys and values of shape (1, heads, P, head_dim)."""

    ids: tuple[int, ...]
    layers: list[tuple[Any, Any]]
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.layers)

    def __len__(self) -> int:
        return len(self.ids)


def prefill(model: Any, ids: tuple[int, ...]) -> PrefixKV | None:
    """Run ``model`` over ``ids`` alone (positions 0..P-1, no padding) and keep its KV cache;
    None when the cache is not one plain full-attention layer per layer (see the module docstring)."""
    import torch
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    if not cache.layers or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return None
    device = next(model.parameters()).device
    model(input_ids=torch.tensor([ids], device=device), cache=cache, use_cache=True, logits_to_keep=1)
    if any(type(layer) is not DynamicLayer or layer.keys.shape[-2] != len(ids) for layer in cache.layers):
        return None
    return PrefixKV(ids, [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers])


def batch_cache(model: Any, rows: list[PrefixKV | None], width: int, max_len: int) -> Any:
    """A static KV cache for ``len(rows)`` rows holding, in its first ``width`` slots, each row's
    prefix right-aligned (slots before it stay zero and are masked); None-rows hold nothing."""
    import torch
    from transformers import StaticCache
    from transformers.cache_utils import StaticLayer

    cache = StaticCache(config=model.config, max_cache_len=max_len)
    if any(type(layer) is not StaticLayer for layer in cache.layers):
        raise ValueError("prefix caching needs full-attention static cache layers")  # prefill() refused such models
    sample = next(r for r in rows if r is not None)
    for index, (k0, v0) in enumerate(sample.layers):
        keys = k0.new_zeros((len(rows), k0.shape[1], width, k0.shape[3]))
        values = v0.new_zeros((len(rows), v0.shape[1], width, v0.shape[3]))
        for row, entry in enumerate(rows):
            if entry is not None:
                k, v = entry.layers[index]
                keys[row, :, width - len(entry):] = k[0]
                values[row, :, width - len(entry):] = v[0]
        cache.update(keys, values, index)
    return cache


class PrefixCache:
    """An LRU of :class:`PrefixKV` keyed by (:func:`model_scope`, token ids), at most ``max_mb``
    MiB of tensors. Safe to share between threads (the server's batches use one)."""

    def __init__(self, max_mb: float = DEFAULT_PREFIX_CACHE_MB):
        if max_mb < 0:
            raise ValueError(f"max_mb must be >= 0, got {max_mb}")
        self.max_bytes = int(max_mb * 2**20)
        self._entries: OrderedDict[tuple[Any, tuple[int, ...]], PrefixKV] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = self.misses = self.evictions = 0

    def get(self, scope: Any, ids: tuple[int, ...]) -> PrefixKV | None:
        with self._lock:
            entry = self._entries.get((scope, ids))
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end((scope, ids))
            self.hits += 1
            return entry

    def put(self, scope: Any, entry: PrefixKV) -> None:
        """Keep ``entry``, evicting the least recently used ones beyond the bound; an entry larger
        than the whole bound is not kept."""
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            key = (scope, entry.ids)
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old.nbytes
            self._entries[key] = entry
            self.bytes += entry.nbytes
            while self.bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.bytes -= evicted.nbytes
                self.evictions += 1

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "bytes": self.bytes, "max_bytes": self.max_bytes, "hits": self.hits,
                "misses": self.misses, "evictions": self.evictions}
