"""Grammar-constrained decoding: every generated turn is a well-formed call of an offered tool,
or plain text.

Built on **llguidance** (``pip install 'tooltune[constrained]'``): a Rust library with Python
wheels (abi3, no dependencies, CPU-only mask computation) that vLLM, SGLang and llama.cpp use for
structured output. It takes a Lark grammar with JSON Schemas inlined (``%json {...}``), so the
turn grammar is written once, and computes each step's allowed-token mask in microseconds.

The grammar of one turn, for the ``hermes`` format (the built-in template's and Qwen's)::

    start: TEXT | calls
    calls: call ("\\n" call)*
    call:  "<tool_call>\\n" %json{anyOf: one {"name": const, "arguments": params} per tool} "\\n</tool_call>"
    TEXT:  any text that does not contain "<tool_call>"

- **Abstaining stays possible.** ``TEXT`` is the no-call / clarifying answer; it may be empty.
  A call starts the turn, or the turn is text: prose before a call (which the builtin template
  tells the model not to write) is not allowed, so a turn is never half text, half call.
- **Arguments follow each tool's JSON Schema**: types, enums, ``required``; parameters outside
  ``properties`` are refused (``additionalProperties: false`` unless the schema allows more).
  Local ``$ref`` s (``#/$defs/…``, recursive ones too) resolve inside each tool's own schema.
  Keys come in the schema's property order, and JSON uses the separators ``tojson`` writes
  (``", "`` and ``": "``), the bytes the model was trained on. Keywords llguidance does not
  implement (``format``, ``pattern`` with look-arounds …) are ignored (``lenient``) rather than
  failing the tool; a schema it cannot compile at all falls back to "any JSON object".
- The turn ends where the grammar allows it and the model picks an end-of-turn token. An output
  cut off by ``max_new_tokens`` inside a call is still malformed: constraints make outputs
  well-formed, not short. The runner records such outputs as truncated.

Only ``hermes`` has a grammar so far; other formats raise :class:`ConfigError` naming it.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

from transformers import LogitsProcessor

from tooltune.errors import ConfigError
from tooltune.formats.base import CallFormat
from tooltune.tools.catalog import Tool
from tooltune.tools.schema_rules import root_schema

EXTRA = "constrained"
# Separators as json.dumps / jinja's tojson write them: what hermes.render puts in training data.
_JSON_STYLE = {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False, "lenient": True}
_TEXT_WITHOUT_CALLS = r'TEXT: /(?s:.*)/ & ~/(?s:.*<tool_call>.*)/'
_LL_TOKENIZERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def require_llguidance() -> Any:
    """The ``llguidance`` module, or a ConfigError saying which extra to install."""
    try:
        import llguidance
        import llguidance.hf  # noqa: F401 - the HF tokenizer bridge
    except ImportError as e:
        raise ConfigError(
            f"constrained: grammar-constrained decoding needs llguidance; install it with "
            f"pip install 'tooltune[{EXTRA}]'."
        ) from e
    return llguidance


def tool_call_grammar(fmt: CallFormat, tools: list[Tool], *, allow_text: bool = True, parallel: bool = True) -> str:
    """The llguidance grammar (Lark text) of one assistant turn in ``fmt`` offering ``tools``.

    ``allow_text=False`` drops the plain-text branch: the turn must be one or more calls
    (OpenAI's ``tool_choice="required"``). ``parallel=False`` allows exactly one call, after which
    only the end of the turn may follow (a named ``tool_choice``, ``parallel_tool_calls: false``):
    a model free to open a second block keeps going until ``max_tokens`` cuts the turn."""
    if fmt.name != "hermes":
        raise ConfigError(
            f"constrained: no grammar for the {fmt.name!r} tool-call format yet (only hermes); "
            "evaluate without --constrained."
        )
    if not tools:
        if not allow_text:
            raise ConfigError("constrained: a call is required but no tool is offered.")
        return f"start: TEXT\n{_TEXT_WITHOUT_CALLS}\n"
    schema = {"anyOf": [_call_schema(t) for t in tools], "x-guidance": _JSON_STYLE}
    more = ' ("\\n" call)*' if parallel else ""
    return (
        f"start: {'TEXT | calls' if allow_text else 'calls'}\n"
        f"calls: call{more}\n"
        f'call: "<tool_call>\\n" body "\\n</tool_call>"\n'
        f"body: %json {json.dumps(schema, ensure_ascii=False)}\n"
        f"{_TEXT_WITHOUT_CALLS}\n"
    )


def _call_schema(tool: Tool) -> dict[str, Any]:
    params = dict(root_schema(tool.parameters)) if isinstance(tool.parameters, dict) else {}
    if not params or params.get("type") not in (None, "object"):
        params = {"type": "object"}
    if "properties" in params and "additionalProperties" not in params:
        params["additionalProperties"] = False
    params.setdefault("type", "object")
    # The parameters sit inside the turn's schema, so '#/$defs/…' would point at the turn's root;
    # an $id makes them a resource of their own, where local refs (recursive ones too) resolve.
    params.setdefault("$id", f"urn:tooltune:tool:{tool.hash}")
    if not _compiles(params):
        params = {"type": "object"}
    return {"type": "object", "properties": {"name": {"const": tool.name}, "arguments": params},
            "required": ["name", "arguments"], "additionalProperties": False}


def _compiles(schema: dict[str, Any]) -> bool:
    llguidance = require_llguidance()
    grammar = llguidance.LLMatcher.grammar_from_json_schema({**schema, "x-guidance": _JSON_STYLE})
    is_error, _ = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    return not is_error


def ll_tokenizer(tokenizer: Any, vocab_size: int, stop_ids: list[int]) -> Any:
    """llguidance's view of ``tokenizer`` (about a second to build for a large vocabulary; cached
    per tokenizer). ``stop_ids`` are the tokens allowed where the grammar may end."""
    llguidance = require_llguidance()
    key = (vocab_size, tuple(stop_ids))
    cached = _LL_TOKENIZERS.get(tokenizer)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        ll = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=list(stop_ids))
    except ValueError as e:
        raise ConfigError(f"constrained: {e} (llguidance reads fast Hugging Face tokenizers only).") from e
    _LL_TOKENIZERS[tokenizer] = (key, ll)
    return ll


def grammar_processor(loaded: Any, grammars: list[str | None]) -> GrammarLogitsProcessor:
    """A logits processor constraining each batch row of ``loaded``'s generation to its grammar."""
    vocab_size = _vocab_size(loaded.model)
    ll_tok = ll_tokenizer(loaded.tokenizer, vocab_size, loaded.stop_token_ids)
    return GrammarLogitsProcessor(ll_tok, grammars, vocab_size)


