"""Read and run exports: ``export.json`` and the ONNX and GGUF models behind the interface evaluation
and serving already call.

The writers are in :mod:`tooltune.export`, above; what both sides must agree on (the manifest,
the file names, the ONNX graph's inputs and outputs) lives here, so loading never imports export.

:func:`~tooltune.runtime.model.load_model` on an export directory returns a ``LoadedModel`` whose
``model`` is one of the classes here. Each has the part of a transformers model that
:class:`~tooltune.runtime.generate.Generator` uses: ``generate(input_ids, attention_mask,
generation_config, logits_processor, stopping_criteria)`` with greedy decoding, the
``generation_config`` saved with the export, and ``device``. Prompts are still rendered by
``render_chat`` and tokenized by the export's own copy of the source tokenizer, and outputs read
by the same parser, so an export is scored exactly as its source is.

- :class:`OnnxCausalLM`: onnxruntime, the KV cache carried between steps as the graph's
  ``present`` outputs, bound back as the next step's inputs without a copy through numpy
  (IOBinding; the graph is written by :mod:`tooltune.export.onnx`).
- :class:`LlamaCppCausalLM`: llama.cpp through ``llama-cpp-python`` (one context per row of a
  batch, each with its own KV cache; the model file is memory-mapped once by the OS).
- Without ``llama-cpp-python`` (or with ``TOOLTUNE_GGUF_RUNTIME=transformers``) a GGUF export is
  loaded by transformers (``gguf_file=``), which dequantizes it into a torch model: the GGUF's
  weights, run by PyTorch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tooltune.errors import ConfigError

EXPORT_FILE = "export.json"
ExportKind = Literal["merged", "gguf", "onnx"]
Quantize = Literal["int8"]
GGUF_FILE = "model.gguf"
ONNX_FILE = "model.onnx"


class ExportInfo(BaseModel):
    """``export.json``: what an export directory holds and where it came from."""

    kind: ExportKind
    quantize: Quantize | None = None
    source: str = Field(description="The source as given.")
    source_kind: str = Field(description="What the source was loaded as: base, adapter (merged into its base) or full.")
    base_model: str = ""
    files: list[str] = Field(description="The model files of the export (besides tokenizer and export.json).")
    call_format: str = Field(description="Parser of the model's output, as tooltune detects it from the chat template.")
    created_at: str
    seconds: float = Field(description="Wall time of the export.")
    details: dict[str, Any] = Field(default_factory=dict, description="Kind-specific facts (ONNX inputs, GGUF file type).")


def read_export_info(directory: Path) -> ExportInfo | None:
    """The ``export.json`` of an export directory; None when ``directory`` is not an export."""
    path = Path(directory) / EXPORT_FILE
    if not path.is_file():
        return None
    try:
        return ExportInfo.model_validate_json(path.read_text())
    except ValueError as e:
        raise ConfigError(f"{path}: not a tooltune export manifest ({e}); re-run `tooltune export`.") from e


# The ONNX graph's interface: export.onnx traces it with these names, OnnxCausalLM feeds them.
def cache_shape(config: Any) -> dict[str, int]:
    """Layers, KV heads and head size of a decoder config: the shapes of the past inputs."""
    heads = config.num_attention_heads
    return {
        "layers": int(config.num_hidden_layers),
        "kv_heads": int(getattr(config, "num_key_value_heads", None) or heads),
        "head_dim": int(getattr(config, "head_dim", None) or config.hidden_size // heads),
    }


def input_names(layers: int) -> list[str]:
    return ["input_ids", "attention_mask", "position_ids"] + [f"past.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]


def output_names(layers: int) -> list[str]:
    return ["logits"] + [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]


GgufRuntime = Literal["auto", "llama.cpp", "transformers"]
GGUF_RUNTIME_ENV = "TOOLTUNE_GGUF_RUNTIME"
"""Environment variable choosing the GGUF runtime of ``load_model`` (llama.cpp or transformers)."""


def load_runtime_model(directory: Path, kind: str, details: dict[str, Any], *, gguf_runtime: GgufRuntime = "auto") -> Any:
    """The model object of an ONNX or GGUF export directory (see the module docstring)."""
    directory = Path(directory)
    if kind == "onnx":
        return OnnxCausalLM(directory, details)
    if kind != "gguf":
        raise ConfigError(f"{directory}: export kind {kind!r} has no runtime here; merged exports load as Hugging Face models.")
    if gguf_runtime == "auto":
        gguf_runtime = os.environ.get(GGUF_RUNTIME_ENV) or "auto"  # type: ignore[assignment]
    if gguf_runtime not in ("auto", "llama.cpp", "transformers"):
        raise ConfigError(f"{GGUF_RUNTIME_ENV}={gguf_runtime!r}: expected llama.cpp or transformers.")
    if gguf_runtime == "llama.cpp" or (gguf_runtime == "auto" and llama_cpp_available()):
        return LlamaCppCausalLM(directory / GGUF_FILE, _generation_config(directory))
    from transformers import AutoModelForCausalLM

    from tooltune.runtime.quiet import no_progress_bars

    with no_progress_bars():
        return AutoModelForCausalLM.from_pretrained(str(directory), gguf_file=GGUF_FILE).eval()


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


class _GreedyModel:
    """Shared part of the runtime models: greedy decoding over ``start`` and ``advance`` steps,
    the transformers ``generate`` contract for what :class:`Generator` passes."""

    generation_config: Any = None

    def __init__(self) -> None:
        import torch

        self.device = torch.device("cpu")

    def eval(self) -> _GreedyModel:
        return self

    def to(self, device: Any) -> _GreedyModel:
        if str(device) != "cpu":
            raise ConfigError(f"device: {device}: ONNX and llama.cpp exports run on the CPU here; pass device='cpu'.")
        return self

    def start(self, input_ids: Any, attention_mask: Any) -> Any:
        """Run the (left-padded) prompts; next-token logits [batch, vocab] as a numpy array."""
        raise NotImplementedError

    def advance(self, tokens: Any, attention_mask: Any) -> Any:
        """Feed one token per row; next-token logits."""
        raise NotImplementedError

    def generate(self, input_ids: Any, attention_mask: Any = None, generation_config: Any = None,
                 logits_processor: Any = None, stopping_criteria: Any = None, **_: Any) -> Any:
        """Greedy decoding; returns prompt + new tokens [batch, prompt + new], finished rows
        padded with ``pad_token_id`` as transformers does."""
        import torch

        config = generation_config or self.generation_config
        eos = config.eos_token_id if config is not None else None
        eos_ids = torch.tensor(eos if isinstance(eos, list) else [] if eos is None else [eos], dtype=torch.long)
        pad = config.pad_token_id if config is not None and config.pad_token_id is not None else 0
        max_new = config.max_new_tokens if config is not None and config.max_new_tokens else 256
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        sequences = input_ids
        unfinished = torch.ones(input_ids.shape[0], dtype=torch.bool)
        logits = self.start(input_ids.numpy(), mask.numpy())
        for _ in range(max_new):
            scores = torch.from_numpy(logits).float()
            if logits_processor:
                scores = logits_processor(sequences, scores)
            tokens = torch.where(unfinished, scores.argmax(-1), torch.tensor(pad))
            sequences = torch.cat([sequences, tokens[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(tokens)[:, None]], dim=1)
            unfinished &= ~torch.isin(tokens, eos_ids)
            if stopping_criteria:
                unfinished &= ~stopping_criteria(sequences, scores)
            if not unfinished.any():
                break
            logits = self.advance(tokens.numpy(), mask.numpy())
        return sequences


class OnnxCausalLM(_GreedyModel):
    """An ONNX export (``model.onnx`` with past/present KV tensors) run by onnxruntime on the CPU,
    with as many intra-op threads as torch uses, so the two compare on equal terms."""

    def __init__(self, directory: Path, details: dict[str, Any]):
        super().__init__()
        import onnxruntime
        import torch

        path = Path(directory) / ONNX_FILE
        if not path.is_file():
            raise ConfigError(f"{directory}: no {ONNX_FILE}; re-run `tooltune export --to onnx`.")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        shape = {k: details[k] for k in ("layers", "kv_heads", "head_dim") if k in details}
        if len(shape) < 3:
            from transformers import AutoConfig

            shape = cache_shape(AutoConfig.from_pretrained(str(directory)))
        self.layers, self.kv_heads, self.head_dim = shape["layers"], shape["kv_heads"], shape["head_dim"]
        self.past_names = input_names(self.layers)[3:]
        self.outputs = output_names(self.layers)
        self.generation_config = _generation_config(directory)
        self.past: list[Any] = []

    def start(self, input_ids: Any, attention_mask: Any) -> Any:
        import numpy as np
        from onnxruntime import OrtValue

        empty = OrtValue.ortvalue_from_numpy(np.zeros((input_ids.shape[0], self.kv_heads, 0, self.head_dim), dtype=np.float32))
        positions = np.clip(attention_mask.cumsum(-1) - 1, 0, None)
        return self._run(input_ids, attention_mask, positions, [empty] * len(self.past_names))

    def advance(self, tokens: Any, attention_mask: Any) -> Any:
        positions = attention_mask.sum(-1, keepdims=True) - 1
        return self._run(tokens[:, None], attention_mask, positions, self.past)

    def _run(self, ids: Any, mask: Any, positions: Any, past: list[Any]) -> Any:
        # IOBinding: the present tensors stay onnxruntime values and are bound as the next step's
        # past as they are; session.run would copy every layer's cache out to numpy each step.
        binding = self.session.io_binding()
        feeds = {"input_ids": ids.astype("int64"), "attention_mask": mask.astype("int64"), "position_ids": positions.astype("int64")}
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name, value in zip(self.past_names, past, strict=True):
            binding.bind_ortvalue_input(name, value)
        for name in self.outputs:
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        logits, *self.past = binding.get_outputs()
        return logits.numpy()[:, -1, :]


class LlamaCppCausalLM(_GreedyModel):
    """A GGUF export run by llama.cpp (``llama-cpp-python``); token ids in, logits out, so the
    prompt is tokenized by the export's tokenizer (the tests check llama.cpp's own tokenizer
    gives the same ids)."""

    def __init__(self, gguf_path: Path, generation_config: Any = None, n_ctx: int = 0):
        super().__init__()
        if not llama_cpp_available():
            raise ConfigError("gguf runtime llama.cpp needs llama-cpp-python: pip install llama-cpp-python "
                              "(builds llama.cpp from source; several minutes).")
        if not Path(gguf_path).is_file():
            raise ConfigError(f"{gguf_path}: no such GGUF file; re-run `tooltune export --to gguf`.")
        self.path, self.n_ctx = Path(gguf_path), n_ctx  # 0: the model's own context length
        self.generation_config = generation_config
        self.contexts: list[Any] = []

    def close(self) -> None:
        """Free the llama.cpp contexts now (their finalizers fail when run at interpreter exit)."""
        for llm in self.contexts:
            llm.close()
        self.contexts = []

    def context(self, row: int) -> Any:
        """The llama.cpp context of batch row ``row`` (created on first use)."""
        while len(self.contexts) <= row:
            self.contexts.append(self._new_context())
        return self.contexts[row]

    def _new_context(self) -> Any:
        import torch
        from llama_cpp import Llama

        return Llama(model_path=str(self.path), n_ctx=self.n_ctx, n_batch=512, n_threads=torch.get_num_threads(),
                     logits_all=False, verbose=False)

    def start(self, input_ids: Any, attention_mask: Any) -> Any:
        import numpy as np

        rows = []
        for row in range(input_ids.shape[0]):
            tokens = [int(t) for t, m in zip(input_ids[row], attention_mask[row], strict=True) if m]  # drop left padding
            rows.append(self._eval(row, tokens, reset=True))
        return np.stack(rows)

    def advance(self, tokens: Any, attention_mask: Any) -> Any:
        import numpy as np

        return np.stack([self._eval(row, [int(t)], reset=False) for row, t in enumerate(tokens)])

    def _eval(self, row: int, tokens: list[int], *, reset: bool) -> Any:
        llm = self.context(row)
        if reset:
            llm.reset()
        if llm.n_tokens + len(tokens) > llm.n_ctx():
            raise ConfigError(f"llama.cpp context of {llm.n_ctx()} tokens is full; shorten the prompt or max_new_tokens.")
        llm.eval(tokens)
        # Without logits_all (which projects every prompt position onto the vocabulary) Llama.eval
        # keeps no scores; llama.cpp still holds the last token's logits.
        import llama_cpp
        import numpy as np

        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()


def _generation_config(directory: Path) -> Any:
    from transformers import GenerationConfig

    if not (Path(directory) / "generation_config.json").is_file():
        return None
    return GenerationConfig.from_pretrained(str(directory))

