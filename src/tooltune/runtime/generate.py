"""Batched greedy generation of assistant turns: prompts in, raw output text and timings out.

:class:`Generator` wraps a :class:`~tooltune.runtime.model.LoadedModel`. Each request is a
conversation plus its offered tools, rendered with :meth:`LoadedModel.render` (``render_chat``
with the generation prompt). Requests are sorted by prompt length, so each batch pads little,
and run through ``model.generate`` in batches (``batch_size`` rows, at most ``max_batch_tokens``
padded prompt tokens) with a static KV cache, left padding and greedy decoding; outputs come back
in request order. Evaluation, the agent loop and serving share it.

Prefix caching (:mod:`tooltune.runtime.prefix`, on by default): the part of a prompt before its first
user turn (system text and tool listing) is prefilled once per distinct prefix and kept in an LRU;
each batch row starts from its prefix's KV cache and only the rest of its prompt is prefilled.
Requests are then sorted by the length of that rest. Outputs are the same as without it.

A turn ends at the first stop token (:func:`~tooltune.runtime.model.stop_token_ids`: EOS and the
template's end-of-turn markers) or, for formats with a closing tag (hermes ``</tool_call>``), as
soon as text that cannot start another call block follows a closed block. Stopping at the
closing tag itself, as a plain stop string would, would cut parallel calls (several blocks) down
to the first one; this rule only ends a base model that keeps talking after its call. The text
after the last closed block is then dropped.

Timing: an output's ``latency_ms`` runs from the start of its batch (the prefill of prefixes the
cache lacked, then the ``generate`` call) to the step that produced its last token, so in a batch
it includes the shared prefill (what a caller of a batching server waits). ``tokens_per_s`` of a
run is all generated tokens over the summed wall time of its batches.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tooltune.runtime.model import END_OF_TURN_TOKENS, LoadedModel
from tooltune.runtime.prefix import PrefixCache, PrefixKV, batch_cache, model_scope, prefill, prompt_prefix, supports_prefix_cache
from tooltune.formats.base import CallFormat
from tooltune.formats.chat import chat_setup
from tooltune.tools.catalog import Tool

# Formats whose calls are closed by a tag: (open, close). A turn ends once text that cannot start
# another block follows the last closed one.
CALL_TAGS = {"hermes": ("<tool_call>", "</tool_call>")}
_TAIL_TOKENS = 24  # decoded each step to look for a closed block; a tag plus a few characters fit
_PREFIX_IDS_MEMO = 1024  # distinct prefix texts whose token ids a generator remembers
_log = logging.getLogger(__name__)
MAX_BATCH_TOKENS = 16384
"""Most padded prompt tokens per batch. Attention memory grows with rows x length², and agent-loop
contexts grow every turn: 16 rows of ~3,000 tokens held 13.6 GB on the CPU (SmolLM2-135M, sdpa)."""


@dataclass
class Generation:
    """One generated assistant turn."""

    text: str
    """Decoded output up to (not including) the stop token, special tokens removed."""
    prompt_tokens: int
    new_tokens: int
    """Generated tokens, the stop token included."""
    latency_ms: float
    stopped: bool
    """True when the turn ended by itself (stop token or end of call); False when cut at max_new_tokens."""

    @property
    def truncated(self) -> bool:
        return not self.stopped


@dataclass
class GenerationStats:
    """Timings over many generations."""

    latency_ms_p50: float | None
    latency_ms_p95: float | None
    tokens_per_s: float | None
    new_tokens: int
    wall_s: float


Request = tuple[list[dict[str, Any]], list[Tool] | None]
"""A conversation (OpenAI-shaped messages) and the tools offered for the next turn."""


@dataclass
class Prompt:
    """One rendered prompt to continue, with what its generation needs besides the text."""

    text: str
    prefix: str = ""
    """The start of ``text`` that other prompts share (:func:`~tooltune.runtime.prefix.prompt_prefix`):
    prefilled once and cached when prefix caching is on. ``''``: the whole prompt is prefilled."""
    grammar: str | None = None
    """llguidance grammar the turn is decoded under (:mod:`tooltune.runtime.constrained`), or None."""
    max_new_tokens: int | None = None
    """This prompt's limit, at most the generator's; None: the generator's."""
    streamer: Any = None
    """A ``transformers`` streamer that sees this prompt's tokens as they are made (prompt first)."""


