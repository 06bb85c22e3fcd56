"""`tooltune graph build` and `tooltune data from-graph`: the code knowledge graph and the examples drawn from it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console

app = typer.Typer(help="The code knowledge graph: parse a Python project into a graph database.", no_args_is_help=True)

GraphName = Annotated[str, typer.Option("--graph", help="Name of the graph in the database (one per project).")]
GraphUrl = Annotated[Optional[str], typer.Option(
    help="bolt://user:pass@host:7687 (Neo4j, Memgraph) or redis://host:6379 (a FalkorDB server); default: embedded FalkorDB.")]
GraphDir = Annotated[Optional[Path], typer.Option(help="Folder of the embedded database (default: .tooltune/graph).")]


@app.command("build")
def graph_build(
    path: Annotated[Path, typer.Argument(help="Root of the Python project to parse.")],
    graph: GraphName = "code",
    graph_url: GraphUrl = None,
    graph_dir: GraphDir = None,
) -> None:
    """Parse PATH with ast into CodeFile/Class/Function/Method/Parameter nodes and CONTAINS/CALLS/INHERITS
    edges, and write them into the graph database (replacing the graph's previous contents)."""
    from rich.table import Table

    from tooltune.graph.parse import parse_codebase
    from tooltune.graph.store import open_store, write_graph

    code = parse_codebase(path)
    with open_store(graph, url=graph_url, data_dir=graph_dir) as store:
        counts = write_graph(store, code)
        backend = store.backend
    console.print(f"graph {graph!r} ({backend}) built from {code.root}")
    table = Table()
    table.add_column("kind")
    table.add_column("count", justify="right")
    for kind, n in counts.items():
        table.add_row(kind, str(n))
    console.print(table)
    for skipped in code.skipped:
        console.print(f"[yellow]skipped[/] {skipped}")


def data_from_graph(
    output: Annotated[Path, typer.Option("-o", "--output", help="Curated file (YAML) to write, for `data build --curated`.")],
    types: Annotated[str, typer.Option(help="Comma-separated node types: Method,Class,Function.")] = "Method,Class,Function",
    max_records: Annotated[int, typer.Option(help="At most this many records, highest quality first.")] = 1000,
    quality_threshold: Annotated[float, typer.Option(help="Keep records scoring at least this (0-1).")] = 0.5,
    augmentation_factor: Annotated[int, typer.Option(help="Phrasings per request.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed for choosing phrasings.")] = 0,
    workdir: Annotated[Optional[str], typer.Option(help="Absolute path the code service sees the project at.")] = None,
    catalog: Annotated[Optional[Path], typer.Option(help="Catalog of the code service: validate the examples against it now.")] = None,
    graph: GraphName = "code",
    graph_url: GraphUrl = None,
    graph_dir: GraphDir = None,
) -> None:
    """Score, filter and augment records from the code graph into instruction and code-service tool-calling examples."""
    from tooltune.graph.examples import build_from_graph_config, examples_from_graph, write_curated
    from tooltune.graph.store import open_store

    config = build_from_graph_config({
        "types": [t.strip() for t in types.split(",") if t.strip()], "max_records": max_records,
        "quality_threshold": quality_threshold, "augmentation_factor": augmentation_factor, "seed": seed, "workdir": workdir,
    })
    with open_store(graph, url=graph_url, data_dir=graph_dir) as store:
        result = examples_from_graph(store, config)
    write_curated(result.entries, output, service=config.service)
    dropped = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in result.dropped.items() if n) or "none"
    console.print(f"{result.read} records read, {len(result.kept)} kept (dropped: {dropped}); "
                  f"{len(result.entries)} examples ({', '.join(f'{k} {v}' for k, v in result.intents.items())}) → {output}")
    if catalog is not None:
        _validate(output, catalog)


def _validate(curated: Path, catalog_path: Path) -> None:
    from tooltune.data.curated import load_curated
    from tooltune.data.quarantine import replace_quarantine
    from tooltune.tools.catalog import ToolCatalog

    load = load_curated(curated, ToolCatalog.load(catalog_path))
    message = f"Checked against {catalog_path}: {len(load.examples)} examples valid"
    if load.quarantine:
        bad = replace_quarantine(load.quarantine, curated.with_suffix(".quarantine.jsonl"))
        message += f", {len(load.quarantine)} quarantined → {bad}"
    console.print(message)