def _vocab_size(model: Any) -> int:
    """Rows of the output head: can exceed the tokenizer's vocabulary (padded embeddings)."""
    head = model.get_output_embeddings()
    return int(head.weight.shape[0]) if head is not None else int(model.config.get_text_config().vocab_size)


class GrammarLogitsProcessor(LogitsProcessor):
    """A ``transformers`` logits processor holding one grammar matcher per batch row.

    Each step it feeds every row's newest token to that row's matcher and masks the logits of
    tokens the grammar does not allow next. A row without a grammar (``None``) is left alone;
    rows that have finished are skipped (``generate`` pads them)."""

    def __init__(self, ll_tok: Any, grammars: list[str | None], vocab_size: int):
        llguidance = require_llguidance()
        self._llguidance = llguidance
        self.vocab_size = vocab_size
        self.matchers = [llguidance.LLMatcher(ll_tok, g, log_level=0) if g is not None else None for g in grammars]
        for i, m in enumerate(self.matchers):
            if m is not None and m.is_error():
                raise ConfigError(f"constrained: grammar of batch row {i} does not compile: {m.get_error()}")
        self._executor = llguidance.LLExecutor()
        self._prompt_len: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch
        from llguidance.torch import allocate_token_bitmask, fill_next_token_bitmask_par

        if self._prompt_len is None:
            self._prompt_len = input_ids.shape[1]
        elif input_ids.shape[1] > self._prompt_len:
            for row, m in enumerate(self.matchers):
                if m is not None and not m.is_stopped() and not m.is_error():
                    m.consume_token(int(input_ids[row, -1]))
        active = [(m, row) for row, m in enumerate(self.matchers)
                  if m is not None and not m.is_stopped() and not m.is_error()]
        if not active:
            return scores
        bitmask = allocate_token_bitmask(len(self.matchers), self.vocab_size)
        fill_next_token_bitmask_par(self._executor, active, bitmask)
        allowed = _unpack(bitmask, scores.shape[-1]).to(scores.device)
        rows = torch.tensor([row for _, row in active], device=scores.device)
        masked = scores.clone()
        masked[rows] = scores[rows].masked_fill(~allowed[rows], float("-inf"))
        return masked


def _unpack(bitmask: Any, vocab: int) -> Any:
    """(batch, ceil(V/32)) int32 words → (batch, vocab) bool, bit i of word w = token 32w+i."""
    import torch

    shifts = torch.arange(32, dtype=torch.int32)
    bits = (bitmask.unsqueeze(-1) >> shifts) & 1
    flat = bits.reshape(bitmask.shape[0], -1).bool()
    if flat.shape[1] >= vocab:
        return flat[:, :vocab]
    pad = torch.zeros(bitmask.shape[0], vocab - flat.shape[1], dtype=torch.bool)
    return torch.cat([flat, pad], dim=1)
