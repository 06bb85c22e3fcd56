"""Demo MCP services with real state in SQLite: the running example of the whole toolkit.

Five services, each an ``MCPServer`` whose tools execute against a seeded SQLite file under a
data dir, so multi-step flows work and final state can be checked:

    shop       payments in cents, orders and customers (the main example, most quirks)
    calendar   events with ISO 8601 times, durations in minutes, attendees as emails
    files      a virtual workspace of text files (absolute paths, whole-file writes)
    weather    current conditions, forecasts and air quality for 20 seeded cities
    code       Read / Write / Edit / Bash / Grep / Glob over a sandboxed copy of a small Python
               project on disk (not SQLite: ``data_dir/code/``; see ``code_service``)

Tool names are unique across all five, so their catalogs can be merged. See
``docs/demo-services.md`` for each service's tools and quirks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from mcp.server.mcpserver import MCPServer

from tooltune.demo import calendar_service, code_service, files, shop, weather
from tooltune.demo.tooling import rename_parameter
from tooltune.errors import ConfigError

__all__ = ["SERVICES", "DEFAULT_DATA_DIR", "build_server", "serve"]

ServiceFactory = Callable[..., MCPServer]
"""``factory(data_dir: Path, *, reset: bool = False) -> MCPServer``."""

SERVICES: dict[str, ServiceFactory] = {
    "shop": shop.build,
    "calendar": calendar_service.build,
    "files": files.build,
    "weather": weather.build,
    "code": code_service.build,
}

DEFAULT_DATA_DIR = Path(".tooltune/demo")
"""Where state lives when no data dir is given, relative to the current directory."""

logger = logging.getLogger(__name__)


def build_server(service: str, data_dir: Path | None = None, *, reset: bool = False,
                 renames: Sequence[str] = ()) -> MCPServer:
    """Build the named demo service over ``data_dir/<service>.sqlite``, seeding it if new.

    ``reset=True`` deletes that file first, restoring the seeded state. ``renames``
    (``TOOL.OLD=NEW``) rename tool parameters: a breaking schema change, as an API's next
    version makes, for trying drift detection.
    """
    factory = SERVICES.get(service)
    if factory is None:
        raise ConfigError(f"service: unknown demo service {service!r}; choose one of {', '.join(SERVICES)}.")
    server = factory(Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR, reset=reset)
    for rename in renames:
        where, sep, new = rename.partition("=")
        tool_name, dot, old = where.partition(".")
        if not (sep and dot and tool_name and old and new):
            raise ConfigError(f"--rename-param {rename!r}: expected TOOL.PARAMETER=NEW_NAME, e.g. get_orders.customer_id=customer.")
        rename_parameter(server, tool_name, old, new)
    return server


def serve(service: str, *, data_dir: Path | None = None, http_port: int | None = None, reset: bool = False,
          renames: Sequence[str] = ()) -> None:
    """Run a demo service until interrupted: over stdio, or streamable HTTP on 127.0.0.1:http_port.

    Over stdio, stdout carries only protocol messages; everything else goes to stderr.
    """
    server = build_server(service, data_dir, reset=reset, renames=renames)
    where = (Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR).resolve()
    if http_port is None:
        logger.info("demo %s on stdio, state in %s", service, where)
        server.run("stdio")
        return
    logger.info("demo %s on http://127.0.0.1:%d/mcp, state in %s", service, http_port, where)
    server.run("streamable-http", host="127.0.0.1", port=http_port)
