"""The multi-step agent loop: a model drives a real demo MCP server through a sequence example.

For a sequence example (``behavior: sequence``, ``service`` one of the demo services) the model
gets the conversation and the offered tools, and each turn it generates is parsed with its call
format. Calls are executed on the real service through tooltune's MCP client
(``MCPClient.in_process(build_server(service, dir))``, :mod:`tooltune.tools.mcp_client`), over a
fresh copy of the seeded state, and their results go back to the model as ``tool`` messages
rendered by ``render_chat``. The loop ends when the model answers in text,
when its output is malformed, when it repeats its previous turn's calls exactly (a loop: they
run once more, then the run ends), or after ``max_steps`` model turns.

Scoring (:class:`AgentRun`):

- **Steps.** The model's calls, in order (parallel calls of one turn in their written order),
  are paired with the expected steps by position. Expected step *i*'s ``{prev…}`` /
  ``{steps[j]…}`` references are resolved against the results the model's own calls got
  (the brief: references name *actual* results), then the call is checked with the matcher's
  per-call rules (:func:`tooltune.eval.match.check_call`: names, required and expected
  parameters, types, values with BFCL normalization). A reference into a failed or missing
  result cannot resolve, and that step is wrong (``unresolved_reference``).
- **step_accuracy**: correct steps over expected steps.
- **sequence_exact**: every expected step correct, no extra calls, and the run ended with a
  text answer.
- **final_state**: generic, with no per-service checker: the expected steps are executed on a
  second fresh copy of the service (the *reference run*, references resolved against its own
  results), and the model's last executed call must have the reference's last call name and
  return exactly the reference's last result, without a tool error. The demo world has a
  frozen clock and sequential ids, so equal operations return equal results: for "pay John's
  order" the model's last call must create ``pay_0041`` for ``inv_1043`` with amount 12896;
  a duplicate charge earlier in the run would have taken ``pay_0041`` and fails the check.
  Side effects of extra calls that do not change the last result go unnoticed. When the
  reference run itself fails (stale example), ``final_state`` is None and is not counted.

A run's turns are sequential (each depends on the previous result), but runs are independent:
:func:`run_agents` drives them in lock step (:func:`drive_many`), each on its own fresh copy of
the service, so one batch generates the next turn of every live run. It seeds each service once
and copies its database for every run, which is far cheaper than re-seeding.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio
from pydantic import BaseModel, Field

from tooltune.data.examples import Behavior, Example, ExpectedCall, resolve_references
from tooltune.data.feedback import InteractionLog, LoggedCall, ToolResult
from tooltune.errors import ConfigError, DataError
from tooltune.eval.match import check_call
from tooltune.eval.metrics import Rate
from tooltune.formats.base import CallFormat, ParseKind
from tooltune.formats.chat import assistant_message
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.tools.mcp_client import MCPClient, quiet_mcp_logs

AGENT_RESULTS_FILE = "agent.jsonl"
AGENT_METRICS_FILE = "agent_metrics.json"
UNRESOLVED_REFERENCE = "unresolved_reference"
"""Step reason: the expected step refers to a result the model's run does not have."""
EXTRA_CALL = "extra_call"
"""Step reason: a call beyond the expected steps."""
MISSING_STEP = "missing_step"
"""Step reason: the run ended before this expected step."""

Ending = Literal["answered", "malformed", "repeated", "step_limit"]
ServerFactory = Callable[[str, Path], Any]


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


class StepCheck(BaseModel):
    index: int
    expected: dict[str, Any] | None = Field(description="Expected call with references resolved; None for an extra call.")
    predicted: dict[str, Any] | None = Field(description="The model's call; None when the run ended before this step.")
    correct: bool
    reason: str | None = None
    message: str = ""


class AgentRun(BaseModel):
    """One sequence example driven through the loop."""

    id: str
    origin: str | None
    service: str
    calls: list[Executed]
    steps: list[StepCheck]
    turns: list[str] = Field(description="Raw text of every model turn.")
    ending: Ending
    final_text: str | None = None
    sequence_exact: bool
    steps_correct: int
    steps_expected: int
    final_state: bool | None = Field(description="Model's last call matches the reference run's; None when the reference failed.")
    message: str = ""


class AgentSummary(BaseModel):
    n: int
    sequence_exact: Rate
    step_accuracy: Rate
    final_state: Rate
    endings: dict[str, int]
    reference_failed: int = Field(description="Runs whose reference execution failed (final_state not counted).")


