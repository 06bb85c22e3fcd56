"""The ``tooltune`` command line: a thin layer over the library API.

Each command parses its options, calls one library function and prints the result. Only this
module catches ``TooltuneError`` broadly: it prints ``TypeName: message`` and exits 1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.console import console, err_console
from tooltune.errors import TooltuneError
from tooltune.runtime.prefix import DEFAULT_PREFIX_CACHE_MB

app = typer.Typer(help="Make language models call your own tools reliably.", no_args_is_help=True, add_completion=False)
tools_app = typer.Typer(help="Discover, show and compare tool catalogs.", no_args_is_help=True)
app.add_typer(tools_app, name="tools")
data_app = typer.Typer(help="Build, import, export, report on and migrate training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
eval_app = typer.Typer(help="Evaluate a model on built data (default), on BFCL, or score outputs made elsewhere.")
app.add_typer(eval_app, name="eval")
base_app = typer.Typer(help="tooltune's small offline base model (for machines without a model hub).", no_args_is_help=True)
app.add_typer(base_app, name="base")
pipeline_app = typer.Typer(help="The whole loop: discover → data → train → eval → gate → register (→ deploy).", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
models_app = typer.Typer(help="The model registry: list, show, deploy, roll back, compare versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@tools_app.command("discover")
def tools_discover(
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the catalog JSON.")],
    mcp_stdio: Annotated[Optional[str], typer.Option(help="Command line that starts an MCP server over stdio.")] = None,
    mcp_http: Annotated[Optional[str], typer.Option(help="URL of an MCP server speaking streamable HTTP.")] = None,
    openapi: Annotated[Optional[Path], typer.Option(help="OpenAPI 3 document (JSON or YAML).")] = None,
    file: Annotated[Optional[Path], typer.Option(help="JSON/YAML file of tools (tooltune, OpenAI or MCP shape).")] = None,
    service: Annotated[Optional[str], typer.Option(help="Service name to record on each tool.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an MCP server before giving up.")] = 30.0,
) -> None:
    """Discover tools from one source and save them as a catalog."""
    from tooltune.tools.discover import discover

    catalog = discover(mcp_stdio=mcp_stdio, mcp_http=mcp_http, openapi=openapi, file=file, timeout=timeout, service=service)
    catalog.save(output)
    console.print(f"Discovered {len(catalog)} tools ({', '.join(catalog.services) or 'no service name'}) → {output}  [dim]catalog {catalog.hash}[/]")


@tools_app.command("merge")
def tools_merge(
    catalogs: Annotated[list[Path], typer.Argument(help="Catalogs to merge (e.g. one per service).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the merged catalog.")],
) -> None:
    """Merge several catalogs into one; tool names must stay unique."""
    from tooltune.tools.catalog import ToolCatalog

    merged = ToolCatalog()
    for path in catalogs:
        merged = merged.merge(ToolCatalog.load(path))
    merged.save(output)
    console.print(f"Merged {len(catalogs)} catalogs: {len(merged)} tools ({', '.join(merged.services)}) → {output}  [dim]catalog {merged.hash}[/]")


@tools_app.command("show")
def tools_show(catalog: Annotated[Path, typer.Argument(help="Catalog JSON written by `tools discover`.")]) -> None:
    """Print a catalog as a table: tools, parameters with types, enums and required marks."""
    from tooltune.tools.catalog import ToolCatalog
    from tooltune.tools.present import catalog_table

    loaded = ToolCatalog.load(catalog)
    console.print(catalog_table(loaded, title=f"{catalog} · {len(loaded)} tools · catalog {loaded.hash}"))


@tools_app.command("diff")
def tools_diff(
    old: Annotated[Path, typer.Argument(help="The catalog before.")],
    new: Annotated[Path, typer.Argument(help="The catalog after.")],
) -> None:
    """List every change from OLD to NEW, each rated breaking / minor / patch."""
    from tooltune.tools.catalog import ToolCatalog
    from tooltune.tools.diff import diff
    from tooltune.tools.present import diff_table

    result = diff(ToolCatalog.load(old), ToolCatalog.load(new))
    if not result.changes:
        console.print("No changes.")
        return
    console.print(diff_table(result))
    console.print(f"Overall: [bold]{result.rating}[/] ({len(result.changes)} changes)")


@app.command("demo-server")
def demo_server(
    service: Annotated[str, typer.Option(help="Demo service to serve: shop, calendar, files, weather or code.")] = "shop",
    http: Annotated[Optional[int], typer.Option(help="Serve streamable HTTP on 127.0.0.1:PORT instead of stdio.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the service keeps its state: SQLite, or the code service's working copy (default: .tooltune/demo).")] = None,
    reset: Annotated[bool, typer.Option(help="Delete the service's state and start from the seeded data.")] = False,
    rename_param: Annotated[Optional[list[str]], typer.Option(help="TOOL.PARAMETER=NEW_NAME: serve that parameter under a new name, a breaking schema change (repeatable).")] = None,
) -> None:
    """Run a demo MCP service (real state in SQLite) over stdio, or over HTTP with --http."""
    from tooltune.demo import serve

    serve(service, data_dir=data_dir, http_port=http, reset=reset, renames=rename_param or [])


@data_app.command("build")
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


@data_app.command("report")
def data_report(data_dir: Annotated[Path, typer.Argument(help="Folder written by `data build`.")]) -> None:
    """Print a built dataset's report (per-tool counts, behaviour mix, dedup, splits, contamination)."""
    from tooltune.data.build import report_dataset
    from tooltune.data.report import render_report

    render_report(report_dataset(data_dir), console)


