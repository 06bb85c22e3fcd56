"""The agent driver: a model drives a connected MCP server, turn by turn, until it answers.

Each turn the model generates is parsed with its call format; its calls are executed on the
server through tooltune's MCP client (:class:`tooltune.tools.mcp_client.MCPClient`: in memory,
stdio or HTTP) and their results go back to the model as ``tool`` messages rendered by
``render_chat``. The loop ends when the model answers in text, when its output is malformed,
when it repeats its previous turn's calls exactly (a loop: they run once more, then the run
ends), or after ``max_steps`` model turns.

The evaluation scores the runs it drives against sequence examples (:mod:`tooltune.eval.agent`);
``tooltune chat`` drives a live server with it (:mod:`tooltune.serve.chat`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from tooltune.data.feedback import InteractionLog, LoggedCall, ToolResult
from tooltune.formats.base import CallFormat, ParseKind
from tooltune.formats.chat import assistant_message
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool
from tooltune.tools.mcp_client import MCPClient

Ending = Literal["answered", "malformed", "repeated", "step_limit"]


class TurnModel(Protocol):
    """What the loop needs from a model: its call format and the raw text of its next turn.
    :class:`tooltune.runtime.generate.Generator` is one; tests use scripted fakes."""

    @property
    def call_format(self) -> CallFormat: ...

    def complete(self, messages: list[dict[str, Any]], tools: list[Tool] | None) -> str: ...


class Executed(BaseModel):
    """One call the model made, as executed on the server."""

    name: str
    arguments: dict[str, Any]
    result: Any = Field(description="Structured result, or the error text when is_error.")
    is_error: bool


class Conversation(BaseModel):
    """What :func:`drive` did: the calls executed, every raw model turn and how it ended."""

    messages: list[dict[str, Any]] = Field(description="The conversation with every assistant turn and tool result.")
    calls: list[Executed]
    turns: list[str]
    ending: Ending
    final_text: str | None = None
    turn_starts: list[int] = Field(default_factory=list, description="len(messages) when each turn was generated: its prompt.")
    turn_calls: list[int] = Field(default_factory=list, description="How many of ``calls`` each turn made.")

    def interaction_logs(self, tools: Sequence[Tool], *, id_prefix: str, model: str,
                         service: str | None = None) -> list[InteractionLog]:
        """One production-log line per model turn (the format ``data.logs`` reads), each with the
        MCP result of its calls: a call the server rejected makes its turn a ``failure``, calls it
        all accepted a ``success``; a text answer is ``unrated`` (nothing ran to judge it)."""
        logs = []
        for i, text in enumerate(self.turns):
            first = sum(self.turn_calls[:i])
            ran = self.calls[first:first + self.turn_calls[i]] if i < len(self.turn_calls) else []
            malformed = self.ending == "malformed" and i == len(self.turns) - 1
            outcome = ("error" if malformed else "failure" if any(c.is_error for c in ran)
                       else "success" if ran else "unrated")
            logs.append(InteractionLog(
                id=f"{id_prefix}-{i}", timestamp=datetime.now(timezone.utc), messages=self.messages[:self.turn_starts[i]],
                tools=[t.name for t in tools], calls=[LoggedCall(name=c.name, arguments=c.arguments) for c in ran],
                outcome=outcome, model=model, service=service, raw_output=text,
                parse_problems=["call markup does not parse"] if malformed else [],
                tool_results=[ToolResult(name=c.name, is_error=c.is_error, result=c.result) for c in ran]))
        return logs


async def drive(model: TurnModel, client: MCPClient, messages: list[dict[str, Any]], tools: list[Tool], *,
                max_steps: int = 6) -> Conversation:
    """The loop itself, on any connected MCP ``client`` (in memory, stdio or HTTP): the model's
    calls are executed on the server and their results fed back until it answers in text, its
    output is malformed, it repeats its previous turn's calls exactly (executed once more, then
    the run ends: ``repeated``), or ``max_steps`` model turns have been made."""
    return (await drive_many(model, [client], [messages], [tools], max_steps=max_steps))[0]


async def drive_many(model: TurnModel, clients: Sequence[MCPClient], conversations: Sequence[list[dict[str, Any]]],
                     tools: Sequence[list[Tool]], *, max_steps: int = 6,
                     first_turns: Sequence[str] | None = None) -> list[Conversation]:
    """:func:`drive` for many conversations in lock step, each on its own client: every round, the
    next turn of all the runs still going is generated together (one batch for a model that batches,
    :meth:`~tooltune.runtime.generate.Generator.complete_many`), then each run's calls execute on its
    own server. Each run is the greedy run :func:`drive` would make, up to the rounding left padding
    brings (as in the first-turn evaluation); on a CPU a batch of 16 turns costs a few times one.
    ``first_turns`` (one per conversation) stand in for the first round's generation."""
    if not len(clients) == len(conversations) == len(tools):
        raise ValueError(f"one client and tool list per conversation, got {len(clients)}, {len(conversations)}, {len(tools)}")
    dialogues = [_Dialogue(list(m), t) for m, t in zip(conversations, tools, strict=True)]
    fmt = model.call_format
    for round_ in range(max_steps):
        live = [(d, c) for d, c in zip(dialogues, clients, strict=True) if d.ending is None]
        if not live:
            break
        if round_ == 0 and first_turns is not None:
            texts = list(first_turns)
        else:
            texts = complete_many(model, [(d.messages, d.tools) for d, _ in live])
        for (dialogue, client), text in zip(live, texts, strict=True):
            for call, call_id in dialogue.take(fmt, text):
                dialogue.record(call_id, await execute_call(client, call.name, call.arguments))
    return [d.conversation() for d in dialogues]