def run_agent(model: TurnModel, example: Example, *, catalog: ToolCatalog | None = None, max_steps: int = 6,
              server_factory: ServerFactory | None = None) -> AgentRun:
    """Drive ``example`` through the loop on a fresh copy of its demo service; see the module docstring."""
    return run_agents(model, [example], catalog=catalog, max_steps=max_steps, server_factory=server_factory)[0]


def run_agents(model: TurnModel, examples: Sequence[Example], *, catalog: ToolCatalog | None = None,
               max_steps: int = 6, server_factory: ServerFactory | None = None,
               first_turns: Sequence[str] | None = None) -> list[AgentRun]:
    """:func:`run_agent` for many examples, sharing one seeded copy of each service.

    ``first_turns``: the model's first turn of each example, already generated (the first-turn
    evaluation generates exactly this turn from exactly this prompt), so it is not generated twice."""
    if first_turns is not None and len(first_turns) != len(examples):
        raise ValueError(f"first_turns: {len(first_turns)} turns for {len(examples)} examples")
    for example in examples:
        if example.behavior is not Behavior.SEQUENCE or not example.service:
            raise DataError(f"example {example.id} ({example.provenance.origin}): the agent loop runs sequence "
                            f"examples of a service; this one is {example.behavior.value!r} with service {example.service!r}.")
    if server_factory is None:
        from tooltune.demo import build_server

        server_factory = build_server

    async def main() -> list[AgentRun]:
        with _States(server_factory) as states, quiet_mcp_logs():
            return await _run_all(model, examples, catalog, max_steps, states, first_turns)

    return anyio.run(main)


def summarize(runs: Sequence[AgentRun]) -> AgentSummary:
    exact, steps, final = Rate(), Rate(), Rate()
    for run in runs:
        exact.add(run.sequence_exact)
        steps.correct += run.steps_correct
        steps.total += run.steps_expected
        if run.final_state is not None:
            final.add(run.final_state)
    return AgentSummary(n=len(runs), sequence_exact=exact, step_accuracy=steps, final_state=final,
                        endings=dict(Counter(r.ending for r in runs).most_common()),
                        reference_failed=sum(r.final_state is None for r in runs))


def write_agent_results(runs: Sequence[AgentRun], summary: AgentSummary, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / AGENT_RESULTS_FILE).open("w") as f:
        for run in runs:
            f.write(run.model_dump_json() + "\n")
    path = out_dir / AGENT_METRICS_FILE
    path.write_text(summary.model_dump_json(indent=2) + "\n")
    return path


# -- the loop -------------------------------------------------------------------------------


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


async def _run_all(model: TurnModel, examples: Sequence[Example], catalog: ToolCatalog | None, max_steps: int,
                   states: _States, first_turns: Sequence[str] | None) -> list[AgentRun]:
    """Every example on its own fresh server, driven together (:func:`drive_many`), then scored."""
    tools = [e.offered_tools(catalog) for e in examples]
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(MCPClient.in_process(states.fresh(e.service))) for e in examples]
        done = await drive_many(model, clients, [list(e.messages) for e in examples], tools, max_steps=max_steps,
                                first_turns=first_turns)
    return [await _scored_run(e, d, t, states) for e, d, t in zip(examples, done, tools, strict=True)]


async def _scored_run(example: Example, done: Conversation, tools: list[Tool], states: _States) -> AgentRun:
    calls, turns, ending, final_text = done.calls, done.turns, done.ending, done.final_text
    steps = _check_steps(example, calls, tools)
    reference = await _reference_run(example, states)
    final_state = None if reference is None else _same_final_state(calls, reference)
    correct = sum(s.correct for s in steps if s.expected is not None)
    exact = all(s.correct for s in steps) and ending == "answered"
    message = next((f"step {s.index}: {s.message}" for s in steps if not s.correct), "")
    if not message and ending != "answered":
        message = {"step_limit": "the run ended without a text answer",
                   "repeated": "the run ended repeating its previous calls, without a text answer",
                   }.get(ending, "the last turn could not be parsed")
    return AgentRun(id=example.id, origin=example.provenance.origin, service=example.service or "", calls=calls,
                    steps=steps, turns=turns, ending=ending, final_text=final_text, sequence_exact=exact,
                    steps_correct=correct, steps_expected=len(example.calls), final_state=final_state, message=message)


