"""``tooltune chat``: a model drives a live MCP server, optionally side by side with another.

The server's tools are discovered (:func:`tooltune.tools.discover.discover`), then each query
goes through :func:`tooltune.runtime.agent.drive`, the agent driver the evaluation uses too: every call the
model makes is executed on the real server and its result fed back until the model answers in
text. The model runs in this process (:class:`~tooltune.runtime.generate.Generator`, the
evaluation's generation) or behind an OpenAI-compatible ``endpoint`` (``tooltune serve``,
vLLM) through :class:`EndpointModel`.

Each side (base, tuned) gets its own server session (:class:`tooltune.tools.mcp_client.MCPClient`,
the client discovery uses too); a stdio command is started once per side,
so a server started with ``--reset`` gives both the same seeded state. Every query starts a new
conversation.

The MCP result of every call closes the judgement of the turn that made it: with a log
(``--log-dir``) each turn is written as a production-log line with its tool results (a call the
server rejected makes the turn a failure, however well it parsed), and a model behind
``tooltune serve`` gets each turn's results as ``POST /v1/feedback`` on its response, so the
server's own log says which of its calls failed.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, Field

from tooltune.data.log_writer import LogWriter
from tooltune.errors import ConfigError, DiscoveryError
from tooltune.formats.base import CallFormat, get_format
from tooltune.runtime.agent import Conversation, TurnModel, drive
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.tools.mcp_client import MCPClient

logger = logging.getLogger(__name__)


class Exchange(BaseModel):
    """One query answered by one side."""

    side: str
    query: str
    conversation: Conversation
    latency_s: float = Field(description="Wall time from the query to the final answer, tool calls included.")


class EndpointModel:
    """A model behind an OpenAI-compatible endpoint, as the loop's :class:`TurnModel`.

    The endpoint parses the model's calls itself and returns OpenAI ``tool_calls``; they are
    written back as hermes text, which the loop's hermes parser reads exactly (parse(render)
    holds for every tooltune format)."""

    call_format: CallFormat = get_format("hermes")

    def __init__(self, endpoint: str, model: str, *, service: str | None = None, max_tokens: int = 256, timeout: float = 120):
        from openai import OpenAI

        from tooltune.serve.settings import SERVICE_HEADER

        headers = {SERVICE_HEADER: service} if service else None
        self.client = OpenAI(base_url=endpoint, api_key=os.environ.get("OPENAI_API_KEY", "tooltune"),
                             default_headers=headers, timeout=timeout, max_retries=0)
        self.model, self.max_tokens, self.service = model, max_tokens, service
        self.response_ids: list[str] = []
        """The id of every completion, in order: feedback goes to them."""
        self.feedback = True
        """Post tool results to the endpoint's /v1/feedback; off once the endpoint has none."""

    def complete(self, messages: list[dict[str, Any]], tools: list[Tool] | None) -> str:
        from openai import OpenAIError

        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=[_openai_message(m) for m in messages], max_tokens=self.max_tokens,
                **({"tools": [t.to_openai() for t in tools]} if tools else {}))
        except OpenAIError as e:
            raise ConfigError(f"--endpoint {self.client.base_url}: the request for model {self.model!r} failed: {e}") from e
        self.response_ids.append(response.id)
        message = response.choices[0].message
        calls = [ToolCall(c.function.name, json.loads(c.function.arguments or "{}")) for c in message.tool_calls or []]
        text = self.call_format.render(calls) if calls else ""
        return "\n".join(part for part in (message.content or "", text) if part)

    def report(self, conversation: Conversation, response_ids: list[str]) -> None:
        """Send each turn's tool results to the server that answered it (``POST /v1/feedback``).
        An endpoint without the route (not tooltune serve, or logging off) is told nothing more."""
        import httpx

        for i, response_id in enumerate(response_ids):
            if not self.feedback or i >= len(conversation.turn_calls) or not conversation.turn_calls[i]:
                continue
            first = sum(conversation.turn_calls[:i])
            ran = conversation.calls[first:first + conversation.turn_calls[i]]
            body = {"response_id": response_id, "outcome": "failure" if any(c.is_error for c in ran) else "success",
                    "tool_results": [{"name": c.name, "is_error": c.is_error, "result": c.result} for c in ran]}
            try:
                answer = httpx.post(f"{str(self.client.base_url).rstrip('/')}/feedback", json=body, timeout=30,
                                    headers={"Authorization": f"Bearer {self.client.api_key}"})
            except httpx.HTTPError as e:
                logger.warning("chat: cannot send tool results to %s: %s", self.client.base_url, e)
                continue
            if answer.status_code == 404 and "response_not_found" not in answer.text:
                self.feedback = False  # not a tooltune server, or one that keeps no log
                logger.warning("chat: %s takes no feedback (%s); tool results are not sent", self.client.base_url,
                               answer.text[:200])
            elif answer.status_code >= 400:
                logger.warning("chat: feedback on %s refused (%d): %s", response_id, answer.status_code, answer.text[:200])


