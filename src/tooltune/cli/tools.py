"""`tooltune tools …`: discover, merge, show and diff tool catalogs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console

app = typer.Typer(help="Discover, show and compare tool catalogs.", no_args_is_help=True)


@app.command("discover")
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


@app.command("merge")
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


@app.command("show")
def tools_show(catalog: Annotated[Path, typer.Argument(help="Catalog JSON written by `tools discover`.")]) -> None:
    """Print a catalog as a table: tools, parameters with types, enums and required marks."""
    from tooltune.tools.catalog import ToolCatalog
    from tooltune.tools.present import catalog_table

    loaded = ToolCatalog.load(catalog)
    console.print(catalog_table(loaded, title=f"{catalog} · {len(loaded)} tools · catalog {loaded.hash}"))


@app.command("diff")
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
