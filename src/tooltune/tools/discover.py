"""Tool discovery: MCP servers (stdio or streamable HTTP), OpenAPI documents and tool files -> ``ToolCatalog``.

Every function returns a catalog whose tools carry ``service`` and ``source``. The MCP functions
talk to the server through :class:`tooltune.tools.mcp_client.MCPClient`, which also words their
errors; they are sync wrappers (``anyio.run``) over ``*_async`` variants, for callers already
inside an event loop. Their ``timeout`` bounds the whole exchange (start, initialize handshake, every tools/list
page); shutting a stdio server down afterwards adds at most a few seconds, see
``STDIO_SHUTDOWN_BOUND_S``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types

from tooltune.errors import CatalogError, DiscoveryError, DiscoveryTimeout
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.tools.documents import load_document
from tooltune.tools.mcp_client import MCPClient
from tooltune.tools.openapi import discover_openapi

__all__ = [
    "discover",
    "discover_file",
    "discover_mcp_http",
    "discover_mcp_http_async",
    "discover_mcp_stdio",
    "discover_mcp_stdio_async",
    "discover_openapi",
]

# The SDK's stdio shutdown after a timeout: close stdin, 2 s grace, SIGTERM, 2 s, SIGKILL.
STDIO_SHUTDOWN_BOUND_S = 6.0
MCP_ANNOTATION_KEYS = {
    "readOnlyHint": "read_only_hint",
    "destructiveHint": "destructive_hint",
    "idempotentHint": "idempotent_hint",
    "openWorldHint": "open_world_hint",
}


def discover(
    *,
    mcp_stdio: str | Sequence[str] | None = None,
    mcp_http: str | None = None,
    openapi: str | Path | None = None,
    file: str | Path | None = None,
    timeout: float = 30.0,
    service: str | None = None,
) -> ToolCatalog:
    """Discover tools from exactly one source; the keywords mirror the CLI's flags.

    ``timeout`` applies to the MCP sources only (files are read without one).
    """
    given = {
        k: v for k, v in {"mcp_stdio": mcp_stdio, "mcp_http": mcp_http, "openapi": openapi, "file": file}.items() if v
    }
    if len(given) != 1:
        named = ", ".join(f"--{k.replace('_', '-')}" for k in given) or "none"
        raise DiscoveryError(
            f"tools discover: give exactly one source (--mcp-stdio, --mcp-http, --openapi or --file); got {named}."
        )
    if mcp_stdio:
        return discover_mcp_stdio(mcp_stdio, timeout=timeout, service=service)
    if mcp_http:
        return discover_mcp_http(mcp_http, timeout=timeout, service=service)
    if openapi:
        return discover_openapi(openapi, service=service)
    return discover_file(file, service=service)  # type: ignore[arg-type]  # the one left


# --- MCP over stdio ---------------------------------------------------------------------------


def discover_mcp_stdio(
    command: str | Sequence[str],
    *,
    timeout: float = 30.0,
    service: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> ToolCatalog:
    """Start ``command`` as an MCP server over stdio and list all its tools (every page).

    A string command is split like a shell would (``shlex``). The server inherits this process's
    environment plus ``env``: servers often need API keys from it just to start. ``service``
    defaults to the server's ``serverInfo.name``.
    """
    return anyio.run(lambda: discover_mcp_stdio_async(command, timeout=timeout, service=service, env=env, cwd=cwd))


async def discover_mcp_stdio_async(
    command: str | Sequence[str],
    *,
    timeout: float = 30.0,
    service: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> ToolCatalog:
    """Async form of ``discover_mcp_stdio``."""
    return await _discover_mcp(MCPClient.stdio(command, env=env, cwd=cwd), timeout=timeout, service=service)


# --- MCP over streamable HTTP -----------------------------------------------------------------


def discover_mcp_http(
    url: str,
    *,
    timeout: float = 30.0,
    service: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ToolCatalog:
    """List all tools of an MCP server at ``url`` (streamable HTTP, usually ``http://host:port/mcp``).

    ``headers`` go on every request (e.g. ``Authorization``). ``service`` defaults to the
    server's ``serverInfo.name``.
    """
    return anyio.run(lambda: discover_mcp_http_async(url, timeout=timeout, service=service, headers=headers))


async def discover_mcp_http_async(
    url: str,
    *,
    timeout: float = 30.0,
    service: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ToolCatalog:
    """Async form of ``discover_mcp_http``."""
    return await _discover_mcp(MCPClient.http(url, headers=headers, timeout=timeout), timeout=timeout, service=service)


# --- shared MCP session logic -----------------------------------------------------------------


async def _discover_mcp(client: MCPClient, *, timeout: float, service: str | None) -> ToolCatalog:
    if not timeout > 0:
        raise DiscoveryError(f"{client.label}: --timeout must be a positive number of seconds, got {timeout!r}.")
    server_name: str | None = None
    listed: list[types.Tool] = []
    deadline = anyio.move_on_after(timeout)
    try:
        with deadline:
            async with client:
                server_name = client.server_name
                listed = await client.list_tools()
    except Exception as e:
        # Errors raised while the deadline unwinds the session are fallout of the timeout.
        raise (_timeout(client, timeout) if deadline.cancel_called else client.explain(e)) from e
    if deadline.cancelled_caught:
        raise _timeout(client, timeout)
    return _catalog(listed, client, service=service or server_name or client.default_name)


def _timeout(client: MCPClient, timeout: float) -> DiscoveryTimeout:
    return DiscoveryTimeout(
        f"{client.label} did not answer {client.step} within {timeout:g} s. If it is just slow, raise the "
        f"limit (--timeout {max(60, int(timeout * 4))}); otherwise {client.retry_hint}.{client.stderr_note()}"
    )


def _catalog(listed: list[types.Tool], client: MCPClient, *, service: str) -> ToolCatalog:
    tools = [
        Tool.from_dict(
            {
                "name": tool.name,
                "description": tool.description or "",
                "parameters": tool.input_schema,
                "annotations": _mcp_annotations(tool),
                "service": service,
                "source": client.source,
            },
            where=f"{client.label}: tools[{i}]",
        )
        for i, tool in enumerate(listed)
    ]
    return _unique(tools, where=client.label)


def _mcp_annotations(tool: types.Tool) -> dict[str, Any]:
    ann = tool.annotations
    hints = (
        {
            "read_only_hint": ann.read_only_hint,
            "destructive_hint": ann.destructive_hint,
            "idempotent_hint": ann.idempotent_hint,
            "open_world_hint": ann.open_world_hint,
        }
        if ann
        else {}
    )
    # MCP gives annotations.title precedence over Tool.title for display.
    return {"title": (ann.title if ann else None) or tool.title, **hints}


def _unique(tools: list[Tool], *, where: str) -> ToolCatalog:
    try:
        return ToolCatalog(tools=tools)
    except CatalogError as e:
        raise CatalogError(f"{where}: {e}") from e


# --- tool files -------------------------------------------------------------------------------


def discover_file(path: str | Path, *, service: str | None = None) -> ToolCatalog:
    """Read tools from a JSON or YAML file.

    Accepted shapes: tooltune's catalog ``{"tools": [...]}``, a bare list, OpenAI's
    ``[{"type": "function", "function": {...}}]``, and MCP's ``tools/list`` result
    ``{"tools": [{"name", "description", "inputSchema", "annotations"}]}`` (also inside a JSON-RPC
    response's ``result``). ``service`` overrides the tools' own; tools without one get the file
    stem. Tools keep a ``source`` they already carry, else get the file path.
    """
    data = load_document(path)
    where = str(path)
    if isinstance(data, dict) and isinstance(data.get("result"), dict):
        data = data["result"]  # a saved JSON-RPC response to tools/list
    if isinstance(data, dict) and "openapi" in data:
        raise DiscoveryError(f"{where}: this is an OpenAPI document; discover it with --openapi instead of --file.")
    items = data.get("tools") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise DiscoveryError(
            f'{where}: expected a list of tools or an object with a "tools" list, got {type(data).__name__}'
            f"{' with keys ' + ', '.join(map(repr, data)) if isinstance(data, dict) else ''}."
        )
    tools = []
    for i, item in enumerate(items):
        tool = Tool.from_dict(_snake_case_annotations(item), where=f"{where}: tools[{i}]")
        tools.append(
            tool.model_copy(
                update={
                    "service": service or tool.service or Path(path).stem,
                    "source": tool.source or f"file: {path}",
                }
            )
        )
    return _unique(tools, where=where)


def _snake_case_annotations(item: Any) -> Any:
    """MCP files spell hints ``readOnlyHint``; the catalog spells them ``read_only_hint``."""
    if not isinstance(item, dict) or not isinstance(item.get("annotations"), dict):
        return item
    annotations = {MCP_ANNOTATION_KEYS.get(k, k): v for k, v in item["annotations"].items()}
    return {**item, "annotations": annotations}
