"""The ONNX export: the causal LM traced with ``torch.onnx.export`` as one graph with a KV cache,
optionally quantized to int8 with onnxruntime's dynamic quantization.

Graph inputs: ``input_ids`` and ``position_ids`` [batch, seq], ``attention_mask`` [batch,
past + seq], and ``past.N.key`` / ``past.N.value`` [batch, kv_heads, past, head_dim] for each
layer N (past = 0 on the first step). Outputs: ``logits`` [batch, 1, vocab] of the last position
only (generation needs no other, and the vocabulary projection of a whole prompt is the largest
matrix product of a step) and ``present.N.key`` / ``present.N.value`` [batch, kv_heads,
past + seq, head_dim], fed back as the next step's past. :mod:`tooltune.runtime.exported` runs it.

Why not optimum's exporter: ``optimum-onnx`` (0.1.0) pins ``transformers<4.58``, and tooltune
runs on transformers 5. The TorchScript exporter traces transformers' own forward through a thin
wrapper that turns the flat past tensors into a ``DynamicCache``; the tests check the traced
graph against PyTorch greedy outputs.

int8: ``quantize_dynamic`` stores every MatMul weight as int8 with one scale per output channel
and quantizes activations on the fly; embeddings, norms and attention softmax stay fp32.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch  # this module is imported only to export

from tooltune.runtime.exported import ONNX_FILE, cache_shape, input_names, output_names

OPSET = 17


def write_onnx(loaded: Any, out: Path, *, quantize: str | None) -> tuple[list[str], dict[str, Any]]:
    """Trace ``loaded.model`` into ``out/model.onnx`` (int8 when ``quantize == "int8"``); the
    tokenizer, config and generation config are saved beside it."""
    from tooltune.export.gguf import portable_chat_template
    from tooltune.export.merged import save_tokenizer

    model = loaded.model
    shape = cache_shape(model.config)
    with tempfile.TemporaryDirectory(prefix="tooltune-onnx-") as tmp:
        traced = Path(tmp) / ONNX_FILE
        trace(model, traced, shape)
        if quantize == "int8":
            quantize_int8(traced, out / ONNX_FILE)
        else:
            traced.replace(out / ONNX_FILE)
    model.config.save_pretrained(str(out))
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(str(out))
    save_tokenizer(loaded, out)
    portable_chat_template(out)
    return [ONNX_FILE], {"opset": OPSET, **shape, "logits": "last position only", "int8": quantize == "int8"}


def trace(model: Any, path: Path, shape: dict[str, int]) -> None:
    layers, kv_heads, head_dim = shape["layers"], shape["kv_heads"], shape["head_dim"]
    # Example inputs with a non-empty past and a prompt longer than one token, so the trace keeps
    # both dimensions symbolic (a zero or one would be specialised into the graph).
    batch, seq, past = 2, 3, 2
    example = (
        torch.ones(batch, seq, dtype=torch.long),
        torch.ones(batch, past + seq, dtype=torch.long),
        torch.arange(past, past + seq).expand(batch, seq).contiguous(),
        *[torch.zeros(batch, kv_heads, past, head_dim) for _ in range(2 * layers)],
    )
    names_in, names_out = input_names(layers), output_names(layers)
    dynamic = {"input_ids": {0: "batch", 1: "seq"}, "position_ids": {0: "batch", 1: "seq"},
               "attention_mask": {0: "batch", 1: "total"}, "logits": {0: "batch"}}
    dynamic.update({name: {0: "batch", 2: "past"} for name in names_in[3:]})
    dynamic.update({name: {0: "batch", 2: "total"} for name in names_out[1:]})
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of the dynamo one (which needs
        # onnxscript and cannot yet trace transformers' cache objects); its tracer warnings
        # flag Python branches on shapes, which the wrapper makes constant on purpose.
        warnings.simplefilter("ignore")
        torch.onnx.export(_WithFlatCache(model, layers), example, str(path), input_names=names_in, output_names=names_out,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)


def quantize_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # onnxruntime suggests its pre-processing step; the graph is already shaped
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])


class _WithFlatCache(torch.nn.Module):
    """Tracing wrapper: flat past tensors in, last-position logits and flat present tensors out."""

    def __init__(self, model: Any, layers: int) -> None:
        super().__init__()
        self.model = model
        self.layers = layers

    def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, *past: Any) -> tuple[Any, ...]:
        from transformers import DynamicCache

        cache = DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=cache, use_cache=True, logits_to_keep=1)
        return (out.logits, *[t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)])
