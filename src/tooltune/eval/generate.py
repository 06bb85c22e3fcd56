"""Batched greedy generation of assistant turns: prompts in, raw output text and timings out.

:class:`Generator` wraps a :class:`~tooltune.eval.model.LoadedModel`. Each request is a
conversation plus its offered tools, rendered with :meth:`LoadedModel.render` (``render_chat``
with the generation prompt). Requests are sorted by prompt length, so each batch pads little,
and run through ``model.generate`` in batches (``batch_size`` rows, at most ``max_batch_tokens``
padded prompt tokens) with the KV cache, left padding and greedy
decoding; outputs come back in request order. Evaluation, the agent loop and serving share it.

A turn ends at the first stop token (:func:`~tooltune.eval.model.stop_token_ids`: EOS and the
template's end-of-turn markers) or, for formats with a closing tag (hermes ``</tool_call>``), as
soon as text that cannot start another call block follows a closed block. Stopping at the
closing tag itself, as a plain stop string would, would cut parallel calls (several blocks) down
to the first one; this rule only ends a base model that keeps talking after its call. The text
after the last closed block is then dropped.

Timing: an output's ``latency_ms`` runs from the start of its batch's ``generate`` call to the
step that produced its last token, so in a batch it includes the shared prefill (what a caller
of a batching server waits). ``tokens_per_s`` of a run is all generated tokens over the summed
wall time of its ``generate`` calls.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tooltune.eval.model import END_OF_TURN_TOKENS, LoadedModel
from tooltune.formats.base import CallFormat
from tooltune.formats.chat import chat_setup
from tooltune.tools.catalog import Tool

# Formats whose calls are closed by a tag: (open, close). A turn ends once text that cannot start
# another block follows the last closed one.
CALL_TAGS = {"hermes": ("<tool_call>", "</tool_call>")}
_TAIL_TOKENS = 24  # decoded each step to look for a closed block; a tag plus a few characters fit
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


class Generator:
    """Greedy, batched generation of the next assistant turn for a :class:`LoadedModel`.

    ``constrained=True`` decodes under the tool-call grammar of each request's offered tools
    (:mod:`tooltune.eval.constrained`, needs the ``constrained`` extra)."""

    def __init__(self, loaded: LoadedModel, *, max_new_tokens: int = 256, batch_size: int = 8, constrained: bool = False,
                 max_batch_tokens: int = MAX_BATCH_TOKENS):
        if max_new_tokens < 1 or batch_size < 1 or max_batch_tokens < 1:
            raise ValueError(f"max_new_tokens, batch_size and max_batch_tokens must be >= 1, got {max_new_tokens}, "
                             f"{batch_size} and {max_batch_tokens}")
        self.loaded = loaded
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.constrained = constrained
        self.wall_s = 0.0
        """Summed wall time of every ``generate`` call so far."""
        self._grammars: dict[tuple[str, ...], str] = {}
        if constrained:
            from tooltune.eval.constrained import require_llguidance, tool_call_grammar

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
        prompts = [self.loaded.render(messages, tools) for messages, tools in requests]
        grammars = [self._grammar(tools) for _, tools in requests] if self.constrained else None
        return self.generate_prompts(prompts, grammars)

    def generate_prompts(self, prompts: Sequence[str], grammars: Sequence[str | None] | None = None, *,
                         streamer: Any = None) -> list[Generation]:
        """Generate from already rendered prompts (``grammars``: one per prompt, or None).

        ``streamer`` (one prompt only) is handed to ``model.generate``: a ``transformers``
        streamer that sees each new token as it is made (serving streams with it); the returned
        Generation is the same as without it."""
        if streamer is not None and len(prompts) != 1:
            raise ValueError(f"a streamer follows one prompt, got {len(prompts)}")
        tokenizer = self.loaded.tokenizer
        lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])  # longest first: memory errors show early
        out: list[Generation | None] = [None] * len(prompts)
        for batch in self._batches(order, lengths):
            rows = self._generate_batch([prompts[i] for i in batch], [grammars[i] for i in batch] if grammars else None,
                                        streamer)
            for i, generation in zip(batch, rows, strict=True):
                out[i] = generation
        return [g for g in out if g is not None]

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """``order`` (longest prompt first) cut into batches of at most ``batch_size`` rows and
        ``max_batch_tokens`` padded prompt tokens (rows x the batch's longest prompt)."""
        batches: list[list[int]] = []
        for i in order:
            if batches and len(batches[-1]) < self.batch_size and \
                    (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= self.max_batch_tokens:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _grammar(self, tools: list[Tool] | None) -> str:
        from tooltune.eval.constrained import tool_call_grammar

        tools = tools or []
        key = tuple(t.hash for t in tools)
        if key not in self._grammars:
            self._grammars[key] = tool_call_grammar(self.call_format, tools)
        return self._grammars[key]

    def _generate_batch(self, prompts: list[str], grammars: list[str | None] | None, streamer: Any = None) -> list[Generation]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        loaded, tokenizer = self.loaded, self.loaded.tokenizer
        inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(loaded.device)
        prompt_len = inputs["input_ids"].shape[1]
        stop_ids = loaded.stop_token_ids
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1, eos_token_id=stop_ids,
            pad_token_id=tokenizer.pad_token_id, use_cache=True,
            # A preallocated KV cache: the default DynamicCache concatenates every layer's keys and
            # values at each step, which dominated batched decoding on CPU (7.5M-parameter Llama,
            # 32 rows of ~400 tokens: 5.5-8.1 s with it, 3.7-4.0 s static, identical outputs).
            # No auto-compilation: shapes change with every batch.
            cache_implementation="static", disable_compile=True,
        )
        started = time.perf_counter()
        turn_end = _TurnEnd(tokenizer, prompt_len, stop_ids, CALL_TAGS.get(self.call_format.name), started)
        processors = LogitsProcessorList()
        if grammars is not None:
            from tooltune.eval.constrained import grammar_processor

            processors.append(grammar_processor(loaded, grammars))
        with torch.inference_mode():
            output = loaded.model.generate(
                **inputs, generation_config=config, logits_processor=processors,
                stopping_criteria=StoppingCriteriaList([turn_end]), streamer=streamer,
            )
        ended = time.perf_counter()
        self.wall_s += ended - started

        mask = inputs["attention_mask"]
        stops = set(stop_ids)
        results = []
        for row in range(len(prompts)):
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

    def __init__(self, tokenizer: Any, prompt_len: int, stop_ids: list[int], tags: tuple[str, str] | None, started: float):
        self.tokenizer = tokenizer
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
