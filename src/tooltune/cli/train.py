"""`tooltune train`: one TrainConfig YAML (plus --set overrides) in, a run directory out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console


def train_cmd(
    config: Annotated[Path, typer.Option(help="TrainConfig YAML.")],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a field: key=value (dotted keys, YAML values); repeatable.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in output_dir.")] = False,
) -> None:
    """Train on a built dataset: LoRA / QLoRA / full fine-tuning (hf), cloud fine-tuning, or a prompt-only model."""
    from tooltune.train import load_train_config, run_training

    cfg = load_train_config(config, [*(set_ or []), *(["resume=true"] if resume else [])])
    result = run_training(cfg)
    console.print(f"[bold green]done[/]: run dir {result.run_dir} (manifest: {result.manifest_path})")
