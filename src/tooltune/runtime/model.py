"""Load a model for evaluation, serving or export: one :class:`LoadedModel`, whatever the kind of model.

``load_model(model, adapter=None)`` accepts:

- a **base model**: a Hugging Face id or a local directory with ``config.json``;
- a **run directory** from ``tooltune train``: a LoRA run (``adapter_config.json``: the base
  named in it is loaded and the adapter applied with PEFT) or a full-weights run (``config.json``
  and weights). Either way the tokenizer comes from the run dir, which holds the chat template
  the run was trained with;
- a **prompt-only model directory** (``prompt_model.json``, written by the prompt backend of
  ``tooltune.train.fewshot``): ``{"kind": "prompt", "base_model": ..., "system": ...,
  "few_shot": [...]}``. Its base is loaded as above and its system prompt and few-shot messages
  are put before every conversation rendered with :meth:`LoadedModel.render`;
- ``adapter=RUN_DIR`` on top of any of these: a LoRA run is applied to ``model``; a full-weights
  run replaces it (its weights are the whole model);
- an **export directory** from ``tooltune export``: a merged export is a plain Hugging Face
  directory (a base model); an ONNX or GGUF export is run by onnxruntime or llama.cpp
  (:mod:`tooltune.runtime.exported`; a GGUF falls back to transformers' ``gguf_file=`` loader when
  ``llama-cpp-python`` is not installed), with the tokenizer saved beside it.

Prompts are always rendered through :func:`tooltune.formats.chat.render_chat` and outputs read by
:func:`~tooltune.formats.chat.call_format_for` of the loaded tokenizer: the bytes and the parser
of training. It sits in ``runtime/``, below evaluation, serving and export, which all load through it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from tooltune.errors import ConfigError, DocumentError
from tooltune.formats.base import CallFormat
from tooltune.formats.chat import call_format_for, render_chat
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.runtime.precision import precision_for
from tooltune.safeload import read_json

PROMPT_MODEL_FILE = "prompt_model.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ModelKind = Literal["base", "adapter", "full", "prompt", "onnx", "gguf"]

# End-of-turn markers of common chat templates. Generation stops on any of them that the
# tokenizer knows as a single token, besides the tokenizer's and generation config's EOS ids: a
# model that skips its EOS and opens a new turn (``<|im_start|>``) has finished its own.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")


@dataclass
class LoadedModel:
    """A tokenizer and model ready to generate, with the parser of its output.

    ``system`` and ``few_shot`` are set for prompt-only models: :meth:`messages_for` puts them
    before a conversation. ``model`` is a ``transformers`` causal LM in eval mode (a merged or
    unmerged ``PeftModel`` for LoRA runs)."""

    model: Any
    tokenizer: Any
    kind: ModelKind
    name: str = ""
    base_model: str = ""
    adapter: str | None = None
    system: str | None = None
    few_shot: list[dict[str, Any]] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)

    @property
    def call_format(self) -> CallFormat:
        """The format the model's chat template writes calls in: the parser for its output."""
        return call_format_for(self.tokenizer)

    @property
    def device(self) -> Any:
        device = getattr(self.model, "device", None)  # ONNX and llama.cpp runtimes have no parameters
        return device if device is not None else next(self.model.parameters()).device

    def messages_for(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` with the prompt-only model's system prompt and few-shot turns in front.

        The model's system prompt comes first; a system message of the conversation itself is
        appended to it (separated by a blank line), so neither is lost. Few-shot messages follow
        the system turn and precede the conversation."""
        if not self.system and not self.few_shot:
            return list(messages)
        rest = list(messages)
        system = self.system or ""
        if rest and rest[0].get("role") == "system":
            own = str(rest.pop(0).get("content") or "")
            system = f"{system}\n\n{own}" if system and own else system or own
        head = [{"role": "system", "content": system}] if system else []
        return head + [dict(m) for m in self.few_shot] + rest

    def render(self, messages: list[dict[str, Any]], tools: ToolCatalog | list[Tool] | list[dict[str, Any]] | None) -> str:
        """The prompt for the assistant's next turn: :func:`render_chat` with the generation prompt."""
        return render_chat(self.tokenizer, self.messages_for(messages), tools, add_generation_prompt=True)

    def describe(self) -> dict[str, Any]:
        """What was loaded, for run records (``run.json``)."""
        return {"model": self.name, "kind": self.kind, "base_model": self.base_model, "adapter": self.adapter,
                "call_format": self.call_format.name, "prompt_prefix_messages": len(self.messages_for([]))}


class PromptModel(BaseModel):
    """The contents of ``prompt_model.json``, a prompt-only model: what goes before every
    conversation. The prompt backend (:mod:`tooltune.train.fewshot`) writes it; everything that
    reads one goes through :func:`read_prompt_model`."""

    kind: Literal["prompt"] = "prompt"
    base_model: str = Field(description="Hugging Face id or directory of the model that is prompted.")
    system: str | None = Field(None, description="The system prompt: tool-use rules, then domain rules.")
    few_shot: list[dict[str, Any]] = Field(default_factory=list, description="OpenAI-shaped messages, in order.")

    @field_validator("few_shot", mode="before")
    @classmethod
    def _no_messages(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("few_shot")
    @classmethod
    def _messages_have_roles(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not all("role" in m for m in value):
            raise ValueError("expected a list of OpenAI-shaped messages (objects with a role)")
        return value

    def prefix(self) -> list[dict[str, Any]]:
        """The messages put before a conversation (a conversation's own system prompt is appended
        to :attr:`system` by the loader; see ``LoadedModel.messages_for``)."""
        head = [{"role": "system", "content": self.system}] if self.system is not None else []
        return [*head, *self.few_shot]


def read_prompt_model(path: str | Path) -> PromptModel:
    """The prompt-only model at ``path`` (its directory, or its ``prompt_model.json``). A relative
    ``base_model`` that exists next to the file is taken from there. Raises :class:`ConfigError`
    naming the file and every bad field."""
    path = Path(path)
    file = path / PROMPT_MODEL_FILE if path.is_dir() else path
    try:
        data = read_json(file)
    except DocumentError as e:
        raise ConfigError(f"cannot read the prompt-only model: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a JSON object with kind, base_model, system and few_shot.")
    try:
        spec = PromptModel.model_validate(data)
        problems = [] if spec.base_model else ["base_model: empty"]
    except ValidationError as e:
        problems = [f"{'.'.join(map(str, err['loc']))}: {err['msg'].removeprefix('Value error, ')}" for err in e.errors()]
    if problems:
        raise ConfigError(f"{file}: " + "; ".join(problems) + ". A prompt-only model needs base_model (the Hugging "
                          "Face id or directory of the model to prompt) and may have kind \"prompt\", a system "
                          "string and few_shot messages.")
    base = spec.base_model
    if not Path(base).is_absolute() and (file.parent / base).exists():
        spec = spec.model_copy(update={"base_model": str(file.parent / base)})  # a base stored next to the file
    return spec


def load_model(
    model: str | Path,
    adapter: str | Path | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    merge_adapter: bool = True,
) -> LoadedModel:
    """Load ``model`` (base id/path or ``pypi:NAME`` spec, run dir, or prompt-only dir),
    optionally with ``adapter``.

    ``device``: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` …
    ``dtype``: ``"auto"`` (bf16 where it is faster here: :mod:`tooltune.runtime.precision`), ``"fp32"``,
    ``"bf16"``, ``"fp16"``.
    ``merge_adapter`` folds a LoRA adapter into the base weights (faster generation); serving
    that swaps adapters passes False. Raises :class:`ConfigError` naming what could not be loaded.
    """
    from tooltune.runtime.names import resolve_model_name
    from tooltune.runtime.quiet import settle_transformers

    settle_transformers()
    torch_device = _placement(device, dtype)
    model = resolve_model_name(str(model))
    path = Path(model)
    if (path / PROMPT_MODEL_FILE).is_file():
        spec = read_prompt_model(path)
        loaded = load_model(spec.base_model, adapter, device=device, dtype=dtype, merge_adapter=merge_adapter)
        loaded.kind, loaded.name = "prompt", str(model)
        loaded.system, loaded.few_shot = spec.system, spec.few_shot
        return loaded

    exported = _load_export(path, adapter)
    if exported is not None:
        return exported

    if path.is_dir() and (path / ADAPTER_CONFIG_FILE).is_file():  # a LoRA run dir given as the model
        if adapter is not None:
            raise ConfigError(f"model: {model} is itself an adapter run; pass its base as the model and the run as "
                              "--adapter, or pass the run alone.")
        base = _adapter_base(path)
        return load_model(base, path, device=device, dtype=dtype, merge_adapter=merge_adapter)

    kind: ModelKind = "base"
    weights, tokenizer_source = str(model), str(model)
    adapter_dir = Path(adapter) if adapter is not None else None
    if adapter_dir is not None:
        if not adapter_dir.is_dir():
            raise ConfigError(f"adapter: {adapter} is not a directory; pass a run directory from `tooltune train`.")
        if (adapter_dir / ADAPTER_CONFIG_FILE).is_file():
            kind = "adapter"
        elif (adapter_dir / "config.json").is_file():
            kind, weights = "full", str(adapter_dir)  # full fine-tune: the run's weights are the model
        else:
            raise ConfigError(f"adapter: {adapter} holds neither {ADAPTER_CONFIG_FILE} (LoRA run) nor config.json "
                              "(full-weights run); pass a run directory from `tooltune train`.")
        if has_tokenizer(adapter_dir):
            tokenizer_source = str(adapter_dir)  # the template the run was trained with

    tokenizer = load_tokenizer(tokenizer_source)
    lm = _load_causal_lm(weights, _torch_dtype(dtype, torch_device, weights), "adapter" if kind == "full" else "model")
    if kind == "adapter":
        lm = _apply_adapter(lm, adapter_dir, merge_adapter)
    lm.to(torch_device)
    lm.eval()
    return LoadedModel(
        model=lm, tokenizer=tokenizer, kind=kind, name=str(model), base_model=str(model),
        adapter=str(adapter) if adapter is not None else None, stop_token_ids=stop_token_ids(tokenizer, lm),
    )


def stop_token_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """Token ids that end the assistant's turn: the EOS ids of the tokenizer and of the model's
    generation config, plus the end-of-turn markers in :data:`END_OF_TURN_TOKENS` the vocabulary
    holds as single tokens."""
    ids: list[int] = []
    candidates: list[Any] = [tokenizer.eos_token_id]
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        eos = generation_config.eos_token_id
        candidates += eos if isinstance(eos, list) else [eos]
    vocab = tokenizer.get_vocab()
    candidates += [vocab.get(token) for token in END_OF_TURN_TOKENS]
    for token_id in candidates:
        if isinstance(token_id, int) and token_id not in ids:
            ids.append(token_id)
    return ids


# -- helpers --------------------------------------------------------------------------------


_DTYPES = ("fp32", "bf16", "fp16")


def _placement(device: str, dtype: str) -> Any:
    """The torch device; checks ``dtype`` too, before anything is loaded."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} asked for, but torch sees no CUDA GPU; use device='cpu' or 'auto'.")
    if dtype != "auto" and dtype not in _DTYPES:
        raise ConfigError(f"dtype: {dtype!r} is not one of auto, {', '.join(_DTYPES)}.")
    return torch.device(device)


