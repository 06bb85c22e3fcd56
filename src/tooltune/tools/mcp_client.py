"""The one MCP client: connect to a server, list its tools, call one, decode the result.

Discovery (:mod:`tooltune.tools.discover`), the data chains (:mod:`tooltune.data.sequences`), the
agent loop (:mod:`tooltune.runtime.agent`) and ``tooltune chat`` all talk to MCP servers through
:class:`MCPClient`, a thin layer over the official SDK's ``mcp.client.Client``. A server is reached
one of three ways:

- :meth:`MCPClient.stdio`: start a command and speak MCP over its stdin/stdout. It inherits this
  process's environment (servers often need API keys just to start); its stderr goes to a
  temporary file, off the terminal, and its last lines explain a crash.
- :meth:`MCPClient.http`: a streamable-HTTP endpoint (usually ``http://host:port/mcp``).
- :meth:`MCPClient.in_process`: an ``MCPServer`` object in this process (the demo services in the
  data chains and the agent loop), no subprocess.

A server that cannot be reached, or that fails the handshake or ``tools/list``, raises
:class:`~tooltune.errors.DiscoveryError` naming the server (its command or URL), the step and
what to try. A call never raises: :meth:`MCPClient.call_tool` decodes what the server answered into
one :class:`CallResult`, and a tool error or a protocol error is a result with ``is_error``: it is
the caller's failed call (the model's, in the agent loop), not the session's.
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import mcp_types as types
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from tooltune.errors import DiscoveryError
from tooltune.safeload import loads_json

__all__ = ["CallResult", "MCPClient", "decode_result", "quiet_mcp_logs"]

MAX_PAGES = 1000  # a server that keeps handing out cursors must not loop forever
STDERR_TAIL_LINES = 15
HTTP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class CallResult:
    """What one ``tools/call`` gave, decoded."""

    value: Any
    """The structured content; else the text content parsed as JSON; else that text. The error
    text when ``is_error``."""
    is_error: bool


def decode_result(result: types.CallToolResult) -> CallResult:
    """One shape for every answer: structured content first, then text that holds JSON, then text."""
    text = " ".join(getattr(c, "text", "") for c in result.content)
    if result.is_error:
        return CallResult(text, is_error=True)
    if result.structured_content is not None:
        return CallResult(result.structured_content, is_error=False)
    try:
        return CallResult(loads_json(text), is_error=False)
    except ValueError:  # also a JSON document over the parsing limits: kept as the text it is
        return CallResult(text, is_error=False)


class MCPClient:
    """A session with one MCP server; use inside ``async with``.

    Build it with :meth:`stdio`, :meth:`http` or :meth:`in_process`; arguments are checked there,
    before anything starts. ``label``, ``source`` and ``default_name`` say how to name the server
    in messages and in a catalog; ``step`` is the exchange under way, named when it fails."""

    def __init__(self, server: StdioServerParameters | str | MCPServer, *, label: str, source: str, default_name: str,
                 retry_hint: str, headers: Mapping[str, str] | None = None, http_timeout: float = HTTP_TIMEOUT_S):
        self._server = server
        self._headers, self._http_timeout = dict(headers or {}), http_timeout
        self.label = label  # "MCP server `python srv.py`" / "MCP server at http://..."
        self.source = source  # "mcp-stdio: python srv.py" / "mcp-http: http://..."
        self.default_name = default_name  # the service name when the server gives none
        self.retry_hint = retry_hint
        self.step = "the initialize handshake"
        self._stderr: _Stderr | None = None
        self._client: Client | None = None
        self._stack: AsyncExitStack | None = None

    # -- the three ways to reach a server -------------------------------------------------------

    @classmethod
    def stdio(cls, command: str | Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: str | Path | None = None) -> MCPClient:
        """Start ``command`` (split like a shell would when a string) as a server over stdio. It
        inherits this process's environment plus ``env``."""
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not argv:
            raise DiscoveryError("--mcp-stdio: the server command is empty. Give the command that starts the server.")
        shown = shlex.join(argv)
        if cwd is not None and not Path(cwd).is_dir():
            raise DiscoveryError(f"MCP server `{shown}`: working directory {str(cwd)!r} does not exist.")
        params = StdioServerParameters(command=argv[0], args=argv[1:], env={**os.environ, **(env or {})}, cwd=cwd)
        return cls(params, label=f"MCP server `{shown}`", source=f"mcp-stdio: {shown}", default_name=Path(argv[0]).stem,
                   retry_hint="check that the command starts an MCP server that speaks stdio")

    @classmethod
    def http(cls, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = HTTP_TIMEOUT_S) -> MCPClient:
        """A server over streamable HTTP at ``url``; ``headers`` go on every request (e.g.
        ``Authorization``), ``timeout`` bounds each HTTP request."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DiscoveryError(
                f"--mcp-http {url!r}: not an http(s) URL. Give the endpoint, e.g. http://127.0.0.1:8000/mcp."
            )
        return cls(url, label=f"MCP server at {url}", source=f"mcp-http: {url}", default_name=parts.hostname or url,
                   retry_hint="check that the server is running and the URL (host, port and path, usually /mcp) is right",
                   headers=headers, http_timeout=timeout)

    @classmethod
    def in_process(cls, server: MCPServer) -> MCPClient:
        """``server`` in this process, through the SDK's in-memory connection."""
        return cls(server, label=f"MCP server {server.name!r} (in process)", source=f"mcp-in-process: {server.name}",
                   default_name=server.name, retry_hint="check how the server object is built")

    # -- the session ----------------------------------------------------------------------------

    async def __aenter__(self) -> MCPClient:
        async with AsyncExitStack() as stack:
            try:
                self._client = await stack.enter_async_context(Client(await self._connection(stack)))
            except Exception as e:
                raise self.explain(e) from e
            self._stack = stack.pop_all()
        return self

    async def _connection(self, stack: AsyncExitStack) -> Any:
        """What ``mcp.client.Client`` connects to, with the resources it needs on ``stack``."""
        if isinstance(self._server, StdioServerParameters):
            self._stderr = stack.enter_context(_Stderr())
            return stdio_client(self._server, errlog=self._stderr.file)
        if isinstance(self._server, str):
            # Our own HTTP client only to carry the headers and timeout; the SDK follows redirects itself.
            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers=self._headers, timeout=httpx2.Timeout(self._http_timeout)))
            return streamable_http_client(self._server, http_client=http)
        return self._server

    async def __aexit__(self, *exc: Any) -> bool | None:
        stack, self._stack, self._client = self._stack, None, None
        return await stack.__aexit__(*exc) if stack else None

    @property
    def sdk(self) -> Client:
        """The connected ``mcp.client.Client``, for what this class does not wrap."""
        if self._client is None:
            raise RuntimeError(f"{self.label}: not connected; use the client inside `async with`.")
        return self._client

    @property
    def server_name(self) -> str | None:
        """``serverInfo.name``, or None when the server does not identify itself."""
        info = self.sdk.server_info
        return info.name if info else None

    async def list_tools(self) -> list[types.Tool]:
        """Every tool the server offers, following ``nextCursor`` until the server stops handing one out."""
        if self.sdk.server_capabilities.tools is None:
            raise DiscoveryError(
                f'{self.label} does not offer tools (its capabilities have no "tools"), so there is nothing to discover.'
            )
        tools: list[types.Tool] = []
        cursor: str | None = None
        seen: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            self.step = "tools/list" if page == 1 else f"tools/list (page {page}, cursor {cursor!r})"
            try:
                result = await self.sdk.list_tools(cursor=cursor, cache_mode="bypass")
            except Exception as e:
                raise self.explain(e) from e
            tools.extend(result.tools)
            cursor = result.next_cursor
            if not cursor:
                return tools
            if cursor in seen:
                raise DiscoveryError(
                    f"{self.label} returned nextCursor {cursor!r} twice while paging tools/list; its pagination loops."
                )
            seen.add(cursor)
        raise DiscoveryError(f"{self.label} still returned a nextCursor after {MAX_PAGES} pages of tools/list; giving up.")

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> CallResult:
        """Call ``name``; a tool error or a protocol error is a result with ``is_error``, never an exception."""
        self.step = f"tools/call {name}"
        sdk = self.sdk  # outside the try: a client used outside its session is the caller's bug
        try:
            result = await sdk.call_tool(name, arguments)
        except Exception as e:  # noqa: BLE001 - the server refused this call; the caller decides what that means
            return CallResult(f"{type(e).__name__}: {e}", is_error=True)
        return decode_result(result)

    # -- errors ---------------------------------------------------------------------------------

    def explain(self, error: BaseException) -> BaseException:
        """An SDK or transport failure as a DiscoveryError that names the server, the step and what to try.
        Errors that are already tooltune's pass unchanged."""
        error = _leaf(error)
        if isinstance(error, DiscoveryError):
            return error
        if self._spawned and isinstance(error, FileNotFoundError):
            return DiscoveryError(
                f"{self.label}: cannot start it: command {self._spawned!r} not found. "
                "Check the spelling, that it is installed and on PATH, or give its full path."
            )
        if self._spawned and isinstance(error, PermissionError):
            return DiscoveryError(
                f"{self.label}: cannot start it: {self._spawned!r} is not executable. "
                f"Make it executable (chmod +x) or run it through its interpreter (e.g. `python {self._spawned}`)."
            )
        if isinstance(error, OSError) and not isinstance(error, ConnectionError):
            return error
        if isinstance(error, (httpx2.ConnectError, ConnectionError)):
            return DiscoveryError(
                f"{self.label}: cannot connect ({error}). Check that the server is running and the URL is right."
            )
        if isinstance(error, httpx2.HTTPError):
            return DiscoveryError(f"{self.label}: HTTP error during {self.step}: {error}. {self.retry_hint.capitalize()}.")
        if isinstance(error, ValidationError):
            first = error.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            return DiscoveryError(
                f"{self.label} answered {self.step} with a result that breaks the MCP schema at {loc}: {first['msg']}. "
                "This is a bug in the server."
            )
        if isinstance(error, MCPError):
            if error.code == types.CONNECTION_CLOSED:
                return DiscoveryError(
                    f"{self.label} closed the connection during {self.step} (it exited or crashed). "
                    f"Run it by hand to see why.{self.stderr_note(when_empty=' It wrote nothing to stderr.')}"
                )
            return DiscoveryError(
                f"{self.label} answered {self.step} with error {error.code}: {error.error.message}. "
                f"{self.retry_hint.capitalize()}.{self.stderr_note()}"
            )
        return DiscoveryError(f"{self.label}: {self.step} failed: {type(error).__name__}: {error}.{self.stderr_note()}")

    @property
    def _spawned(self) -> str | None:
        """argv[0] of a stdio server: a failure to start it names the command."""
        return self._server.command if isinstance(self._server, StdioServerParameters) else None

    def stderr_note(self, *, when_empty: str = "") -> str:
        """The last lines a stdio server wrote to stderr, to append to a message ('' for other servers)."""
        if self._stderr is None:
            return ""
        tail = self._stderr.tail()
        if tail:
            return "\nLast lines of its stderr:\n" + "\n".join(f"  | {line}" for line in tail.splitlines())
        return when_empty


class _Stderr:
    """A stdio server's stderr, in a temporary file rather than inherited: the server's log would
    clutter the terminal, but its last lines are exactly what explains a crash or a hang. The tail
    stays readable after the session closed the file (a timeout is reported after the unwinding)."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        self._last = ""

    def __enter__(self) -> _Stderr:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._last = self.tail()
        self.file.close()

    def tail(self) -> str:
        if self.file.closed:
            return self._last
        self.file.flush()
        size = self.file.seek(0, os.SEEK_END)
        self.file.seek(max(0, size - 16_384))
        lines = self.file.read().splitlines()[-STDERR_TAIL_LINES:]
        return "\n".join(lines).strip()


def _leaf(error: BaseException) -> BaseException:
    """The first real error inside the SDK's (nested) task-group exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


@contextmanager
def quiet_mcp_logs() -> Iterator[None]:
    """Silence the SDK's per-call INFO lines of in-process servers ("Tool 'x' failed"): in data
    generation and evaluation failures are expected, and they are counted in the result instead."""
    logger = logging.getLogger("mcp.server.mcpserver")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