@dataclass
class _Row:
    ids: list[int]
    prefix: tuple[int, ...] = ()
    """The first ids of ``ids`` taken from the prefix cache; () when none."""


class Generator:
    """Greedy, batched generation of the next assistant turn for a :class:`LoadedModel`.

    ``constrained=True`` decodes under the tool-call grammar of each request's offered tools
    (:mod:`tooltune.runtime.constrained`, needs the ``constrained`` extra). ``prefix_cache``: True
    (default) keeps this generator's own :class:`~tooltune.runtime.prefix.PrefixCache`; a cache
    object is shared (the server's, across requests); False prefills every prompt whole."""

    def __init__(self, loaded: LoadedModel, *, max_new_tokens: int = 256, batch_size: int = 8, constrained: bool = False,
                 max_batch_tokens: int = MAX_BATCH_TOKENS, prefix_cache: PrefixCache | bool = True):
        if max_new_tokens < 1 or batch_size < 1 or max_batch_tokens < 1:
            raise ValueError(f"max_new_tokens, batch_size and max_batch_tokens must be >= 1, got {max_new_tokens}, "
                             f"{batch_size} and {max_batch_tokens}")
        self.loaded = loaded
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.constrained = constrained
        if prefix_cache is True:
            prefix_cache = PrefixCache()
        self.prefix_cache = prefix_cache if isinstance(prefix_cache, PrefixCache) and supports_prefix_cache(loaded.model) else None
        self.wall_s = 0.0
        """Summed wall time of every batch so far (prefix prefill and ``generate`` calls)."""
        self.prompt_tokens = 0
        """Prompt tokens of every prompt so far."""
        self.prefill_tokens = 0
        """Of those, the tokens the model actually ran over: prompts less their cached prefixes,
        plus each prefix the cache did not hold yet."""
        self._grammars: dict[tuple[str, ...], str] = {}
        self._prefix_ids: dict[str, list[int]] = {}
        if constrained:
            from tooltune.runtime.constrained import require_llguidance, tool_call_grammar

            require_llguidance()
            tool_call_grammar(self.call_format, [])  # unsupported formats fail here, before any work

    @property
    def call_format(self) -> CallFormat:
        return self.loaded.call_format

    def complete(self, messages: list[dict[str, Any]], tools: list[Tool] | None) -> str:
        """The model's next turn for one conversation, as raw text (the agent loop's interface)."""
        return self.generate([(messages, tools)])[0].text

    def complete_many(self, requests: Sequence[Request]) -> list[str]:
        """The next turn of many conversations, batched (the agent loop drives its runs with it)."""
        return [g.text for g in self.generate(requests)]

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """Generate the next turn of every request; results in request order."""
        return self.generate_prompts([self.prompt(messages, tools) for messages, tools in requests])

    def prompt(self, messages: list[dict[str, Any]], tools: list[Tool] | None) -> Prompt:
        """The :class:`Prompt` of one request: rendered, with its shareable prefix and (constrained) grammar."""
        text = self.loaded.render(messages, tools)
        prefix = prompt_prefix(self.loaded, messages, tools, text) if self.prefix_cache is not None else ""
        return Prompt(text, prefix, self._grammar(tools) if self.constrained else None)

    def generate_prompts(self, prompts: Sequence[str | Prompt], grammars: Sequence[str | None] | None = None, *,
                         streamer: Any = None) -> list[Generation]:
        """Generate from already rendered prompts; results in prompt order.

        ``grammars`` (one per prompt, or None) and ``streamer`` (one prompt only) fill those
        fields of plain-text prompts; see :class:`Prompt`. A streamer sees the same tokens as
        with ``model.generate`` on that prompt alone, and the returned Generation is the same
        as without it."""
        if streamer is not None and len(prompts) != 1:
            raise ValueError(f"a streamer follows one prompt, got {len(prompts)}")
        items = [p if isinstance(p, Prompt) else Prompt(p) for p in prompts]
        if grammars is not None:
            items = [replace(p, grammar=g) for p, g in zip(items, grammars, strict=True)]
        if streamer is not None:
            items = [replace(items[0], streamer=streamer)]
        rows = self._rows(items)
        # Longest remainder first (memory errors show early, little padding where the work is),
        # rows of one prefix together.
        order = sorted(range(len(items)), key=lambda i: (-(len(rows[i].ids) - len(rows[i].prefix)), rows[i].prefix))
        out: list[Generation | None] = [None] * len(items)
        sizes = [(len(r.prefix), len(r.ids) - len(r.prefix)) for r in rows]
        for batch in self._batches(order, sizes):
            generations = self._generate_batch([items[i] for i in batch], [rows[i] for i in batch])
            for i, generation in zip(batch, generations, strict=True):
                out[i] = generation
        return [g for g in out if g is not None]

    def _rows(self, items: list[Prompt]) -> list[_Row]:
        """Token ids of each prompt, and the prefix ids it may take from the cache: only when they
        are exactly its first ids (tokenization can merge across the boundary; then none)."""
        tokenizer = self.loaded.tokenizer
        ids = tokenizer([p.text for p in items], add_special_tokens=False)["input_ids"] if items else []
        if self.prefix_cache is None:
            return [_Row(i) for i in ids]
        new = list(dict.fromkeys(p.prefix for p in items if p.prefix and p.prefix not in self._prefix_ids))
        if len(self._prefix_ids) + len(new) > _PREFIX_IDS_MEMO:
            self._prefix_ids.clear()
        if new:
            self._prefix_ids.update(zip(new, tokenizer(new, add_special_tokens=False)["input_ids"], strict=True))
        rows = []
        for item, full in zip(items, ids, strict=True):
            prefix = self._prefix_ids.get(item.prefix) if item.prefix and item.text.startswith(item.prefix) else None
            shared = prefix is not None and 0 < len(prefix) < len(full) and full[:len(prefix)] == prefix
            rows.append(_Row(full, tuple(prefix) if shared else ()))
        return rows

    def _batches(self, order: list[int], sizes: list[tuple[int, int]]) -> list[list[int]]:
        """``order`` cut into batches of at most ``batch_size`` rows and ``max_batch_tokens`` padded
        prompt tokens: rows x (the batch's longest prefix + its longest remainder); ``sizes`` holds
        each prompt's (cached prefix, remainder) lengths."""
        batches: list[list[int]] = []
        width = (0, 0)
        for i in order:
            prefix, rest = sizes[i]
            grown = (max(width[0], prefix), max(width[1], rest))
            if batches and len(batches[-1]) < self.batch_size and (len(batches[-1]) + 1) * sum(grown) <= self.max_batch_tokens:
                batches[-1].append(i)
                width = grown
            else:
                batches.append([i])
                width = sizes[i]
        return batches

    def _grammar(self, tools: list[Tool] | None) -> str:
        from tooltune.runtime.constrained import tool_call_grammar

        tools = tools or []
        key = tuple(t.hash for t in tools)
        if key not in self._grammars:
            self._grammars[key] = tool_call_grammar(self.call_format, tools)
        return self._grammars[key]

    def _prefixes(self, rows: list[_Row]) -> list[PrefixKV | None]:
        """Each row's cached prefix, prefilled (once per distinct prefix) where the cache lacks it."""
        if self.prefix_cache is None or not any(r.prefix for r in rows):
            return [None] * len(rows)
        scope = model_scope(self.loaded)
        found: dict[tuple[int, ...], PrefixKV] = {}
        for prefix in dict.fromkeys(r.prefix for r in rows if r.prefix):
            entry = self.prefix_cache.get(scope, prefix)
            if entry is None:
                entry = prefill(self.loaded.model, prefix)
                if entry is None:  # a cache layout prefix caching does not handle: prefill whole from now on
                    _log.info("prefix caching is off for %s: its KV cache is not plain full attention", self.loaded.name)
                    self.prefix_cache = None
                    return [None] * len(rows)
                self.prefix_cache.put(scope, entry)
                self.prefill_tokens += len(entry)
            found[prefix] = entry
        return [found[r.prefix] if r.prefix else None for r in rows]

    def _generate_batch(self, items: list[Prompt], rows: list[_Row]) -> list[Generation]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        loaded, tokenizer = self.loaded, self.loaded.tokenizer
        started = time.perf_counter()
        with torch.inference_mode():
            prefixes = self._prefixes(rows)
        width = max((len(p) for p in prefixes if p is not None), default=0)
        rests = [row.ids[len(p):] if p is not None else row.ids for row, p in zip(rows, prefixes, strict=True)]
        prompt_len = width + max(len(r) for r in rests)
        # Row layout: [pad][its prefix] in the cached slots, then [pad][the rest]. The mask hides the
        # pads and generate() takes positions from the mask, so each row's tokens sit at the
        # positions they have in the prompt alone.
        input_ids = torch.full((len(rows), prompt_len), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), prompt_len), dtype=torch.long)
        for r, (prefix, rest) in enumerate(zip(prefixes, rests, strict=True)):
            if prefix is not None:
                input_ids[r, width - len(prefix):width] = torch.tensor(prefix.ids)
                mask[r, width - len(prefix):width] = 1
            input_ids[r, prompt_len - len(rest):] = torch.tensor(rest)
            mask[r, prompt_len - len(rest):] = 1
        self.prompt_tokens += int(mask.sum())
        self.prefill_tokens += sum(len(r) for r in rests)
        input_ids, mask = input_ids.to(loaded.device), mask.to(loaded.device)
        max_new = max(min(p.max_new_tokens or self.max_new_tokens, self.max_new_tokens) for p in items)
        stop_ids = loaded.stop_token_ids
        extra: dict[str, Any] = {}
        if width:
            # transformers' generate() continues from a cache it is given: with the whole input_ids
            # it prefills only the ids past the cache's length, and takes positions from the mask
            # (cumsum - 1), which skips the pads inside a row. So the grammar processor, stopping
            # criterion, streamer and static cache work as without a prefix: no loop of our own.
            extra["cache"] = batch_cache(loaded.model, prefixes, width, prompt_len + max_new)
        config = GenerationConfig(
            max_new_tokens=max_new, do_sample=False, num_beams=1, eos_token_id=stop_ids,
            pad_token_id=tokenizer.pad_token_id, use_cache=True,
            # A preallocated KV cache: the default DynamicCache concatenates every layer's keys and
            # values at each step, which dominated batched decoding on CPU (7.5M-parameter Llama,
            # 32 rows of ~400 tokens: 5.5-8.1 s with it, 3.7-4.0 s static, identical outputs).
            # With cached prefixes the static cache is built here, already holding them.
            # No auto-compilation: shapes change with every batch.
            cache_implementation=None if width else "static", disable_compile=True,
        )
        limits = [min(p.max_new_tokens or max_new, max_new) for p in items]
        turn_end = _TurnEnd(tokenizer, prompt_len, stop_ids, CALL_TAGS.get(self.call_format.name), started,
                            limits if min(limits) < max_new else None)
        processors = LogitsProcessorList()
        if any(p.grammar is not None for p in items):
            from tooltune.runtime.constrained import grammar_processor

            processors.append(grammar_processor(loaded, [p.grammar for p in items]))
        streamer = _RowStreamers([p.streamer for p in items], turn_end) if any(p.streamer for p in items) else None
        with torch.inference_mode():
            output = loaded.model.generate(
                input_ids=input_ids, attention_mask=mask, generation_config=config, logits_processor=processors,
                stopping_criteria=StoppingCriteriaList([turn_end]), streamer=streamer, **extra,
            )
        ended = time.perf_counter()
        self.wall_s += ended - started

        stops = set(stop_ids)
        results = []
        for row in range(len(items)):
            new = output[row, prompt_len:].tolist()[: turn_end.lengths.get(row)]  # rows that ended early are padded
            stop_at = next((k for k, t in enumerate(new) if t in stops), None)
            kept = new if stop_at is None else new[:stop_at]
            text = tokenizer.decode(kept, skip_special_tokens=True)
            text = turn_end.cut(row, text)
            boundary = row in turn_end.boundary_rows
            if boundary:
                text = text[:text.rfind(turn_end.tags[1]) + len(turn_end.tags[1])]
            finished = turn_end.finished.get(row)
            results.append(Generation(
                text=text, prompt_tokens=int(mask[row].sum()),
                new_tokens=len(kept) + (1 if stop_at is not None else 0),
                latency_ms=((finished if finished is not None else ended) - started) * 1000,
                stopped=stop_at is not None or boundary or row in turn_end.text_stop_rows,
            ))
        return results


