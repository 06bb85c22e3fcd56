"""`tooltune data …`: build, report on, import, export and migrate training data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console

app = typer.Typer(help="Build, import, export, report on and migrate training data.", no_args_is_help=True)


@app.command("build")
def data_build(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder for the split files, quarantine and report.")],
    catalog: Annotated[Optional[Path], typer.Option(help="Tool catalog JSON (from `tools discover`).")] = None,
    curated: Annotated[Optional[list[Path]], typer.Option(help="Curated example file, YAML or JSON (repeatable).")] = None,
    synthetic: Annotated[Optional[int], typer.Option(help="How many synthetic examples to generate.")] = None,
    logs: Annotated[Optional[list[Path]], typer.Option(help="Production interaction log, JSONL (repeatable).")] = None,
    corrections: Annotated[Optional[list[Path]], typer.Option(help="Corrections file, JSONL or YAML (repeatable).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for generation and the split.")] = None,
    holdout_after: Annotated[Optional[str], typer.Option(help="Examples created after this date (YYYY-MM-DD) go to holdout.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="DataConfig YAML; the options above override its fields.")] = None,
) -> None:
    """Validate, score, dedupe, balance and split examples from every source into DIR."""
    from tooltune.data.build import build_dataset
    from tooltune.data.config import DataConfig, build_config
    from tooltune.data.report import build_progress, render_report
    from tooltune.demo import build_server
    from tooltune.demo.chains import CHAINS

    given = {"catalog": catalog, "curated": curated, "synthetic": synthetic, "logs": logs,
             "corrections": corrections, "seed": seed, "holdout_after": holdout_after, "output_dir": output}
    overrides = {k: v for k, v in given.items() if v is not None}
    cfg = DataConfig.from_yaml(config, **overrides) if config else build_config(overrides)
    with build_progress(console) as progress:
        # Multi-step synthesis executes the demo's chains whose tools are all in the catalog.
        report = build_dataset(cfg, progress=progress, chains=CHAINS, server_factory=build_server)
    render_report(report.model_dump(mode="json"), console)
    console.print(f"Wrote {cfg.output_dir}/ (train, val, test_phrasing, test_zero_shot, test_multistep, holdout, quarantine, report.json)")


@app.command("report")
def data_report(data_dir: Annotated[Path, typer.Argument(help="Folder written by `data build`.")]) -> None:
    """Print a built dataset's report (per-tool counts, behaviour mix, dedup, splits, contamination)."""
    from tooltune.data.build import report_dataset
    from tooltune.data.report import render_report

    render_report(report_dataset(data_dir), console)


@app.command("import")
def data_import(
    source: Annotated[str, typer.Argument(help="File to import, or for bfcl a category name such as simple_python.")],
    format: Annotated[str, typer.Option("--format", help="openai, sharegpt, chatml, alpaca, glaive, xlam or bfcl.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Examples JSONL to write.")],
    quality: Annotated[str, typer.Option(help="Quality tier for the imported examples: high, medium or low.")] = "medium",
) -> None:
    """Import a public or exported dataset into tooltune examples; bad records go to quarantine."""
    from tooltune.data.examples import write_jsonl
    from tooltune.data.io import import_file
    from tooltune.data.quarantine import replace_quarantine

    result = import_file(format, source, quality=quality)
    written = write_jsonl(result.examples, output)
    message = f"Imported {written} examples → {output}"
    if result.quarantine:
        quarantine = replace_quarantine(result.quarantine, output.with_suffix(".quarantine.jsonl"))
        message += f"; {len(result.quarantine)} records quarantined → {quarantine}"
    console.print(message)


@app.command("export")
def data_export(
    file: Annotated[Path, typer.Argument(help="Examples JSONL (a split file from `data build`, or an import).")],
    format: Annotated[str, typer.Option("--format", help="openai, sharegpt, chatml, alpaca, glaive or xlam.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    catalog: Annotated[Optional[Path], typer.Option(help="Catalog for the tool schemas (default: catalog.json beside FILE).")] = None,
) -> None:
    """Export examples to another training format (OpenAI fine-tuning JSONL, ShareGPT, …)."""
    from tooltune.data.build import catalog_beside
    from tooltune.data.examples import read_jsonl
    from tooltune.data.io import export_file
    from tooltune.data.quarantine import replace_quarantine
    from tooltune.tools.catalog import ToolCatalog

    catalog = catalog or catalog_beside(file)
    result = export_file(format, list(read_jsonl(file)), output, catalog=ToolCatalog.load(catalog) if catalog else None)
    message = f"Exported {result.written} examples → {output}"
    if result.skipped:
        skipped = replace_quarantine(result.skipped, output.with_name(output.name + ".skipped.jsonl"))
        message += f"; {len(result.skipped)} could not be expressed in {format} → {skipped}"
    console.print(message)


@app.command("migrate")
def data_migrate(
    data_dir: Annotated[Path, typer.Argument(help="Folder written by `data build`.")],
    catalog: Annotated[Path, typer.Option(help="The new catalog.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the migrated dataset.")],
    old_catalog: Annotated[Optional[Path], typer.Option(help="The old catalog (default: DIR/catalog.json).")] = None,
) -> None:
    """Carry a dataset over to a new catalog: keep valid examples, migrate renamed parameters,
    quarantine what no longer fits."""
    import json

    from tooltune.data.migrate import migrate_dataset
    from tooltune.tools.catalog import ToolCatalog

    summary = migrate_dataset(data_dir, ToolCatalog.load(catalog), output,
                              old=ToolCatalog.load(old_catalog) if old_catalog else None)
    console.print_json(json.dumps(summary, default=str))
