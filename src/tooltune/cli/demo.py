"""`tooltune demo-server`: the demo MCP services, over stdio or HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


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
