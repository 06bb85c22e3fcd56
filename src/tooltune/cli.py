"""The ``tooltune`` command line: a thin layer over the library API.

Each command parses its options, calls one library function and prints the result. Only this
module catches ``TooltuneError`` broadly: it prints ``TypeName: message`` and exits 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from tooltune.errors import TooltuneError

app = typer.Typer(help="Make language models call your own tools reliably.", no_args_is_help=True, add_completion=False)
tools_app = typer.Typer(help="Discover, show and compare tool catalogs.", no_args_is_help=True)
app.add_typer(tools_app, name="tools")
models_app = typer.Typer(help="The model registry: list, show, deploy, roll back, compare versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()
err_console = Console(stderr=True)


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
    service: Annotated[str, typer.Option(help="Demo service to serve: shop, calendar, files or weather.")] = "shop",
    http: Annotated[Optional[int], typer.Option(help="Serve streamable HTTP on 127.0.0.1:PORT instead of stdio.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the service keeps its SQLite state (default: .tooltune/demo).")] = None,
    reset: Annotated[bool, typer.Option(help="Delete the service's state and start from the seeded data.")] = False,
) -> None:
    """Run a demo MCP service (real state in SQLite) over stdio, or over HTTP with --http."""
    from tooltune.demo import serve

    serve(service, data_dir=data_dir, http_port=http, reset=reset)


DbOption = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL (default: $TOOLTUNE_DB_URL, else .tooltune/registry.db).")]
ActorOption = Annotated[Optional[str], typer.Option(help="Who is acting (default: the login name).")]


def _registry(db: str | None):
    from tooltune.registry import Registry

    return Registry(url=db)


def _actor(actor: str | None) -> str:
    import getpass

    return actor or getpass.getuser()


@models_app.command("list")
def models_list(name: Annotated[Optional[str], typer.Argument(help="Only versions of this model.")] = None, db: DbOption = None) -> None:
    """Every registered model version with its status and where it is live."""
    from tooltune.registry.present import models_table

    with _registry(db) as reg:
        console.print(models_table(reg.list_models(name)))


@models_app.command("show")
def models_show(ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION (default: the latest version).")], db: DbOption = None) -> None:
    """One model version: provenance, evaluations and gate decisions."""
    from tooltune.registry.present import model_view

    with _registry(db) as reg:
        model = reg.resolve(ref)
        console.print(model_view(model, reg.evaluations(model.name, model.version), reg.decisions(model.name, model.version)))


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


def main() -> None:
    try:
        app()
    except TooltuneError as e:
        err_console.print(f"[bold red]{type(e).__name__}[/]: {e}", highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