def _torch_dtype(dtype: str, device: Any, weights: str) -> Any:
    """``dtype`` for the model at ``weights``: ``auto`` is bf16 only where it is faster for this
    model's width on this machine (tooltune.runtime.precision)."""
    import torch

    chosen = precision_for(dtype, weights, device.type)
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[chosen]


def _adapter_base(run_dir: Path) -> str:
    """The base model a LoRA run was trained on: adapter_config.json, else the run's manifest."""
    try:
        base = json.loads((run_dir / ADAPTER_CONFIG_FILE).read_text()).get("base_model_name_or_path")
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{run_dir / ADAPTER_CONFIG_FILE}: cannot read it: {e}") from e
    if not base:
        try:
            base = json.loads((run_dir / "manifest.json").read_text())["base_model"]["id"]
        except (OSError, ValueError, KeyError, TypeError):
            base = None
    if not base:
        raise ConfigError(f"{run_dir}: the adapter does not name its base model; pass it as --model with --adapter {run_dir}.")
    return str(base)


def _load_export(path: Path, adapter: str | Path | None) -> LoadedModel | None:
    """An ONNX or GGUF export directory loaded with its runtime; None for anything else."""
    if not (path / "export.json").is_file():
        return None
    from tooltune.runtime.exported import load_runtime_model, read_export_info

    info = read_export_info(path)
    if info is None or info.kind == "merged":
        return None  # a plain Hugging Face directory
    if adapter is not None:
        raise ConfigError(f"adapter: {path} is a {info.kind} export, with any adapter already merged in; pass it alone.")
    tokenizer = load_tokenizer(str(path))
    lm = load_runtime_model(path, info.kind, info.details)
    return LoadedModel(model=lm, tokenizer=tokenizer, kind=info.kind, name=str(path), base_model=info.base_model,
                       stop_token_ids=stop_token_ids(tokenizer, lm))


def has_tokenizer(directory: Path) -> bool:
    """Whether ``directory`` holds a saved tokenizer (a run's holds the template it was trained with)."""
    return (directory / "tokenizer.json").is_file() or (directory / "tokenizer_config.json").is_file()


def load_tokenizer(source: str) -> Any:
    """The tokenizer of ``source`` (an id or directory) set up for batched generation."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise ConfigError(f"model: cannot load the tokenizer of {source!r}: {e}") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Batched generation appends new tokens on the right, so prompts must be padded on the left.
    tokenizer.padding_side = "left"
    return tokenizer


def _load_causal_lm(source: str, dtype: Any, field_name: str) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{field_name}: cannot load {source!r}: {e}") from e


def _apply_adapter(model: Any, adapter_dir: Path, merge: bool) -> Any:
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    except (OSError, ValueError, RuntimeError) as e:
        raise ConfigError(f"adapter: cannot apply {adapter_dir} to the base model: {e}. Check that the run was "
                          "trained on this base (see its manifest.json).") from e
    return peft_model.merge_and_unload() if merge else peft_model
