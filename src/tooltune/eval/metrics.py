"""Metrics over per-example results: what the model got right, and how it failed.

:class:`ExampleResult` is one scored example (the :class:`~tooltune.eval.match.MatchResult`
plus the example's category, split, and a failure class); :func:`compute_metrics` turns a list
of them into :class:`Metrics`. Definitions (also in docs/evaluation.md):

- ``exact_match``: the output is correct (every rule of the matcher passes), over all examples.
- ``tool_detection``: the model attempted a call exactly when the example expects one. A call
  attempt is parsed calls *or* malformed call markup, so detection measures the decision to
  call apart from formatting. ``detection_call`` / ``detection_abstain`` split it into
  examples that expect a call / expect none (irrelevance, clarify).
- ``tool_selection``: over examples that expect calls and whose output parsed to calls, the
  predicted tool names equal the expected ones as a multiset (order free).
- ``parameter_accuracy``: over every parameter check of call pairs whose names agree (each
  parameter either side names: right value, or missing/unexpected/wrong type/wrong value).
  ``parameter_example_accuracy``: over examples with the right tools selected, all their
  parameters right.
- ``clarify_accuracy``: over clarify examples, the output is correct.
- Failure class of each wrong example: ``parser_lost`` (the raw text holds a call that the
  format's parser did not find: another registered format parses it into calls of offered tools,
  or, for text parsed as no call, an offered tool's name is followed by ``(`` or appears as
  ``"name": "tool"``), ``malformed`` (unreadable call markup), ``missing`` (no prediction), or
  ``wrong`` (parsed fine, wrong behaviour).
- ``confusion``: expected tool × predicted tool over the matcher's call pairs; ``(none)`` stands
  for a missing side (a call not made, an extra call, or an example with no call on either side).
- ``levels`` (four-level validation, over the examples that expect a call): ``detection`` the
  output contains a call at all (parsed or malformed), ``parsing`` it parses into calls,
  ``tool`` the right tools (as ``tool_selection``), ``parameters`` the right parameters too
  (the example is correct). Each level counts the examples that pass it *and every level
  before it*, over the same total, so the four rates only go down and the drop between two
  levels is where calls are lost. ``per_service_levels`` gives the levels, the exact match
  (overall, per category and per tool) and the reason codes of each service (``(none)`` for
  examples without one); each result line carries the four outcomes next to its reason code.
  :func:`per_service` counts the same from ``results.jsonl`` lines.
"""

from __future__ import annotations

import enum
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field, computed_field

from tooltune.data.examples import Category
from tooltune.eval.match import MatchResult
from tooltune.formats.base import ParseKind, ParseResult, format_names, get_format

NONE = "(none)"
"""Stands for the missing side of a call pair in the confusion matrix."""


class Failure(str, enum.Enum):
    """How a wrong example failed; stable values."""

    PARSER_LOST = "parser_lost"
    """The raw text holds a call that the format's parser did not find."""
    MALFORMED = "malformed"
    """The text holds call markup that no parser could read."""
    WRONG = "wrong"
    """The output parsed, and its behaviour (calls, names, values) is wrong."""
    MISSING = "missing"
    """There is no output for the example (``Reason.NO_PREDICTION``)."""


class Level(str, enum.Enum):
    """The four levels of checking a call, in order; stable values (result lines key on them)."""

    DETECTION = "detection"
    """The output contains a call at all: parsed calls or malformed call markup."""
    PARSING = "parsing"
    """The call markup parses into calls."""
    TOOL = "tool"
    """The calls name the expected tools (as a multiset, order free)."""
    PARAMETERS = "parameters"
    """The calls' parameters are right too: the example is correct."""