def _check_steps(example: Example, calls: list[Executed], tools: list[Tool]) -> list[StepCheck]:
    by_name = {t.name: t for t in tools}
    results = [c.result for c in calls]
    checks = []
    for i, step in enumerate(example.calls):
        if i >= len(calls):
            checks.append(StepCheck(index=i, expected=step.model_dump(include={"name", "arguments"}), predicted=None,
                                    correct=False, reason=MISSING_STEP, message=f"the run ended before step {i} ({step.name})"))
            continue
        call = calls[i]
        predicted = {"name": call.name, "arguments": call.arguments}
        try:
            expected = _resolved(step, results, i, calls)
        except DataError as e:
            checks.append(StepCheck(index=i, expected=step.model_dump(include={"name", "arguments"}), predicted=predicted,
                                    correct=False, reason=UNRESOLVED_REFERENCE, message=str(e)))
            continue
        check = check_call(expected, ToolCall(call.name, call.arguments), by_name.get(expected.name),
                           str(example.meta.get("bfcl_language", "python")))
        checks.append(StepCheck(index=i, expected=expected.model_dump(include={"name", "arguments"}), predicted=predicted,
                                correct=check.correct, reason=check.reason.value if check.reason else None, message=check.message))
    for j in range(len(example.calls), len(calls)):
        checks.append(StepCheck(index=j, expected=None, predicted={"name": calls[j].name, "arguments": calls[j].arguments},
                                correct=False, reason=EXTRA_CALL, message=f"extra call {calls[j].name} after the expected steps"))
    return checks


def _resolved(step: ExpectedCall, results: list[Any], index: int, calls: list[Executed]) -> ExpectedCall:
    for j in range(index):
        if calls[j].is_error and _refers_to(step, j, index):
            raise DataError(f"step {index}: refers to step {j}'s result, but that call failed: {str(calls[j].result)[:200]}")
    return ExpectedCall(
        name=step.name, arguments=resolve_references(step.arguments, results, index),
        alternatives={k: resolve_references(v, results, index) for k, v in step.alternatives.items()},
        optional=list(step.optional),
    )


def _refers_to(step: ExpectedCall, j: int, index: int) -> bool:
    refs = step.references()
    return any(r.startswith(f"{{steps[{j}]") or (r.startswith("{prev") and j == index - 1) for r in refs)


def _same_final_state(calls: list[Executed], reference: list[Executed]) -> bool:
    if not calls or not reference:
        return False
    mine, theirs = calls[-1], reference[-1]
    return not mine.is_error and mine.name == theirs.name and mine.result == theirs.result


async def _reference_run(example: Example, states: _States) -> list[Executed] | None:
    """The expected steps executed on a fresh copy; None when one of them fails."""
    done: list[Executed] = []
    async with MCPClient.in_process(states.fresh(example.service)) as client:
        for i, step in enumerate(example.calls):
            try:
                args = resolve_references(step.arguments, [d.result for d in done], i)
            except DataError:
                return None
            executed = await execute_call(client, step.name, args)
            if executed.is_error:
                return None
            done.append(executed)
    return done


async def execute_call(client: MCPClient, name: str, arguments: dict[str, Any]) -> Executed:
    """Call ``name`` on the server; a tool or protocol error is an ``is_error`` result, as
    :meth:`~tooltune.tools.mcp_client.MCPClient.call_tool` decodes it."""
    result = await client.call_tool(name, arguments)
    return Executed(name=name, arguments=arguments, result=result.value, is_error=result.is_error)


class _States:
    """Fresh copies of each service's seeded state: seeded once, copied per run."""

    def __init__(self, factory: ServerFactory):
        self.factory = factory
        self.root = Path(tempfile.mkdtemp(prefix="tooltune-agent-"))
        self._seeded: set[str] = set()
        self._count = 0

    def __enter__(self) -> _States:
        return self

    def __exit__(self, *exc: Any) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def fresh(self, service: str | None) -> Any:
        if not service:
            raise ConfigError("the agent loop needs the example's service to start its server.")
        pristine = self.root / "pristine" / service
        if service not in self._seeded:
            pristine.mkdir(parents=True)
            self.factory(service, pristine)  # seeds the database files
            self._seeded.add(service)
        self._count += 1
        target = self.root / f"run-{self._count}"
        shutil.copytree(pristine, target, ignore=shutil.ignore_patterns("*-journal", "*-wal", "*-shm"))
        return self.factory(service, target)