def stats(generations: Sequence[Generation], wall_s: float) -> GenerationStats:
    """Latency percentiles and throughput of ``generations`` made in ``wall_s`` seconds."""
    latencies = sorted(g.latency_ms for g in generations)
    tokens = sum(g.new_tokens for g in generations)
    return GenerationStats(
        latency_ms_p50=_percentile(latencies, 50), latency_ms_p95=_percentile(latencies, 95),
        tokens_per_s=tokens / wall_s if wall_s > 0 and generations else None, new_tokens=tokens, wall_s=wall_s,
    )


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


class _TurnEnd:
    """Stopping criterion that records when each row finished, and ends rows whose call block
    is closed and followed by text that cannot open another (see the module docstring)."""

    def __init__(self, tokenizer: Any, prompt_len: int, stop_ids: list[int], tags: tuple[str, str] | None, started: float,
                 limits: list[int] | None = None):
        self.tokenizer = tokenizer
        self.limits = limits
        """Per row, most new tokens (rows of one batch may ask for fewer than the batch makes)."""
        self.prompt_len = prompt_len
        self.stop_ids = set(stop_ids)
        self.tags = tags or ("", "")
        self.check_tags = tags is not None
        self.started = started
        self.finished: dict[int, float | None] = {}
        """Row -> time its last token was generated (None while it runs)."""
        self.lengths: dict[int, int] = {}
        """Row -> generated tokens when it ended (stop token included)."""
        self.boundary_rows: set[int] = set()
        # End-of-turn markers the template writes but the vocabulary lacks as one token (tooltune's
        # ChatML template on Gemma, say): the model writes them as several tokens, so they are
        # matched as text.
        vocab = tokenizer.get_vocab()
        template = chat_setup(tokenizer).template
        self.text_stops = [t for t in END_OF_TURN_TOKENS if t not in vocab and t in template]
        self.text_stop_rows: set[int] = set()

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        now = time.perf_counter()
        batch = input_ids.shape[0]
        for row in range(batch):
            self.finished.setdefault(row, None)
        done = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        last = input_ids[:, -1].tolist()
        for row in range(batch):
            if self.finished[row] is not None:
                done[row] = True
                continue
            if last[row] in self.stop_ids:
                self.finished[row], self.lengths[row] = now, input_ids.shape[1] - self.prompt_len
            elif self.text_stops and self._text_stop(input_ids[row, max(self.prompt_len, input_ids.shape[1] - _TAIL_TOKENS):]):
                self.finished[row], self.lengths[row] = now, input_ids.shape[1] - self.prompt_len
                self.text_stop_rows.add(row)
                done[row] = True
            elif self.check_tags and self._after_block(input_ids[row, max(self.prompt_len, input_ids.shape[1] - _TAIL_TOKENS):]):
                self.finished[row], self.lengths[row] = now, input_ids.shape[1] - self.prompt_len
                self.boundary_rows.add(row)
                done[row] = True
            elif self.limits is not None and input_ids.shape[1] - self.prompt_len >= self.limits[row]:
                self.finished[row], self.lengths[row] = now, self.limits[row]
                done[row] = True
        return done

    def _text_stop(self, tail_ids: Any) -> bool:
        tail = self.tokenizer.decode(tail_ids.tolist(), skip_special_tokens=False)
        return any(stop in tail for stop in self.text_stops)

    def cut(self, row: int, text: str) -> str:
        """``text`` up to the first textual end-of-turn marker of a row that ended on one."""
        if row not in self.text_stop_rows:
            return text
        return text[:min((text.find(s) for s in self.text_stops if s in text), default=len(text))]

    def _after_block(self, tail_ids: Any) -> bool:
        opening, closing = self.tags
        tail = self.tokenizer.decode(tail_ids.tolist(), skip_special_tokens=True)
        end = tail.rfind(closing)
        if end == -1:
            return False
        rest = tail[end + len(closing):].lstrip()
        return bool(rest) and not (opening.startswith(rest) or rest.startswith(opening))


class _RowStreamers:
    """Hands each batch row's tokens to that row's own streamer, as ``generate`` would for the row
    alone: its prompt first, then each new token up to its last (not the pads that follow)."""

    def __init__(self, streamers: list[Any], turn_end: _TurnEnd):
        self.streamers, self.turn_end = streamers, turn_end
        self.closed: set[int] = set()

    def put(self, value: Any) -> None:
        for row, streamer in enumerate(self.streamers):
            if streamer is None or row in self.closed:
                continue
            streamer.put(value[row:row + 1])
            if value.dim() == 1 and self.turn_end.finished.get(row) is not None:
                self.closed.add(row)

    def end(self) -> None:
        for streamer in self.streamers:
            if streamer is not None:
                streamer.end()
