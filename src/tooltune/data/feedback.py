"""Production feedback: interaction logs and human corrections → examples, plus a review queue.

Logs (JSONL, one model turn per line) become ``production`` examples of medium quality when the
turn succeeded, the user was satisfied enough (or did not say), every call validates, and no
call was rejected by the tool that ran it. Everything else goes to the review queue with its
reasons; nothing is dropped silently. A later line with the same ``id`` replaces an earlier one
(feedback on a served turn is written that way), across every file of one ingestion.
``tooltune serve`` and ``tooltune chat`` write these lines themselves (:mod:`tooltune.data.log_writer`).
Corrections (JSONL or YAML) say what the model should have done; they become ``correction``
examples of high quality that keep the wrong call as a negative. Every record is anonymized
before anything is built from it or written to the queue. Formats: ``docs/production-feedback.md``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tooltune.data.anonymize import Anonymizer, AnonymizerConfig
from tooltune.data.call_checks import check_call, conversation_problem, offered_tools, service_parameters
from tooltune.data.curated import CorrectBehavior
from tooltune.data.examples import Behavior, Clarification, Example, ExpectedCall, Provenance, Quality, Source
from tooltune.data.located import Located, load_located, read_text
from tooltune.data.quarantine import QuarantineRecord
from tooltune.data.vocabulary import DomainVocabulary
from tooltune.errors import DataError
from tooltune.safeload import loads_json
from tooltune.tools.catalog import ToolCatalog

# Log fields that hold no personal data and must stay exact (ids, schemas, ratings, what served).
_NOT_SCRUBBED = ("id", "log_id", "timestamp", "tools", "outcome", "satisfaction", "model", "requested_model", "service",
                 "catalog_hash", "latency_ms")


class FeedbackLoad(BaseModel):
    examples: list[Example] = Field(default_factory=list)
    review: list[QuarantineRecord] = Field(default_factory=list, description="Records for a person to look at, with reasons.")
    superseded: list[str] = Field(
        default_factory=list, description="file:line of log lines replaced by a later line with the same id (feedback).")
    unrated: list[str] = Field(
        default_factory=list, description="file:line of turns nobody judged (outcome unrated, nothing wrong seen): "
                                          "neither training data nor failures.")


class LoggedCall(BaseModel):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(default_factory=dict, description="An object, or its JSON text (OpenAI style).")


class ToolResult(BaseModel):
    """What the tool answered to one of the turn's calls, when it was run (``tooltune chat``, an agent)."""

    name: str = Field(min_length=1)
    is_error: bool = Field(description="The tool (or the MCP server) rejected the call.")
    result: Any = Field(None, description="Its result, or the error text.")


class InteractionLog(BaseModel):
    """One line of an interaction log: a conversation, the calls the model made, the outcome.

    The fields after ``satisfaction`` are written by ``tooltune serve`` and ``tooltune chat``
    (all optional): what answered, for which service, what it wrote and how long it took."""

    id: str = Field(min_length=1)
    timestamp: datetime | None = None
    messages: list[dict[str, Any]]
    tools: list[str | dict[str, Any]] = Field(default_factory=list, description="Tool names or OpenAI tool dicts offered.")
    calls: list[LoggedCall] = Field(default_factory=list)
    outcome: Literal["success", "failure", "error", "unrated"] = Field(description=(
        "How the turn went. unrated: answered, and nobody has said how it went yet (what tooltune serve "
        "writes until feedback or the tool's result arrives)."))
    satisfaction: int | None = Field(None, ge=1, le=5)
    model: str | None = Field(None, description="What answered: base, an adapter name, or NAME@VERSION.")
    requested_model: str | None = Field(None, description="The request's model, when another one answered (drift fallback).")
    service: str | None = Field(None, description="The request's X-Tooltune-Service.")
    catalog_hash: str | None = Field(None, description="Hash of the tools offered (tooltune.tools.catalog).")
    raw_output: str | None = Field(None, description="The model's raw text, call markup included.")
    parse_problems: list[str] = Field(default_factory=list, description="Why the output is not a clean answer: "
                                      "markup that does not parse, calls that do not fit the offered tools.")
    tool_results: list[ToolResult] = Field(default_factory=list, description="One per call, in order, when they were run.")
    latency_ms: float | None = Field(None, ge=0, description="Time to answer the request.")
    comment: str | None = Field(None, description="Free text from feedback.")


class CallSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)

    def expected(self) -> ExpectedCall:
        return ExpectedCall(name=self.name, arguments=self.arguments)


_RIGHT = ("right_call", "right_calls", "right_sequence", "right_behavior")


