"""`tooltune base build`: the small offline base model, built from scratch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console

app = typer.Typer(help="tooltune's small offline base model (for machines without a model hub).", no_args_is_help=True)


@app.command("build")
def base_build(
    size: Annotated[str, typer.Option(help="micro (~0.3M params), tiny (~1.2M), small (~5M) or medium (~15M).")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed of the tool universe, corpus, init and training.")] = 0,
    examples: Annotated[int, typer.Option(help="Synthetic examples generated for pretraining.")] = 100_000,
    minutes: Annotated[Optional[float], typer.Option(help="Training time budget (converted to steps by timing a few).")] = 60.0,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps; overrides --minutes.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Peak learning rate.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Rows per optimizer step.")] = None,
    max_length: Annotated[Optional[int], typer.Option(help="Packed row length in tokens.")] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help="BPE vocabulary size.")] = None,
    eval_examples: Annotated[Optional[int], typer.Option(help="Examples per split for the model card's evaluation.")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Output folder (default: the packaged base model).")] = None,
) -> None:
    """Build the offline base model from scratch: tool universe, corpus, tokenizer, template, pretraining, model card."""
    from tooltune.train.base import BaseBuildConfig, build_base

    given = {"size": size, "seed": seed, "n_examples": examples, "minutes": minutes, "max_steps": max_steps,
             "threads": threads, "learning_rate": learning_rate, "batch_size": batch_size, "max_length": max_length,
             "vocab_size": vocab_size, "eval_examples": eval_examples, "output_dir": output}
    result = build_base(BaseBuildConfig(**{k: v for k, v in given.items() if v is not None}), progress=True)
    console.print(result)