def passed_levels(match: MatchResult, parse_kind: ParseKind | None) -> dict[Level, bool] | None:
    """Which of the four levels an output passes (each needs the ones before it); None when the
    example expects no call, where only detection would mean anything (``detection_abstain``)."""
    if not match.expects_call:
        return None
    detected = match.called
    parsed = detected and parse_kind is ParseKind.CALLS
    tool = parsed and Counter(c.expected for c in match.calls if c.expected) == Counter(c.predicted for c in match.calls if c.predicted)
    return {Level.DETECTION: detected, Level.PARSING: parsed, Level.TOOL: tool, Level.PARAMETERS: tool and match.correct}


class ExampleResult(BaseModel):
    """One scored example."""

    id: str
    category: Category
    service: str | None = Field(None, description="The example's service, for the per-service breakdown.")
    split: str | None = Field(None, description="Split (data file) the example came from.")
    origin: str | None = Field(None, description="provenance.origin, e.g. the BFCL case id.")
    parse_kind: ParseKind | None = Field(None, description="What the parser made of the output; None without output.")
    match: MatchResult
    failure: Failure | None = Field(None, description="None when correct.")

    @property
    def correct(self) -> bool:
        return self.match.correct

    @property
    def levels(self) -> dict[Level, bool] | None:
        """The four-level outcome (:func:`passed_levels`); None when no call is expected."""
        return passed_levels(self.match, self.parse_kind)

    def record(self) -> dict:
        """The ``results.jsonl`` line: ``id``, ``correct``, ``reason``, the four levels
        (``detection`` ... ``parameters``: true/false, null when no call is expected), ``category`` first."""
        m = self.match
        levels = self.levels
        return {
            "id": self.id, "correct": m.correct, "reason": m.reason.value if m.reason else None,
            **{level.value: (levels[level] if levels is not None else None) for level in Level},
            "category": self.category.value, "service": self.service, "split": self.split, "origin": self.origin,
            "failure": self.failure.value if self.failure else None, "message": m.message,
            "parse_kind": self.parse_kind.value if self.parse_kind else None,
            "expected": [c.expected for c in m.calls if c.expected],
            "predicted": [c.predicted for c in m.calls if c.predicted],
            "calls": [c.model_dump(mode="json", exclude_defaults=True) for c in m.calls],
        }


class Rate(BaseModel):
    correct: int = 0
    total: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def accuracy(self) -> float | None:
        """correct / total; None when there is nothing to count."""
        return self.correct / self.total if self.total else None

    def add(self, ok: bool) -> None:
        self.correct += int(ok)
        self.total += 1


class ToolMetrics(BaseModel):
    calls: Rate = Field(default_factory=Rate, description="Expected calls of this tool that were made correctly.")
    parameters: Rate = Field(default_factory=Rate, description="Parameter checks of same-name call pairs.")


class Levels(BaseModel):
    """Four-level validation over examples that expect a call (see the module docstring)."""

    detection: Rate = Field(default_factory=Rate, description="The output contains a call at all.")
    parsing: Rate = Field(default_factory=Rate, description="... and it parses into calls.")
    tool: Rate = Field(default_factory=Rate, description="... and names the right tools.")
    parameters: Rate = Field(default_factory=Rate, description="... and has the right parameters.")

    def add(self, passed: dict[Level, bool]) -> None:
        for level, ok in passed.items():
            getattr(self, level.value).add(ok)


class ServiceLevels(BaseModel):
    """One service's scores: exact match overall, per category and per tool, the four levels and
    the reason codes. The one place per-service accuracy is counted: :func:`compute_metrics`
    and :func:`per_service` (from ``results.jsonl`` lines) both add examples with :meth:`add`."""

    exact_match: Rate = Field(default_factory=Rate)
    per_category: dict[str, Rate] = Field(default_factory=dict, description="Exact match per category.")
    per_tool: dict[str, Rate] = Field(default_factory=dict, description="Expected calls of each tool made correctly.")
    levels: Levels = Field(default_factory=Levels)
    reasons: dict[str, int] = Field(default_factory=dict, description="Wrong examples per reason code.")

    def add(self, correct: bool, category: str, calls: Iterable[tuple[str | None, bool]],
            passed: dict[Level, bool] | None, reason: str | None) -> None:
        """Count one example: ``calls`` pairs each expected tool (None for an extra call) with
        whether its call was right; ``passed`` its four levels (None when no call is expected)."""
        self.exact_match.add(correct)
        self.per_category.setdefault(category, Rate()).add(correct)
        for expected, ok in calls:
            if expected:
                self.per_tool.setdefault(expected, Rate()).add(ok)
        if passed is not None:
            self.levels.add(passed)
        if not correct:
            self.reasons[reason or "unknown"] = self.reasons.get(reason or "unknown", 0) + 1

    def tidy(self) -> ServiceLevels:
        """Categories in their fixed order, tools sorted, the most frequent reasons first."""
        return self.model_copy(update={"per_category": _ordered_categories(self.per_category),
                                       "per_tool": dict(sorted(self.per_tool.items())),
                                       "reasons": dict(Counter(self.reasons).most_common())})


