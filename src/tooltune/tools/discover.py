"""Tool discovery: MCP servers (stdio or streamable HTTP), OpenAPI documents and tool files -> ``ToolCatalog``.

Every function returns a catalog whose tools carry ``service`` and ``source``. The MCP functions
are sync wrappers (``anyio.run``) over ``*_async`` variants, for callers already inside an event
loop. Their ``timeout`` bounds the whole exchange (start, initialize handshake, every tools/list
page); shutting a stdio server down afterwards adds at most a few seconds, see
``STDIO_SHUTDOWN_BOUND_S``.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import anyio
import httpx2
import mcp_types as types
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from tooltune.errors import CatalogError, DiscoveryError, DiscoveryTimeout
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.tools.documents import load_document
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
MAX_PAGES = 1000  # a server that keeps handing out cursors must not loop forever
STDERR_TAIL_LINES = 15
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
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise DiscoveryError("--mcp-stdio: the server command is empty. Give the command that starts the server.")
    label = shlex.join(argv)
    if cwd is not None and not Path(cwd).is_dir():
        raise DiscoveryError(f"MCP server `{label}`: working directory {str(cwd)!r} does not exist.")
    target = _Target(
        label=f"MCP server `{label}`",
        source=f"mcp-stdio: {label}",
        default_service=Path(argv[0]).stem,
        retry_hint="check that the command starts an MCP server that speaks stdio",
    )
    # Captured, not inherited: the server's log would clutter the CLI, but its last lines
    # are exactly what explains a crash or a hang.
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
        params = StdioServerParameters(command=argv[0], args=argv[1:], env={**os.environ, **(env or {})}, cwd=cwd)
        target.stderr_tail = lambda: _tail(errlog)
        try:
            return await _discover_mcp(
                lambda: Client(stdio_client(params, errlog=errlog)), target, timeout=timeout, service=service
            )
        except FileNotFoundError as e:
            raise DiscoveryError(
                f"{target.label}: cannot start it: command {argv[0]!r} not found. "
                "Check the spelling, that it is installed and on PATH, or give its full path."
            ) from e
        except PermissionError as e:
            raise DiscoveryError(
                f"{target.label}: cannot start it: {argv[0]!r} is not executable. "
                f"Make it executable (chmod +x) or run it through its interpreter (e.g. `python {argv[0]}`)."
            ) from e


def _tail(errlog: IO[str]) -> str:
    errlog.flush()
    size = errlog.seek(0, os.SEEK_END)
    errlog.seek(max(0, size - 16_384))
    lines = errlog.read().splitlines()[-STDERR_TAIL_LINES:]
    return "\n".join(lines).strip()


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
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DiscoveryError(
            f"--mcp-http {url!r}: not an http(s) URL. Give the endpoint, e.g. http://127.0.0.1:8000/mcp."
        )
    target = _Target(
        label=f"MCP server at {url}",
        source=f"mcp-http: {url}",
        default_service=parts.hostname or url,
        retry_hint="check that the server is running and the URL (host, port and path, usually /mcp) is right",
    )
    # Our own client only to carry the headers; the SDK follows redirects itself, so leave them off.
    async with httpx2.AsyncClient(headers=dict(headers or {}), timeout=httpx2.Timeout(timeout)) as http:
        return await _discover_mcp(
            lambda: Client(streamable_http_client(url, http_client=http)), target, timeout=timeout, service=service
        )


# --- shared MCP session logic -----------------------------------------------------------------


@dataclass
class _Target:
    """How to name one MCP server in messages and in the catalog."""

    label: str  # "MCP server `python srv.py`" / "MCP server at http://..."
    source: str
    default_service: str
    retry_hint: str
    step: str = "the initialize handshake"
    stderr_tail: Callable[[], str] | None = None  # stdio servers only

    def stderr_note(self, *, when_empty: str = "") -> str:
        tail = self.stderr_tail() if self.stderr_tail else ""
        if tail:
            return "\nLast lines of its stderr:\n" + "\n".join(f"  | {line}" for line in tail.splitlines())
        return when_empty if self.stderr_tail else ""


async def _discover_mcp(
    connect: Callable[[], Client], target: _Target, *, timeout: float, service: str | None
) -> ToolCatalog:
    if not timeout > 0:
        raise DiscoveryError(f"{target.label}: --timeout must be a positive number of seconds, got {timeout!r}.")
    server_name: str | None = None
    listed: list[types.Tool] = []
    deadline = anyio.move_on_after(timeout)
    try:
        with deadline:
            async with connect() as client:
                info = client.server_info
                server_name = info.name if info else None
                listed = await _list_all_tools(client, target)
    except Exception as e:
        # Errors raised while the deadline unwinds the session are fallout of the timeout.
        raise (_timeout(target, timeout) if deadline.cancel_called else _translate(_leaf(e), target)) from e
    if deadline.cancelled_caught:
        raise _timeout(target, timeout)
    return _catalog(listed, target, service=service or server_name or target.default_service)


def _timeout(target: _Target, timeout: float) -> DiscoveryTimeout:
    return DiscoveryTimeout(
        f"{target.label} did not answer {target.step} within {timeout:g} s. If it is just slow, raise the "
        f"limit (--timeout {max(60, int(timeout * 4))}); otherwise {target.retry_hint}.{target.stderr_note()}"
    )


async def _list_all_tools(client: Client, target: _Target) -> list[types.Tool]:
    """Follow ``nextCursor`` until the server stops handing one out."""
    if client.server_capabilities.tools is None:
        raise DiscoveryError(
            f'{target.label} does not offer tools (its capabilities have no "tools"), so there is nothing to discover.'
        )
    tools: list[types.Tool] = []
    cursor: str | None = None
    seen: set[str] = set()
    for page in range(1, MAX_PAGES + 1):
        target.step = "tools/list" if page == 1 else f"tools/list (page {page}, cursor {cursor!r})"
        result = await client.list_tools(cursor=cursor, cache_mode="bypass")
        tools.extend(result.tools)
        cursor = result.next_cursor
        if not cursor:
            return tools
        if cursor in seen:
            raise DiscoveryError(
                f"{target.label} returned nextCursor {cursor!r} twice while paging tools/list; its pagination loops."
            )
        seen.add(cursor)
    raise DiscoveryError(
        f"{target.label} still returned a nextCursor after {MAX_PAGES} pages of tools/list; giving up."
    )


def _leaf(error: BaseException) -> BaseException:
    """The first real error inside the SDK's (nested) task-group exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _translate(error: BaseException, target: _Target) -> BaseException:
    """Turn an SDK/transport failure into a DiscoveryError that says what happened and what to try."""
    if isinstance(error, (DiscoveryError, OSError)) and not isinstance(error, ConnectionError):
        return error  # ours already, or a spawn failure the stdio caller words itself
    if isinstance(error, (httpx2.ConnectError, ConnectionError)):
        return DiscoveryError(
            f"{target.label}: cannot connect ({error}). Check that the server is running and the URL is right."
        )
    if isinstance(error, httpx2.HTTPError):
        return DiscoveryError(
            f"{target.label}: HTTP error during {target.step}: {error}. {target.retry_hint.capitalize()}."
        )
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return DiscoveryError(
            f"{target.label} answered {target.step} with a result that breaks the MCP schema at {loc}: {first['msg']}. "
            "This is a bug in the server."
        )
    if isinstance(error, MCPError):
        if error.code == types.CONNECTION_CLOSED:
            return DiscoveryError(
                f"{target.label} closed the connection during {target.step} (it exited or crashed). "
                f"Run it by hand to see why.{target.stderr_note(when_empty=' It wrote nothing to stderr.')}"
            )
        return DiscoveryError(
            f"{target.label} answered {target.step} with error {error.code}: {error.error.message}. "
            f"{target.retry_hint.capitalize()}.{target.stderr_note()}"
        )
    return DiscoveryError(
        f"{target.label}: {target.step} failed: {type(error).__name__}: {error}.{target.stderr_note()}"
    )


def _catalog(listed: list[types.Tool], target: _Target, *, service: str) -> ToolCatalog:
    tools = [
        Tool.from_dict(
            {
                "name": tool.name,
                "description": tool.description or "",
                "parameters": tool.input_schema,
                "annotations": _mcp_annotations(tool),
                "service": service,
                "source": target.source,
            },
            where=f"{target.label}: tools[{i}]",
        )
        for i, tool in enumerate(listed)
    ]
    return _unique(tools, where=target.label)


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