class Correction(BaseModel):
    """What the model should have done for one turn."""

    model_config = ConfigDict(extra="forbid")
    log_id: str | None = None
    messages: list[dict[str, Any]] | None = None
    user_query: str | None = None
    tools: list[str | dict[str, Any]] = Field(default_factory=list)
    wrong_call: CallSpec | None = None
    right_call: CallSpec | None = None
    right_calls: list[CallSpec] | None = Field(None, min_length=1)
    right_sequence: list[CallSpec] | None = Field(None, min_length=2)
    right_behavior: CorrectBehavior | None = None
    explanation: str | None = None
    author: str | None = None

    @model_validator(mode="after")
    def _one_request_one_answer(self) -> Correction:
        if (self.messages is None) == (self.user_query is None):
            raise ValueError("give exactly one of messages or user_query")
        given = [k for k in _RIGHT if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(_RIGHT)}; got {', '.join(given) or 'none'}")
        problem = conversation_problem(self.messages) if self.messages is not None else None
        if problem:
            raise ValueError(problem)
        return self

    def conversation(self) -> list[dict[str, Any]]:
        return list(self.messages) if self.messages is not None else [{"role": "user", "content": self.user_query}]

    def right(self) -> tuple[Behavior, list[ExpectedCall]]:
        if self.right_sequence:
            return Behavior.SEQUENCE, [c.expected() for c in self.right_sequence]
        if self.right_call or self.right_calls:
            return Behavior.CALLS, [c.expected() for c in ([self.right_call] if self.right_call else self.right_calls)]
        return (Behavior.NO_CALL if self.right_behavior.action == "no_call" else Behavior.CLARIFY), []


# ---------------------------------------------------------------- logs


def ingest_logs(
    path: str | Path | Sequence[str | Path], catalog: ToolCatalog, *, min_satisfaction: int = 4,
    anonymizer: AnonymizerConfig | None = None, vocabulary: DomainVocabulary | None = None,
) -> FeedbackLoad:
    """Turn interaction logs (a JSONL file, a folder of them, or a list of either) into examples
    and review-queue records.

    A turn becomes an example when ``outcome`` is ``success``, ``satisfaction`` is at least
    ``min_satisfaction`` (or null), the conversation ends with a user/tool turn, every call
    validates against ``catalog`` and no tool rejected one; every other line goes to review with
    all its reasons, except ``unrated`` turns with nothing wrong seen in them, which are counted
    in ``unrated`` (a served answer nobody judged is neither an example nor a failure). A line
    whose ``id`` appears again later is replaced by the later line (listed in ``superseded``). ``vocabulary`` (the curated files' ``domain_vocabulary``) names
    the cents parameters, so that "$50" sent as 50 is caught too."""
    if not 1 <= min_satisfaction <= 5:
        raise DataError(f"min_satisfaction is {min_satisfaction}; satisfaction ratings run 1-5, so pick 1 to 5.")
    scrubber = Anonymizer(anonymizer)
    out = FeedbackLoad()
    lines = [line for file in jsonl_files(path) for line in _jsonl(file)]
    last = {raw["id"]: i for i, (_, raw, error) in enumerate(lines)
            if error is None and isinstance(raw, dict) and isinstance(raw.get("id"), str)}
    for i, (where, raw, error) in enumerate(lines):
        if error is None and isinstance(raw, dict) and last.get(raw.get("id"), i) != i:  # type: ignore[arg-type]
            out.superseded.append(where)
            continue
        record = anonymize_record(scrubber, raw)
        example, reasons = (None, [error]) if error else _log_example(where, record, catalog, min_satisfaction, vocabulary)
        if example is not None:
            out.examples.append(example)
        elif reasons:
            out.review.append(QuarantineRecord(source=where, reason=reasons, record=record))
        else:
            out.unrated.append(where)
    return out


def _log_example(
    where: str, raw: Any, catalog: ToolCatalog, min_satisfaction: int, vocabulary: DomainVocabulary | None
) -> tuple[Example | None, list[str]]:
    try:
        log = InteractionLog.model_validate(raw)
    except ValidationError as e:
        return None, [f"{where}: {_loc(err)}{err['msg']}. See docs/production-feedback.md for the log format." for err in e.errors()]
    if log.outcome == "unrated":  # nobody judged it: a failure only if something wrong was seen
        return None, [f"{where}: log {log.id}: {r}" for r in _seen_problems(log)]
    reasons = [f"{where}: log {log.id}: {r}" for r in _log_reasons(log, min_satisfaction)]
    calls, call_reasons = _logged_calls(log, catalog, vocabulary)
    offered, unknown, offer_reasons = _offered(log.tools, catalog, [c.name for c in calls])
    reasons += [f"{where}: log {log.id}: {r}" for r in call_reasons + offer_reasons]
    if reasons:
        return None, reasons
    meta = {"log": where, **({"satisfaction": log.satisfaction} if log.satisfaction else {}),
            **({"unknown_tools": unknown} if unknown else {})}
    provenance = Provenance(source=Source.PRODUCTION, quality=Quality.MEDIUM, catalog_hash=catalog.hash, origin=log.id,
                            **({"created_at": log.timestamp} if log.timestamp else {}))
    return Example(service=_service(catalog, calls), messages=log.messages, tools=offered,
                   behavior=Behavior.CALLS if calls else Behavior.NO_CALL, calls=calls,
                   provenance=provenance, meta=meta), []


