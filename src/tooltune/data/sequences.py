"""Multi-step chains: declared call sequences, executed against a real MCP server.

A :class:`Chain` is a sequence of calls where later arguments use earlier results through
references (``{prev.customer_id}``, ``{steps[0].customer_id}``, see
:data:`tooltune.data.examples.REFERENCE`), plus the requests that ask for it. Its *slots*
(``{email}``, ``{state}``) are the free inputs; one choice of slot values is a chain
*instance*. Generation executes each distinct instance once and records every step's result,
so the references of a synthetic sequence resolve to what the server really returned.

Instances run in-process through tooltune's MCP client (:meth:`tooltune.tools.mcp_client.MCPClient.in_process`
on the server object, no subprocess), which also decodes each result. Read-only chains (every tool's ``read_only_hint``) share one server per
service; a chain that writes runs on a fresh copy of the seeded state, so its result does not
depend on which instances ran before it and output stays deterministic for a seed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

from tooltune.data.examples import resolve_references
from tooltune.errors import DataError
from tooltune.tools.catalog import ToolCatalog
from tooltune.tools.mcp_client import MCPClient

__all__ = ["Chain", "ChainRunner", "ChainStep", "Execution", "ServerFactory", "chains_for", "fill_slots", "writes"]

_SLOT = re.compile(r"\{([a-z_][a-z0-9_]*)\}")

ServerFactory = Callable[[str, Path], MCPServer]
"""``factory(service, data_dir) -> MCPServer``, given by the caller (the demo's is :func:`tooltune.demo.build_server`)."""


@dataclass(frozen=True)
class ChainStep:
    tool: str
    arguments: dict[str, Any]
    """Literal values, whole-string ``"{slot}"`` placeholders (filled from the instance, also
    inside lists), and references to earlier results (kept in the expected call)."""


@dataclass(frozen=True)
class Chain:
    """A declared multi-step flow of one service and the requests that ask for it."""

    id: str
    service: str
    steps: tuple[ChainStep, ...]
    slots: dict[str, tuple[Any, ...]]
    """Slot name → the values an instance draws from (values the demo world holds)."""
    requests: tuple[str, ...]
    """User requests with ``{slot}`` placeholders; each is one phrasing template."""
    slot_params: dict[str, str] = field(default_factory=dict)
    """Slot → ``"tool.param"`` it fills, so enum slots are worded through the domain vocabulary."""
    answer: str | None = None
    """Final assistant reply; references in it are substituted as text."""

    @property
    def tools(self) -> list[str]:
        return [s.tool for s in self.steps]


@dataclass
class Execution:
    """What running one chain instance gave: every step's arguments as sent and its result,
    or the failure that stopped it."""

    arguments: list[dict[str, Any]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    failure: str | None = None
    """Reason code: ``tool_error:<tool>`` or ``unresolved_reference:<tool>``."""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


def fill_slots(value: Any, slots: dict[str, Any]) -> Any:
    """Replace whole-string ``"{slot}"`` placeholders with the slot's value (any type)."""
    if isinstance(value, dict):
        return {k: fill_slots(v, slots) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_slots(v, slots) for v in value]
    if isinstance(value, str):
        m = _SLOT.fullmatch(value)
        if m and m.group(1) in slots:
            return slots[m.group(1)]
    return value


def chains_for(catalog: ToolCatalog, chains: list[Chain]) -> list[Chain]:
    """The chains whose every tool is in ``catalog``."""
    return [c for c in chains if all(t in catalog for t in c.tools)]


def writes(chain: Chain, catalog: ToolCatalog) -> bool:
    """Whether any step may change state (a tool not explicitly marked read-only)."""
    return any(catalog.get(t).annotations.read_only_hint is not True for t in chain.tools)


class ChainRunner:
    """Executes chain instances against demo servers; use inside ``async with``.

    Each service gets two servers: one over the pristine state for read-only chains, and one
    over a scratch copy for chains that write, whose files are restored from the pristine copy
    before every instance (the demo databases open a connection per transaction, so swapping
    the file between calls is safe, and far cheaper than building a server per instance)."""

    def __init__(self, catalog: ToolCatalog, factory: ServerFactory, data_dir: Path | None = None):
        self.catalog = catalog
        self.factory = factory
        self._stack = AsyncExitStack()
        self._tmp = Path(tempfile.mkdtemp(prefix="tooltune-chains-"))
        self._pristine = Path(data_dir) if data_dir is not None else self._tmp / "pristine"
        self._clients: dict[tuple[str, bool], MCPClient] = {}

    async def __aenter__(self) -> ChainRunner:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self._stack.aclose()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    async def run(self, chain: Chain, slots: dict[str, Any]) -> Execution:
        """Execute one instance step by step; stops at the first failing step."""
        scratch = writes(chain, self.catalog)
        client = await self._client(chain.service, scratch)
        if scratch:
            self._restore(chain.service)
        return await _execute(client, chain, slots)

    async def _client(self, service: str, scratch: bool) -> MCPClient:
        key = (service, scratch)
        if key not in self._clients:
            if (service, False) not in self._clients:  # seeds the pristine state first
                self._clients[(service, False)] = await self._stack.enter_async_context(
                    MCPClient.in_process(self.factory(service, self._pristine)))
            if scratch:
                self._restore(service)
                self._clients[key] = await self._stack.enter_async_context(
                    MCPClient.in_process(self.factory(service, self._scratch(service))))
        return self._clients[key]

    def _scratch(self, service: str) -> Path:
        return self._tmp / f"scratch-{service}"

    def _restore(self, service: str) -> None:
        scratch = self._scratch(service)
        for source in self._pristine.rglob("*"):
            if source.is_file() and not source.name.endswith(("-journal", "-wal", "-shm")):
                target = scratch / source.relative_to(self._pristine)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)


async def _execute(client: MCPClient, chain: Chain, slots: dict[str, Any]) -> Execution:
    out = Execution()
    for i, step in enumerate(chain.steps):
        try:
            args = resolve_references(fill_slots(step.arguments, slots), out.results, i)
        except DataError as e:
            out.failure, out.message = f"unresolved_reference:{step.tool}", str(e)
            return out
        result = await client.call_tool(step.tool, args)
        out.arguments.append(args)
        if result.is_error:
            out.failure, out.message = f"tool_error:{step.tool}", result.value
            return out
        out.results.append(result.value)
    return out