class Metrics(BaseModel):
    """Aggregate metrics of one evaluation; ``metrics.json`` is :meth:`to_json`."""

    n: int = Field(description="Examples scored.")
    exact_match: Rate
    tool_detection: Rate
    detection_call: Rate = Field(description="Examples expecting a call where the model attempted one.")
    detection_abstain: Rate = Field(description="Examples expecting no call where the model attempted none.")
    tool_selection: Rate
    parameter_accuracy: Rate
    parameter_example_accuracy: Rate
    clarify_accuracy: Rate
    reasons: dict[str, int] = Field(description="Wrong examples per reason code.")
    failures: dict[str, int] = Field(description="Wrong examples per failure class.")
    per_category: dict[str, Rate]
    per_split: dict[str, Rate]
    per_tool: dict[str, ToolMetrics]
    per_parameter: dict[str, Rate] = Field(description='Keyed "tool.param".')
    confusion: dict[str, dict[str, int]] = Field(description="Expected tool -> predicted tool -> count.")
    levels: Levels = Field(default_factory=Levels, description="Four-level validation of the examples that expect a call.")
    per_service_levels: dict[str, ServiceLevels] = Field(default_factory=dict, description="Exact match, levels and reasons per service.")
    latency_ms_p50: float | None = Field(None, description="Generation latency, median (set by the runner).")
    latency_ms_p95: float | None = Field(None, description="Generation latency, 95th percentile (set by the runner).")
    tokens_per_s: float | None = Field(None, description="Generated tokens per second (set by the runner).")

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def compute_metrics(results: Iterable[ExampleResult]) -> Metrics:
    results = list(results)
    exact, detection, det_call, det_abstain = Rate(), Rate(), Rate(), Rate()
    selection, params, param_example, clarify = Rate(), Rate(), Rate(), Rate()
    per_category: dict[str, Rate] = defaultdict(Rate)
    per_split: dict[str, Rate] = defaultdict(Rate)
    per_tool: dict[str, ToolMetrics] = defaultdict(ToolMetrics)
    per_parameter: dict[str, Rate] = defaultdict(Rate)
    confusion: dict[str, Counter] = defaultdict(Counter)
    reasons: Counter = Counter()
    failures: Counter = Counter()
    levels = Levels()
    services: dict[str, ServiceLevels] = defaultdict(ServiceLevels)

    for r in results:
        m = r.match
        exact.add(m.correct)
        passed = r.levels
        if passed is not None:
            levels.add(passed)
        services[r.service or NONE].add(m.correct, r.category.value, [(c.expected, c.correct) for c in m.calls], passed,
                                        m.reason.value if m.reason else None)
        detection.add(m.expects_call == m.called)
        if m.expects_call:
            det_call.add(m.called)
        else:
            det_abstain.add(not m.called)
        per_category[r.category.value].add(m.correct)
        if r.split is not None:
            per_split[r.split].add(m.correct)
        if r.category is Category.CLARIFY:
            clarify.add(m.correct)
        if not m.correct:
            reasons[m.reason.value if m.reason else "unknown"] += 1
            failures[(r.failure or Failure.WRONG).value] += 1
        if m.expects_call and r.parse_kind is ParseKind.CALLS:
            selected = Counter(c.expected for c in m.calls if c.expected) == Counter(c.predicted for c in m.calls if c.predicted)
            selection.add(selected)
            if selected:
                param_example.add(m.correct)
        if not m.calls:
            confusion[NONE][NONE] += 1
        for c in m.calls:
            confusion[c.expected or NONE][c.predicted or NONE] += 1
            if c.expected:
                per_tool[c.expected].calls.add(c.correct)
            if c.expected and c.expected == c.predicted:
                for p in c.params:
                    params.add(p.ok)
                    per_tool[c.expected].parameters.add(p.ok)
                    per_parameter[f"{c.expected}.{p.name}"].add(p.ok)

    return Metrics(
        n=len(results), exact_match=exact, tool_detection=detection, detection_call=det_call,
        detection_abstain=det_abstain, tool_selection=selection, parameter_accuracy=params,
        parameter_example_accuracy=param_example, clarify_accuracy=clarify,
        reasons=dict(reasons.most_common()), failures=dict(failures.most_common()),
        per_category=_ordered_categories(per_category), per_split=dict(sorted(per_split.items())),
        per_tool=dict(sorted(per_tool.items())), per_parameter=dict(sorted(per_parameter.items())),
        confusion={e: dict(sorted(row.items())) for e, row in sorted(confusion.items())},
        levels=levels,
        per_service_levels={name: s.tidy() for name, s in sorted(services.items())},
    )