def _log_reasons(log: InteractionLog, min_satisfaction: int) -> list[str]:
    reasons = []
    if log.outcome != "success":
        reasons.append(f"outcome is {log.outcome}. Review the turn; if the model was wrong, add a correction for it.")
    reasons += _seen_problems(log)
    if log.satisfaction is not None and log.satisfaction < min_satisfaction:
        reasons.append(f"satisfaction {log.satisfaction} is below the threshold {min_satisfaction}. "
                       "Review the turn; if the model was wrong, add a correction for it.")
    problem = conversation_problem(log.messages)
    if problem:
        reasons.append(problem)
    return reasons


def _seen_problems(log: InteractionLog) -> list[str]:
    """What went wrong that the server or the tools saw: output that does not parse, rejected calls."""
    reasons = [f"output problem: {p}" for p in log.parse_problems]
    for i, result in enumerate(log.tool_results):
        if result.is_error:
            reasons.append(f"calls[{i}] ({result.name}) was rejected by the tool: {str(result.result)[:300]}")
    return reasons


def _logged_calls(
    log: InteractionLog, catalog: ToolCatalog, vocabulary: DomainVocabulary | None
) -> tuple[list[ExpectedCall], list[str]]:
    calls, reasons = [], []
    request = _last_user_text(log.messages)
    for i, call in enumerate(log.calls):
        arguments = call.arguments
        if isinstance(arguments, str):
            try:
                arguments = loads_json(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as e:
                reasons.append(f"calls[{i}] ({call.name}): arguments are not valid JSON ({e.msg}).")
                continue
        if not isinstance(arguments, dict):
            reasons.append(f"calls[{i}] ({call.name}): arguments must be a JSON object, got {type(arguments).__name__}.")
            continue
        expected = ExpectedCall(name=call.name, arguments=arguments)
        reasons += [f"calls[{i}]: {p.message}" for p in check_call(expected, catalog, vocabulary=vocabulary, request=request)]
        calls.append(expected)
    return calls, reasons


# ---------------------------------------------------------------- corrections


def load_corrections(
    path: str | Path, catalog: ToolCatalog, *, anonymizer: AnonymizerConfig | None = None,
    vocabulary: DomainVocabulary | None = None,
) -> FeedbackLoad:
    """Turn a corrections file (``.jsonl``, or YAML: a list or ``{corrections: [...]}``), or a
    folder of ``.jsonl`` corrections (``tooltune serve`` writes one), into high-quality examples;
    invalid corrections go to review with file:line reasons. ``vocabulary`` is used as in
    :func:`ingest_logs`."""
    path = Path(path)
    scrubber = Anonymizer(anonymizer)
    out = FeedbackLoad()
    if path.is_dir():
        records: Iterator[tuple[str, Any, str | None]] = (line for file in jsonl_files(path) for line in _jsonl(file))
    else:
        records = _jsonl(path) if path.suffix.lower() == ".jsonl" else _yaml_records(load_located(path))
    for where, raw, error in records:
        record = anonymize_record(scrubber, raw)
        example, reasons = (None, [error]) if error else _correction_example(where, record, catalog, vocabulary)
        if example is None:
            out.review.append(QuarantineRecord(source=where, reason=reasons, record=record))
        else:
            out.examples.append(example)
    return out


def _correction_example(
    where: str, raw: Any, catalog: ToolCatalog, vocabulary: DomainVocabulary | None
) -> tuple[Example | None, list[str]]:
    try:
        fix = Correction.model_validate(raw)
    except ValidationError as e:
        return None, [f"{where}: {_loc(err)}{err['msg'].removeprefix('Value error, ')}. "
                      "See docs/production-feedback.md for the corrections format." for err in e.errors()]
    behavior, calls = fix.right()
    called = [c.name for c in calls] + ([fix.wrong_call.name] if fix.wrong_call and fix.wrong_call.name in catalog else [])
    offered, unknown, reasons = _offered(fix.tools, catalog, called)
    reasons += _correction_reasons(fix, behavior, calls, catalog, offered, vocabulary)
    if reasons:
        return None, [f"{where}: {r}" for r in reasons]
    b = fix.right_behavior
    return Example(
        service=_service(catalog, calls), messages=fix.conversation(), tools=offered, behavior=behavior, calls=calls,
        clarify=Clarification(question=b.question, missing=b.required_fields) if behavior is Behavior.CLARIFY else None,
        answer=b.answer if b else None,
        provenance=Provenance(source=Source.CORRECTION, quality=Quality.HIGH, author=fix.author,
                              catalog_hash=catalog.hash, origin=where),
        meta=_correction_meta(fix, unknown),
    ), []


def _correction_reasons(
    fix: Correction, behavior: Behavior, calls: list[ExpectedCall], catalog: ToolCatalog, offered: list[str],
    vocabulary: DomainVocabulary | None,
) -> list[str]:
    request = _last_user_text(fix.conversation())
    key = "right_sequence" if behavior is Behavior.SEQUENCE else "right_calls" if fix.right_calls else "right_call"
    reasons = []
    for i, call in enumerate(calls):
        label = key if key == "right_call" else f"{key}[{i}]"
        step = i if behavior is Behavior.SEQUENCE else None
        reasons += [f"{label}: {p.message}" for p in check_call(call, catalog, step=step, vocabulary=vocabulary, request=request)]
    known = service_parameters(catalog, offered)
    for name in fix.right_behavior.required_fields if fix.right_behavior else []:
        if name not in known:
            reasons.append(f"right_behavior.required_fields: {name!r} is not a parameter of any offered tool. "
                           f"Use one of: {', '.join(sorted(known))}.")
    return reasons


def _correction_meta(fix: Correction, unknown: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if fix.log_id:
        meta["log_id"] = fix.log_id
    if fix.explanation:
        meta["explanation"] = fix.explanation
    if fix.wrong_call:
        meta["negatives"] = [{"name": fix.wrong_call.name, "arguments": fix.wrong_call.arguments,
                              "reason": fix.explanation or "corrected in review"}]
    if unknown:
        meta["unknown_tools"] = unknown
    return meta


# ---------------------------------------------------------------- shared


def _offered(tools: list[str | dict[str, Any]], catalog: ToolCatalog, called: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(offered catalog names, offered names not in the catalog, problems).

    Without a logged tool list the offer is the called tools' services (see ``offered_tools``).
    Logged tools missing from the catalog cannot be rendered for training, so they are left out
    and listed in ``meta["unknown_tools"]``; a call to a tool the turn did not offer is a problem."""
    if not tools:
        return offered_tools(catalog, called), [], []
    names, problems = [], []
    for i, item in enumerate(tools):
        name = item if isinstance(item, str) else (item.get("function") or item).get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"tools[{i}] has no name; log tool names or OpenAI tool dicts.")
        else:
            names.append(name)
    problems += [f"called {n!r}, which the turn did not offer. Log every tool offered to the model."
                 for n in dict.fromkeys(called) if n not in names]
    offered = [n for n in dict.fromkeys(names) if n in catalog]
    return offered, [n for n in dict.fromkeys(names) if n not in catalog], problems


def _service(catalog: ToolCatalog, calls: list[ExpectedCall]) -> str | None:
    return next((catalog.get(c.name).service for c in calls if c.name in catalog), None)


def anonymize_record(scrubber: Anonymizer, raw: Any) -> Any:
    """``raw`` (a log line or correction, or a line that was not JSON) with personal data
    replaced everywhere but in the fields that hold none (ids, tool names, ratings, what served)."""
    if not isinstance(raw, dict):
        return scrubber.scrub(raw)
    scrubbed = scrubber.scrub({k: v for k, v in raw.items() if k not in _NOT_SCRUBBED})
    return {k: raw[k] if k in _NOT_SCRUBBED else scrubbed[k] for k in raw}


def jsonl_files(path: str | Path | Sequence[str | Path]) -> list[Path]:
    """A file, or a folder's ``*.jsonl`` files in name order (a log folder's names sort by time),
    or a list of either, in the order given."""
    if isinstance(path, (str, Path)):
        path = Path(path)
        return sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return [file for item in path for file in jsonl_files(item)]


def _jsonl(path: Path) -> Iterator[tuple[str, Any, str | None]]:
    """(``file:line``, parsed object or the raw line, parse error or ``None``) per non-blank line."""
    # split("\n"), not splitlines(): JSON strings may hold U+2028, which splitlines breaks on.
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            yield where, loads_json(line), None
        except json.JSONDecodeError as e:
            yield where, line, f"{where}:{e.colno}: not valid JSON ({e.msg}). Write one JSON object per line."


def _yaml_records(doc: Located) -> Iterator[tuple[str, Any, None]]:
    items = doc.data.get("corrections") if isinstance(doc.data, dict) else doc.data
    if not isinstance(items, list):
        raise DataError(f"{doc.where()}: expected a list of corrections (or a mapping with a corrections list).")
    prefix = ("corrections",) if isinstance(doc.data, dict) else ()
    for i, item in enumerate(items):
        yield doc.where(*prefix, i), item, None


def _loc(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"]) + ": " if err["loc"] else ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
