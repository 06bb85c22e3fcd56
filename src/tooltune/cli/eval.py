"""`tooltune eval …` (built data, BFCL, outputs made elsewhere) and `tooltune compare`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console
from tooltune.runtime.prefix import DEFAULT_PREFIX_CACHE_MB
from tooltune.runtime.settings import GenerationSettings, setting_help

GENERATION = GenerationSettings()
"""The generation settings' defaults: the options' defaults, as ``EvalConfig``'s."""

app = typer.Typer(help="Evaluate a model on built data (default), on BFCL, or score outputs made elsewhere.")


def _print_metrics(metrics, title: str) -> None:
    from tooltune.eval.present import metrics_table

    console.print(metrics_table(metrics, title=title))


@app.callback(invoke_without_command=True)
def eval_cmd(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Option(help="Base model: HF id or local path, or a prompt-only model dir.")] = None,
    adapter: Annotated[Optional[Path], typer.Option(help="Run dir of a trained adapter (or full weights).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Folder written by `data build`.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Comma-separated splits (default: every test split and holdout).")] = None,
    constrained: Annotated[bool, typer.Option(help=setting_help("constrained"))] = GENERATION.constrained,
    batch_size: Annotated[int, typer.Option(help=setting_help("batch_size"))] = GENERATION.batch_size,
    max_new_tokens: Annotated[int, typer.Option(help=setting_help("max_new_tokens"))] = GENERATION.max_new_tokens,
    limit: Annotated[Optional[int], typer.Option(help="At most this many examples per split.")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Folder for results.jsonl and metrics.json.")] = None,
    tool_listing: Annotated[str, typer.Option(help=setting_help("tool_listing"))] = GENERATION.tool_listing,
    dtype: Annotated[str, typer.Option(help=setting_help("dtype"))] = GENERATION.dtype,
    prefix_cache_mb: Annotated[int, typer.Option(help="MiB of cached prompt prefixes (system turn + tool listing); 0 turns prefix caching off.")] = DEFAULT_PREFIX_CACHE_MB,
) -> None:
    """Run a model on the test splits: batched greedy generation, the serving parser, BFCL-style matching."""
    if ctx.invoked_subcommand is not None:
        return
    if not (model and data and output):
        raise typer.BadParameter("give --model, --data and -o (or a subcommand: bfcl, score).")
    from tooltune.eval.runner import EvalConfig, run_eval
    from tooltune.safeload import validate_config

    given = {"splits": split.split(",")} if split else {}
    config = validate_config(EvalConfig, dict(
        model=model, adapter=adapter, data_dir=data, output_dir=output, constrained=constrained, batch_size=batch_size,
        max_new_tokens=max_new_tokens, limit=limit, tool_listing=tool_listing, dtype=dtype,
        prefix_cache_mb=prefix_cache_mb, **given), source="eval options")
    result = run_eval(config)
    _print_metrics(result.metrics, f"{model}{' + ' + str(adapter) if adapter else ''} → {output}")


@app.command("bfcl")
def eval_bfcl(
    category: Annotated[str, typer.Option(help="BFCL v4 category, e.g. simple_python.")],
    model: Annotated[str, typer.Option(help="Base model: HF id or local path.")],
    adapter: Annotated[Optional[Path], typer.Option(help="Run dir of a trained adapter.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many cases.")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Folder for results.jsonl and metrics.json.")] = None,
    tool_listing: Annotated[str, typer.Option(help=setting_help("tool_listing"))] = GENERATION.tool_listing,
    dtype: Annotated[str, typer.Option(help=setting_help("dtype"))] = GENERATION.dtype,
    batch_size: Annotated[int, typer.Option(help=setting_help("batch_size"))] = GENERATION.batch_size,
    max_new_tokens: Annotated[int, typer.Option(help=setting_help("max_new_tokens"))] = GENERATION.max_new_tokens,
) -> None:
    """Run a model on a BFCL v4 category (data from the bfcl-eval package) and score it with tooltune's matcher."""
    from tooltune.eval.bfcl import run_bfcl
    from tooltune.safeload import validate_config

    given = {"tool_listing": tool_listing, "dtype": dtype, "batch_size": batch_size, "max_new_tokens": max_new_tokens}
    settings = validate_config(GenerationSettings, given, source="eval bfcl options")
    metrics = run_bfcl(category, model, adapter=adapter, limit=limit, output_dir=output, settings=settings)
    _print_metrics(metrics, f"BFCL {category}: {model}")


@app.command("score")
def eval_score(
    data: Annotated[Path, typer.Option(help="Examples JSONL (from `data build` or `data import`).")],
    predictions: Annotated[Path, typer.Option(help='JSONL of {"id": ..., "output": "<raw model text>"}.')],
    format: Annotated[str, typer.Option("--format", help="Tool-call format of the outputs: hermes, pythonic, json, glaive, openai.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for results.jsonl and metrics.json.")],
    catalog: Annotated[Optional[Path], typer.Option(help="Catalog for examples that name catalog tools (default: catalog.json beside DATA).")] = None,
) -> None:
    """Score model outputs made elsewhere (vLLM, another stack) without running a model."""
    from tooltune.data.build import catalog_beside
    from tooltune.eval.score import run_score

    catalog = catalog or catalog_beside(data)
    _print_metrics(run_score(data, predictions, format, output, catalog_path=catalog), f"{predictions} → {output}")


def compare_cmd(
    a: Annotated[Path, typer.Argument(help="Eval output folder A (e.g. the base model).")],
    b: Annotated[Path, typer.Argument(help="Eval output folder B (e.g. the tuned model).")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Where report.html and report.json go (default: B/compare).")] = None,
) -> None:
    """Per-category accuracy of two evaluations with deltas, significance, wins/losses and latency."""
    from tooltune.eval.compare import compare
    from tooltune.eval.report import comparison_table, levels_table, write_report

    result = compare(a, b)
    console.print(comparison_table(result))
    if result.levels:
        console.print(levels_table(result))
    console.print(f"report: {write_report(result, output or b / 'compare')}")