@data_app.command("import")
def data_import(
    source: Annotated[str, typer.Argument(help="File to import, or for bfcl a category name such as simple_python.")],
    format: Annotated[str, typer.Option("--format", help="openai, sharegpt, chatml, alpaca, glaive, xlam or bfcl.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Examples JSONL to write.")],
    quality: Annotated[str, typer.Option(help="Quality tier for the imported examples: high, medium or low.")] = "medium",
) -> None:
    """Import a public or exported dataset into tooltune examples; bad records go to quarantine."""
    from tooltune.data.examples import write_jsonl
    from tooltune.data.io import import_file
    from tooltune.data.quarantine import write_quarantine

    result = import_file(format, source, quality=quality)
    written = write_jsonl(result.examples, output)
    message = f"Imported {written} examples → {output}"
    if result.quarantine:
        quarantine = output.with_suffix(".quarantine.jsonl")
        quarantine.unlink(missing_ok=True)
        write_quarantine(result.quarantine, quarantine)
        message += f"; {len(result.quarantine)} records quarantined → {quarantine}"
    console.print(message)


@data_app.command("export")
def data_export(
    file: Annotated[Path, typer.Argument(help="Examples JSONL (a split file from `data build`, or an import).")],
    format: Annotated[str, typer.Option("--format", help="openai, sharegpt, chatml, alpaca, glaive or xlam.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    catalog: Annotated[Optional[Path], typer.Option(help="Catalog for the tool schemas (default: catalog.json beside FILE).")] = None,
) -> None:
    """Export examples to another training format (OpenAI fine-tuning JSONL, ShareGPT, …)."""
    from tooltune.data.examples import read_jsonl
    from tooltune.data.io import export_file
    from tooltune.data.quarantine import write_quarantine
    from tooltune.tools.catalog import ToolCatalog

    catalog = catalog or _catalog_beside(file)
    result = export_file(format, list(read_jsonl(file)), output, catalog=ToolCatalog.load(catalog) if catalog else None)
    message = f"Exported {result.written} examples → {output}"
    if result.skipped:
        skipped = output.with_name(output.name + ".skipped.jsonl")
        skipped.unlink(missing_ok=True)
        write_quarantine(result.skipped, skipped)
        message += f"; {len(result.skipped)} could not be expressed in {format} → {skipped}"
    console.print(message)


@data_app.command("migrate")
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


@app.command("train")
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


@base_app.command("build")
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


def _print_metrics(metrics, title: str) -> None:
    from tooltune.eval.present import metrics_table

    console.print(metrics_table(metrics, title=title))


@eval_app.callback(invoke_without_command=True)
def eval_cmd(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Option(help="Base model: HF id or local path, or a prompt-only model dir.")] = None,
    adapter: Annotated[Optional[Path], typer.Option(help="Run dir of a trained adapter (or full weights).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Folder written by `data build`.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Comma-separated splits (default: every test split and holdout).")] = None,
    constrained: Annotated[bool, typer.Option(help="Grammar-constrained decoding from the offered tools' schemas.")] = False,
    batch_size: Annotated[int, typer.Option(help="Prompts generated together.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Generation limit per turn.")] = 256,
    limit: Annotated[Optional[int], typer.Option(help="At most this many examples per split.")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Folder for results.jsonl and metrics.json.")] = None,
    tool_listing: Annotated[str, typer.Option(help="model, schema or compact: how a model on tooltune's built-in template sees the tools (see EvalConfig).")] = "model",
    dtype: Annotated[str, typer.Option(help="auto (bf16 only where it is faster here; `tooltune status` shows the choice), fp32, bf16 or fp16.")] = "auto",
    prefix_cache_mb: Annotated[int, typer.Option(help="MiB of cached prompt prefixes (system turn + tool listing); 0 turns prefix caching off.")] = DEFAULT_PREFIX_CACHE_MB,
) -> None:
    """Run a model on the test splits: batched greedy generation, the serving parser, BFCL-style matching."""
    if ctx.invoked_subcommand is not None:
        return
    if not (model and data and output):
        raise typer.BadParameter("give --model, --data and -o (or a subcommand: bfcl, score).")
    from tooltune.eval.runner import EvalConfig, run_eval

    given = {"splits": split.split(",")} if split else {}
    result = run_eval(EvalConfig(model=model, adapter=adapter, data_dir=data, output_dir=output, constrained=constrained,
                                 batch_size=batch_size, max_new_tokens=max_new_tokens, limit=limit,
                                 tool_listing=tool_listing, dtype=dtype, prefix_cache_mb=prefix_cache_mb, **given))
    _print_metrics(result.metrics, f"{model}{' + ' + str(adapter) if adapter else ''} → {output}")


@eval_app.command("bfcl")
def eval_bfcl(
    category: Annotated[str, typer.Option(help="BFCL v4 category, e.g. simple_python.")],
    model: Annotated[str, typer.Option(help="Base model: HF id or local path.")],
    adapter: Annotated[Optional[Path], typer.Option(help="Run dir of a trained adapter.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many cases.")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Folder for results.jsonl and metrics.json.")] = None,
    tool_listing: Annotated[str, typer.Option(help="model, schema or compact (see `tooltune eval --help`).")] = "model",
    dtype: Annotated[str, typer.Option(help="auto (bf16 only where it is faster here), fp32, bf16 or fp16.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Prompts generated together.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Generation limit per turn.")] = 256,
) -> None:
    """Run a model on a BFCL v4 category (data from the bfcl-eval package) and score it with tooltune's matcher."""
    from tooltune.eval.bfcl import run_bfcl

    metrics = run_bfcl(category, model, adapter=adapter, limit=limit, output_dir=output, tool_listing=tool_listing,
                       dtype=dtype, batch_size=batch_size, max_new_tokens=max_new_tokens)
    _print_metrics(metrics, f"BFCL {category}: {model}")


@eval_app.command("score")
def eval_score(
    data: Annotated[Path, typer.Option(help="Examples JSONL (from `data build` or `data import`).")],
    predictions: Annotated[Path, typer.Option(help='JSONL of {"id": ..., "output": "<raw model text>"}.')],
    format: Annotated[str, typer.Option("--format", help="Tool-call format of the outputs: hermes, pythonic, json, glaive, openai.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for results.jsonl and metrics.json.")],
    catalog: Annotated[Optional[Path], typer.Option(help="Catalog for examples that name catalog tools (default: catalog.json beside DATA).")] = None,
) -> None:
    """Score model outputs made elsewhere (vLLM, another stack) without running a model."""
    from tooltune.eval.score import run_score

    catalog = catalog or _catalog_beside(data)
    _print_metrics(run_score(data, predictions, format, output, catalog_path=catalog), f"{predictions} → {output}")


@app.command("compare")
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


@pipeline_app.command("run")
def pipeline_run(
    config: Annotated[Path, typer.Option(help="Pipeline YAML.")],
    specialize: Annotated[bool, typer.Option(help="When the gates block with strategy 'specialize', train one LoRA adapter per failing service (needs collect: in the YAML).")] = False,
) -> None:
    """Run every step; unchanged steps are skipped, a crashed run resumes."""
    from tooltune.pipeline import PipelineConfig, run_pipeline
    from tooltune.pipeline.present import pipeline_progress, print_summary

    cfg = PipelineConfig.load(config)
    if specialize:
        cfg = PipelineConfig.model_validate({**cfg.model_dump(), "specialize": True})
    with pipeline_progress(console) as progress:
        result = run_pipeline(cfg, progress=progress)
    print_summary(result, console)


@pipeline_app.command("schedule")
def pipeline_schedule(
    config: Annotated[Path, typer.Option(help="Pipeline YAML.")],
    retrain: Annotated[str, typer.Option(help="Cron expression for the full pipeline (default: Mondays 03:00).")] = "0 3 * * 1",
    collect: Annotated[str, typer.Option(help="Cron expression for failure collection (default: daily 02:00).")] = "0 2 * * *",
    check: Annotated[Optional[str], typer.Option(help="Cron expression for drift checks of the deployed versions against the services' live tools (`models check`), e.g. '*/15 * * * *'.")] = None,
) -> None:
    """Run the pipeline, failure collection and (with --check) drift checks on cron schedules (APScheduler; foreground)."""
    from tooltune.pipeline.schedule import run_schedule

    run_schedule(config, retrain=retrain, collect=collect, check=check, console=console)


DbOption = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL (default: $TOOLTUNE_DB_URL, else .tooltune/registry.db).")]
ActorOption = Annotated[Optional[str], typer.Option(help="Who is acting (default: the login name).")]


def _catalog_beside(file: Path) -> Path | None:
    """``data build`` writes catalog.json next to its split files: the default catalog for them."""
    beside = file.parent / "catalog.json"
    return beside if beside.exists() else None


def _registry(db: str | None):
    from tooltune.registry import Registry

    return Registry(url=db)


def _actor(actor: str | None) -> str:
    import getpass

    return actor or getpass.getuser()


@models_app.command("list")
def models_list(name: Annotated[Optional[str], typer.Argument(help="Only versions of this model.")] = None, db: DbOption = None) -> None:
    """Every registered model version with its status, where it is live, and whether it is stale."""
    from tooltune.registry.present import drift_notes, models_table

    with _registry(db) as reg:
        models = reg.list_models(name)
        console.print(models_table(models))
        notes = drift_notes(models)
        if notes is not None:
            console.print(notes, soft_wrap=True)  # the migrate command stays one line, to copy


@models_app.command("check")
def models_check(
    watch: Annotated[Optional[list[str]], typer.Option(help="A live tool source, KIND:TARGET (mcp-http:URL, 'mcp-stdio:CMD', openapi:PATH, file:PATH); repeatable.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Pipeline YAML: check against its services.")] = None,
    db: DbOption = None,
) -> None:
    """Compare every deployed version's tools with the live ones; a breaking change marks it stale
    (its service's requests fall back). Exits 2 when a version is stale, for schedules and CI."""
    from tooltune.errors import ConfigError
    from tooltune.registry.present import drift_notes
    from tooltune.tools.sources import discover_sources, parse_source

    sources = [parse_source(w) for w in watch or []]
    if config is not None:
        from tooltune.pipeline import PipelineConfig

        sources += PipelineConfig.load(config).services
    if not sources:
        raise ConfigError("models check: give the live tools to compare with: --watch KIND:TARGET (repeatable) or "
                          "--config pipeline.yaml.")
    live = discover_sources(sources)
    with _registry(db) as reg:
        drift = reg.check_live_models(live)
        models = [m for m in reg.list_models() if m.live_services]
    console.print(f"checked {len(models)} deployed versions against {len(live)} live tools "
                  f"({', '.join(live.services) or 'no service name'})")
    notes = drift_notes(models)
    console.print(notes if notes is not None else "Every deployed version matches the live tools.", soft_wrap=True)
    if any(d.stale for d in drift):
        raise typer.Exit(2)


@models_app.command("catalog")
def models_catalog(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the catalog JSON.")],
    live: Annotated[bool, typer.Option(help="With each drifted service's live tools (as last checked) instead of the trained ones.")] = False,
    db: DbOption = None,
) -> None:
    """Write the catalog a version was trained on, or with --live the one to migrate its data to."""
    from tooltune.registry import parse_ref

    with _registry(db) as reg:
        model = reg.resolve(ref)
        catalog = reg.live_catalog(*parse_ref(model.ref)) if live else reg.catalog(model.catalog_hash)
    catalog.save(output)
    console.print(f"{model.ref}: {len(catalog)} tools → {output}  [dim]catalog {catalog.hash}[/]")


@models_app.command("show")
def models_show(ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION (default: the latest version).")], db: DbOption = None) -> None:
    """One model version: provenance, evaluations and gate decisions."""
    from tooltune.registry.present import model_view

    with _registry(db) as reg:
        model = reg.resolve(ref)
        console.print(model_view(model, reg.evaluations(model.name, model.version), reg.decisions(model.name, model.version)),
                      soft_wrap=bool(model.drift))  # a migrate command stays one line, to copy


@models_app.command("deploy")
def models_deploy(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION to deploy.")],
    gates: Annotated[Optional[Path], typer.Option(help="Gate config YAML (default: the built-in gates).")] = None,
    service: Annotated[Optional[list[str]], typer.Option(help="Deploy for these services only (repeatable).")] = None,
    notes: Annotated[str, typer.Option(help="Why; kept in the history.")] = "",
    force: Annotated[bool, typer.Option(help="Deploy even if the gates fail (recorded in the history).")] = False,
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Deploy a version once it passes the gates (every check is printed when it does not)."""
    from tooltune.errors import GateError
    from tooltune.registry import GateConfig, parse_ref
    from tooltune.registry.present import decision_table, history_table

    name, version = parse_ref(ref)
    with _registry(db) as reg:
        try:
            reg.deploy(name, version, actor=_actor(actor), notes=notes, services=service or None,
                       gate_config=GateConfig.load(gates) if gates else None, force=force)
        except GateError as e:
            console.print(decision_table(e.decision))
            raise
        console.print(history_table(reg.history(name)[:5], title=f"{name}: latest deployments"))


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    service: Annotated[Optional[str], typer.Option(help="Roll back one service only.")] = None,
    notes: Annotated[str, typer.Option(help="Why; kept in the history.")] = "",
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Go back to the version deployed before the current one."""
    from tooltune.registry.present import history_table

    with _registry(db) as reg:
        reg.rollback(name, actor=_actor(actor), notes=notes, service=service)
        console.print(history_table(reg.history(name)[:5], title=f"{name}: latest deployments"))


@models_app.command("diff")
def models_diff(
    a: Annotated[str, typer.Argument(help="NAME@VERSION")],
    b: Annotated[str, typer.Argument(help="NAME@VERSION")],
    db: DbOption = None,
) -> None:
    """What differs between two versions: catalog, dataset, config and metrics."""
    from tooltune.registry.present import diff_view

    with _registry(db) as reg:
        console.print(diff_view(reg.diff_models(a, b)))


@models_app.command("history")
def models_history(name: Annotated[str, typer.Argument(help="Model name.")], db: DbOption = None) -> None:
    """Deploy / rollback / archive history, newest first."""
    from tooltune.registry.present import history_table

    with _registry(db) as reg:
        console.print(history_table(reg.history(name), title=name))


# Commands that live with their room (serve/, api/, publish/, graph/, export/, ops/): each module
# defines its commands in register() and imports its heavy dependencies inside the commands.
def _register_rooms() -> None:
    from tooltune.api.cli import register as api
    from tooltune.ops.cli import register as ops
    from tooltune.export.cli import register as export
    from tooltune.graph.cli import register as graph
    from tooltune.publish.cli import register as publish
    from tooltune.serve.cli import register as serve

    groups = {"tools": tools_app, "data": data_app, "eval": eval_app, "base": base_app, "pipeline": pipeline_app,
              "models": models_app}
    for register in (serve, export, api, publish, graph, ops):
        register(app, groups)


_register_rooms()


def _third_party_log() -> Path:
    """Where transformers/PEFT/TRL chatter goes instead of the terminal ($TOOLTUNE_LOG_FILE)."""
    return Path(os.environ.get("TOOLTUNE_LOG_FILE") or Path(".tooltune") / "logs" / "third-party.log")


def main() -> None:
    from tooltune.runtime.quiet import route_third_party

    route_third_party(_third_party_log())
    try:
        app()
    except TooltuneError as e:
        err_console.print(f"[bold red]{type(e).__name__}[/]: {e}", highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