def per_service(records: Iterable[Mapping[str, Any]], service_of: Mapping[str, str | None] | None = None,
                ) -> dict[str, ServiceLevels]:
    """Each service's scores from ``results.jsonl`` lines (the shape :meth:`ExampleResult.record`
    writes). ``service_of`` (example id → service) names the service of each line instead of the
    line's own ``service``, for results scored before examples carried one; lines with no
    service, or whose id ``service_of`` does not list, are left out."""
    services: dict[str, ServiceLevels] = defaultdict(ServiceLevels)
    for record in records:
        service = service_of.get(record["id"]) if service_of is not None else record.get("service")
        if service is None:
            continue
        levels = None if record.get(Level.DETECTION.value) is None else {level: bool(record[level.value]) for level in Level}
        services[service].add(bool(record["correct"]), record["category"],
                              [(c.get("expected"), bool(c.get("correct"))) for c in record.get("calls", [])],
                              levels, record.get("reason"))
    return {name: s.tidy() for name, s in sorted(services.items())}


def _ordered_categories(rates: dict[str, Rate]) -> dict[str, Rate]:
    order = [c.value for c in Category]
    return {name: rates[name] for name in order if name in rates}


def classify_failure(match: MatchResult, parse: ParseResult | None, text: str | None, fmt: str, tool_names: list[str]) -> Failure | None:
    """The failure class of a scored output (None when it is correct); see the module docstring."""
    if match.correct:
        return None
    if parse is None or text is None:
        return Failure.MISSING
    if parse.kind is ParseKind.CALLS:
        return Failure.WRONG
    if _other_format_finds_call(text, fmt, tool_names):
        return Failure.PARSER_LOST
    if parse.kind is ParseKind.MALFORMED:
        return Failure.MALFORMED
    return Failure.PARSER_LOST if _mentions_call(text, tool_names) else Failure.WRONG


def _other_format_finds_call(text: str, fmt: str, tool_names: list[str]) -> bool:
    offered = set(tool_names)
    for name in format_names():
        if name == fmt:
            continue
        parsed = get_format(name).parse(text)
        if parsed.has_calls and any(c.name in offered for c in parsed.calls):
            return True
    return False


def _mentions_call(text: str, tool_names: list[str]) -> bool:
    for tool in tool_names:
        name = re.escape(tool)
        if re.search(rf"(?<![\w.]){name}\s*\(", text) or re.search(rf'"name"\s*:\s*"{name}"', text):
            return True
    return False