def read_queries(path: str | Path) -> list[str]:
    """One query per non-empty line; lines starting with ``#`` are comments."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise ConfigError(f"--queries {path}: cannot read it: {e}") from e
    queries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not queries:
        raise ConfigError(f"--queries {path}: holds no query; write one query per line.")
    return queries


def discover_tools(*, mcp_stdio: str | None, mcp_http: str | None) -> ToolCatalog:
    if bool(mcp_stdio) == bool(mcp_http):
        raise ConfigError("chat: give exactly one MCP server, --mcp-stdio CMD or --mcp-http URL.")
    from tooltune.tools.discover import discover

    return discover(mcp_stdio=mcp_stdio, mcp_http=mcp_http)


def run_chat(sides: Sequence[tuple[str, TurnModel]], queries: Sequence[str], tools: Sequence[Tool], *,
             mcp_stdio: str | None = None, mcp_http: str | None = None, max_steps: int = 6,
             log: LogWriter | None = None) -> list[list[Exchange]]:
    """Every query through every side's loop; result[i][j] is query i answered by side j.
    ``log``: every turn goes there as a production-log line with its calls' MCP results."""

    async def main() -> list[list[Exchange]]:
        per_side: list[list[Exchange]] = []
        for label, model in sides:
            async with connect(mcp_stdio=mcp_stdio, mcp_http=mcp_http) as client:
                per_side.append([await _ask(label, model, client, q, list(tools), max_steps, log) for q in queries])
        return [list(row) for row in zip(*per_side, strict=True)]

    return anyio.run(main)


async def _ask(label: str, model: TurnModel, client: MCPClient, query: str, tools: list[Tool], max_steps: int,
               log: LogWriter | None) -> Exchange:
    started = time.perf_counter()
    answered = len(model.response_ids) if isinstance(model, EndpointModel) else 0
    done = await drive(model, client, [{"role": "user", "content": query}], tools, max_steps=max_steps)
    exchange = Exchange(side=label, query=query, conversation=done, latency_s=time.perf_counter() - started)
    if isinstance(model, EndpointModel):
        await anyio.to_thread.run_sync(model.report, done, model.response_ids[answered:])
    if log is not None:
        service = model.service if isinstance(model, EndpointModel) else None
        name = model.model if isinstance(model, EndpointModel) else label
        for entry in done.interaction_logs(tools, id_prefix=f"chat-{uuid.uuid4().hex[:16]}", model=name, service=service):
            log.write(entry)
    return exchange


def connect(*, mcp_stdio: str | None = None, mcp_http: str | None = None) -> MCPClient:
    """An :class:`~tooltune.tools.mcp_client.MCPClient` to a stdio command or a streamable-HTTP URL;
    connect it with ``async with``."""
    if mcp_stdio:
        return MCPClient.stdio(mcp_stdio)
    if not mcp_http:
        raise DiscoveryError("chat: no MCP server given (--mcp-stdio or --mcp-http).")
    return MCPClient.http(mcp_http)


def transcript_panel(exchange: Exchange) -> Any:
    """One side's answer to one query as a rich panel: calls, MCP results, answer, latency."""
    from rich.panel import Panel
    from rich.text import Text

    text = Text()
    done = exchange.conversation
    for call in done.calls:
        args = json.dumps(call.arguments, ensure_ascii=False)
        text.append(f"→ {call.name}({args})\n", style="bold cyan")
        result = call.result if isinstance(call.result, str) else json.dumps(call.result, ensure_ascii=False)
        text.append(f"  ← {_short(result)}\n", style="red" if call.is_error else "green")
    if done.ending == "answered":
        text.append(f"answer: {done.final_text or '(empty)'}\n", style="bold")
    else:
        text.append(f"ended: {done.ending}; last turn: {_short(done.turns[-1] if done.turns else '')}\n", style="yellow")
    subtitle = f"{len(done.calls)} calls · {exchange.latency_s:.2f} s · {done.ending}"
    return Panel(text, title=exchange.side, subtitle=subtitle, expand=True)


def comparison_view(row: Sequence[Exchange]) -> Any:
    """The sides' panels for one query, side by side."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(expand=True, padding=(0, 1))
    for _ in row:
        grid.add_column(ratio=1)
    grid.add_row(*[transcript_panel(e) for e in row])
    return Group(Text(f"» {row[0].query}", style="bold magenta"), grid)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _openai_message(message: dict[str, Any]) -> dict[str, Any]:
    """A tooltune-shaped message as the OpenAI API wants it: arguments and tool results as text."""
    out = dict(message)
    if message.get("tool_calls"):
        out["tool_calls"] = [{"id": tc.get("id") or f"call_{i}", "type": "function",
                              "function": {"name": tc["function"]["name"],
                                           "arguments": json.dumps(tc["function"]["arguments"], ensure_ascii=False)}}
                             for i, tc in enumerate(message["tool_calls"])]
        out["content"] = message.get("content") or None
    if message.get("role") == "tool" and not isinstance(message.get("content"), str):
        out["content"] = json.dumps(message.get("content"), ensure_ascii=False)
    return out
