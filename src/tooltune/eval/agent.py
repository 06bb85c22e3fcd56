"""The multi-step agent evaluation: a model drives a real demo MCP server through a sequence example.

For a sequence example (``behavior: sequence``, ``service`` one of the demo services) the model
gets the conversation and the offered tools, and the runtime's agent driver
(:func:`tooltune.runtime.agent.drive_many`) runs it against the real service through tooltune's
MCP client (``MCPClient.in_process(build_server(service, dir))``), over a fresh copy of the
seeded state, until the model answers in text, its output is malformed, it repeats its previous
turn's calls exactly, or ``max_steps`` model turns have been made. This module scores the runs.

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
:func:`run_agents` drives them in lock step (:func:`~tooltune.runtime.agent.drive_many`), each on its own fresh copy of
the service, so one batch generates the next turn of every live run. It seeds each service once
and copies its database for every run, which is far cheaper than re-seeding.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, Field

from tooltune.data.examples import Behavior, Example, ExpectedCall, resolve_references
from tooltune.errors import ConfigError, DataError
from tooltune.eval.match import check_call
from tooltune.eval.metrics import Rate
from tooltune.runtime.agent import Conversation, Ending, Executed, TurnModel, drive_many, execute_call
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

ServerFactory = Callable[[str, Path], Any]


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