def complete_many(model: TurnModel, requests: Sequence[tuple[list[dict[str, Any]], list[Tool] | None]]) -> list[str]:
    """The next turn of each request: batched when the model offers ``complete_many`` (a
    :class:`~tooltune.runtime.generate.Generator`), else one :meth:`TurnModel.complete` at a time."""
    batched = getattr(model, "complete_many", None)
    if batched is not None:
        return list(batched(requests))
    return [model.complete(messages, tools) for messages, tools in requests]


class _Dialogue:
    """One run's state between turns: the conversation so far, its executed calls and how it ended."""

    def __init__(self, messages: list[dict[str, Any]], tools: list[Tool]):
        self.messages, self.tools = messages, tools
        self.calls: list[Executed] = []
        self.turns: list[str] = []
        self.turn_starts: list[int] = []
        self.turn_calls: list[int] = []
        self.ending: Ending | None = None
        self.final_text: str | None = None
        self._last_called: list[tuple[str, dict[str, Any]]] | None = None

    def take(self, fmt: CallFormat, text: str) -> list[tuple[ToolCall, str]]:
        """Record the model's turn; the calls to execute with their ids (none once the run ends)."""
        self.turns.append(text)
        self.turn_starts.append(len(self.messages))
        self.turn_calls.append(0)
        parsed = fmt.parse(text)
        if parsed.kind is ParseKind.NO_CALL:
            self.ending, self.final_text = "answered", parsed.content
            return []
        if parsed.kind is ParseKind.MALFORMED:
            self.ending = "malformed"
            return []
        ids = [f"call_{len(self.calls) + k}" for k in range(len(parsed.calls))]
        called = [(c.name, c.arguments) for c in parsed.calls]
        if called == self._last_called:
            # The same calls as the turn before, after seeing their result: a small model stuck in
            # a loop (the demo services' state is frozen, so the answer cannot have changed). They
            # still run (a repeated write leaves its mark on the final state), then the run ends
            # instead of burning the remaining turns on an ever longer context.
            self.ending = "repeated"
        self._last_called = called
        self.messages.append(assistant_message([ToolCall(c.name, c.arguments, id=i) for c, i in zip(parsed.calls, ids)],
                                               content=parsed.content))
        return list(zip(parsed.calls, ids, strict=True))

    def record(self, call_id: str, executed: Executed) -> None:
        self.calls.append(executed)
        self.turn_calls[-1] += 1
        self.messages.append({"role": "tool", "tool_call_id": call_id, "name": executed.name, "content": executed.result})

    def conversation(self) -> Conversation:
        return Conversation(messages=self.messages, calls=self.calls, turns=self.turns,
                            ending=self.ending or "step_limit", final_text=self.final_text,
                            turn_starts=self.turn_starts, turn_calls=self.turn_calls)


async def execute_call(client: MCPClient, name: str, arguments: dict[str, Any]) -> Executed:
    """Call ``name`` on the server; a tool or protocol error is an ``is_error`` result, as
    :meth:`~tooltune.tools.mcp_client.MCPClient.call_tool` decodes it."""
    result = await client.call_tool(name, arguments)
    return Executed(name=name, arguments=arguments, result=result.value, is_error=result.is_error)

