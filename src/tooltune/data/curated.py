"""Load a team's curated examples for one service (YAML or JSON) into validated :class:`Example`s.

The format is documented key by key in ``docs/curated-format.md``. Each entry is checked against
the catalog: the tool exists, arguments fit its schema (references stand in for any type),
references point at earlier steps, clarify ``required_fields`` are parameters of the service.
An invalid entry is never dropped: it goes to the returned quarantine with every problem, each
naming file and line. Only a file that cannot be parsed at all raises :class:`DataError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tooltune.data.call_checks import CallProblem, check_call, conversation_problem, offered_tools, service_parameters
from tooltune.data.examples import Behavior, Clarification, Example, ExpectedCall, Provenance, Quality, Source
from tooltune.data.located import Located, load_located
from tooltune.data.quarantine import QuarantineRecord
from tooltune.data.vocabulary import DomainVocabulary
from tooltune.errors import DataError
from tooltune.tools.catalog import ToolCatalog

SECTIONS = ("training_examples", "edge_cases")
TOP_LEVEL_KEYS = ("service", "author", "domain_vocabulary", *SECTIONS)


class CuratedLoad(BaseModel):
    """What one curated file yields."""

    service: str = Field(description="The file's service (its `service:` key, else the file name).")
    examples: list[Example] = Field(default_factory=list, description="Entries that passed every check.")
    quarantine: list[QuarantineRecord] = Field(default_factory=list, description="Entries that did not, with reasons.")
    vocabulary: DomainVocabulary = Field(default_factory=DomainVocabulary)


# ---------------------------------------------------------------- the file's entries


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CuratedCall(_Strict):
    """One call of ``correct_calls`` or one step of ``correct_sequence``."""

    tool: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    alternatives: dict[str, list[Any]] = Field(default_factory=dict)
    optional: list[str] = Field(default_factory=list)

    def expected(self) -> ExpectedCall:
        return ExpectedCall(name=self.tool, arguments=self.parameters, alternatives=self.alternatives, optional=self.optional)


class Mistake(_Strict):
    wrong_params: dict[str, Any] = Field(default_factory=dict)
    wrong_tool: str | None = None
    step: int | None = Field(None, ge=0)
    reason: str = Field(min_length=1)


class CorrectBehavior(_Strict):
    action: Literal["clarify", "ask_for_details", "no_call"]
    question: str | None = None
    required_fields: list[str] = Field(default_factory=list)
    answer: str | None = None

    @model_validator(mode="after")
    def _question_for_clarify(self) -> CorrectBehavior:
        if self.action != "no_call" and not self.question:
            raise ValueError(f"action {self.action!r} needs a question: write what the assistant should ask")
        if self.action == "no_call" and self.required_fields:
            raise ValueError("required_fields only applies to clarify / ask_for_details; remove it")
        return self


_OUTCOMES = ("correct_tool", "correct_calls", "correct_sequence", "correct_behavior")


class CuratedEntry(_Strict):
    """One entry of ``training_examples`` or ``edge_cases`` (both sections take the same keys)."""

    scenario: str | None = None
    user_query: str | None = None
    messages: list[dict[str, Any]] | None = None
    correct_tool: str | None = Field(None, min_length=1)
    correct_parameters: dict[str, Any] = Field(default_factory=dict)
    alternatives: dict[str, list[Any]] = Field(default_factory=dict)
    optional: list[str] = Field(default_factory=list)
    correct_calls: list[CuratedCall] | None = Field(None, min_length=2)
    correct_sequence: list[CuratedCall] | None = Field(None, min_length=2)
    correct_behavior: CorrectBehavior | None = None
    explanation: str | None = None
    common_mistakes: list[Mistake] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_request_one_outcome(self) -> CuratedEntry:
        if self.user_query is None and self.messages is None:
            raise ValueError("user_query is missing: give user_query (one user turn) or messages (a conversation)")
        if self.user_query is not None and self.messages is not None:
            raise ValueError("give user_query or messages, not both")
        given = [k for k in _OUTCOMES if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(_OUTCOMES)}; got {', '.join(given) or 'none'}")
        loose = [k for k in ("correct_parameters", "alternatives", "optional") if k in self.model_fields_set]
        if loose and (given[0] != "correct_tool" or self.correct_tool is None):
            raise ValueError(f"{', '.join(loose)} belong with correct_tool; for several calls put them inside each call")
        problem = conversation_problem(self.messages) if self.messages is not None else None
        if problem:
            raise ValueError(problem)
        return self

    @property
    def behavior(self) -> Behavior:
        if self.correct_sequence:
            return Behavior.SEQUENCE
        if self.correct_calls or self.correct_tool:
            return Behavior.CALLS
        if self.correct_behavior and self.correct_behavior.action != "no_call":
            return Behavior.CLARIFY
        return Behavior.NO_CALL

    def expected_calls(self) -> list[ExpectedCall]:
        if self.correct_tool:
            return [ExpectedCall(name=self.correct_tool, arguments=self.correct_parameters,
                                 alternatives=self.alternatives, optional=self.optional)]
        return [c.expected() for c in self.correct_sequence or self.correct_calls or []]

    def conversation(self) -> list[dict[str, Any]]:
        if self.messages is not None:
            return [dict(m) for m in self.messages]
        return [{"role": "user", "content": self.user_query}]


# ---------------------------------------------------------------- loading


def load_curated(path: str | Path, catalog: ToolCatalog) -> CuratedLoad:
    """Read one curated file, check every entry against ``catalog``, and split the entries into
    examples and quarantine. Raises :class:`DataError` only for a file that cannot be used at all
    (syntax error, not a mapping, unknown top-level key, invalid ``domain_vocabulary``)."""
    doc = load_located(path)
    data = doc.data
    if not isinstance(data, dict):
        raise DataError(f"{doc.where()}: expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)}, got {type(data).__name__}.")
    unknown = [k for k in data if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise DataError(f"{doc.where(unknown[0])}: unknown top-level key {unknown[0]!r}. Use {', '.join(TOP_LEVEL_KEYS)}.")
    service = data.get("service") or Path(path).stem
    vocabulary = _vocabulary(doc, catalog)
    out = CuratedLoad(service=str(service), vocabulary=vocabulary)
    author = data.get("author")
    for section in SECTIONS:
        entries = data.get(section) or []
        if not isinstance(entries, list):
            raise DataError(f"{doc.where(section)}: {section} must be a list of entries, got {type(entries).__name__}.")
        for i, raw in enumerate(entries):
            example, problems = _load_entry(doc, section, i, raw, catalog, out.service, vocabulary, author)
            if example is not None:
                out.examples.append(example)
            else:
                out.quarantine.append(QuarantineRecord(source=doc.where(section, i), reason=problems, record=raw))
    return out


def _load_entry(
    doc: Located, section: str, i: int, raw: Any, catalog: ToolCatalog, service: str,
    vocabulary: DomainVocabulary, author: str | None,
) -> tuple[Example | None, list[str]]:
    label = f"{section}[{i}]"
    if not isinstance(raw, dict):
        return None, [f"{doc.where(section, i)}: {label}: expected a mapping with user_query and correct_tool "
                      f"(or another outcome), got {type(raw).__name__}. Write the entry as key: value lines."]
    try:
        entry = CuratedEntry.model_validate(raw)
    except ValidationError as e:
        return None, [_pydantic_message(doc, section, i, err) for err in e.errors()]
    problems = [f"{doc.where(section, i, *key)}: {label}: {msg}" for key, msg in _entry_problems(entry, catalog, service, vocabulary)]
    if problems:
        return None, problems
    return _example(entry, section, catalog, service, author, doc.where(section, i)), []


def _pydantic_message(doc: Located, section: str, i: int, err: dict[str, Any]) -> str:
    loc = list(err["loc"])
    field = ".".join(str(p) for p in loc)
    where = doc.where(section, i, *loc)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        known = ", ".join(CuratedEntry.model_fields) if len(loc) == 1 else "see docs/curated-format.md"
        return f"{where}: {section}[{i}]: unknown key {field!r}. Check the spelling; known keys: {known}."
    if err["type"] == "missing":
        return f"{where}: {section}[{i}]: {field} is required. Add it (see docs/curated-format.md)."
    return f"{where}: {section}[{i}]: {field + ': ' if field else ''}{msg}."


def _entry_problems(
    entry: CuratedEntry, catalog: ToolCatalog, service: str, vocabulary: DomainVocabulary
) -> list[tuple[tuple, str]]:
    """(key path inside the entry, message) for every problem against the catalog."""
    return (_call_problems(entry, catalog, vocabulary) + _required_field_problems(entry, catalog, service)
            + _mistake_problems(entry))


_TOP_KEYS = {"name": "correct_tool", "arguments": "correct_parameters", "alternatives": "alternatives", "optional": "optional"}
_STEP_KEYS = {"name": "tool", "arguments": "parameters", "alternatives": "alternatives", "optional": "optional"}


def _call_problems(entry: CuratedEntry, catalog: ToolCatalog, vocabulary: DomainVocabulary) -> list[tuple[tuple, str]]:
    request = entry.user_query or _last_user_text(entry.conversation())
    if entry.correct_tool:
        return [_entry_key(p, _TOP_KEYS, ()) for p in
                check_call(entry.expected_calls()[0], catalog, vocabulary=vocabulary, request=request)]
    sequence = entry.correct_sequence is not None
    key = "correct_sequence" if sequence else "correct_calls"
    return [_entry_key(p, _STEP_KEYS, (key, s))
            for s, step in enumerate(entry.correct_sequence or entry.correct_calls or [])
            for p in check_call(step.expected(), catalog, step=s if sequence else None, vocabulary=vocabulary, request=request)]


def _required_field_problems(entry: CuratedEntry, catalog: ToolCatalog, service: str) -> list[tuple[tuple, str]]:
    if not entry.correct_behavior:
        return []
    known = service_parameters(catalog, offered_tools(catalog, [], service))
    return [(("correct_behavior", "required_fields", f), (
                f"required_field {name!r} is not a parameter of any {service} tool. Use one of: {', '.join(sorted(known))}."))
            for f, name in enumerate(entry.correct_behavior.required_fields) if name not in known]


def _mistake_problems(entry: CuratedEntry) -> list[tuple[tuple, str]]:
    out = []
    calls = entry.expected_calls()
    for m, mistake in enumerate(entry.common_mistakes):
        if mistake.step is not None and mistake.step >= len(calls):
            out.append((("common_mistakes", m, "step"), (
                f"common_mistakes[{m}].step is {mistake.step}, but the entry has {len(calls)} calls. "
                "Use a 0-based index into correct_sequence / correct_calls.")))
        if not calls and not mistake.wrong_tool:
            out.append((("common_mistakes", m), (
                f"common_mistakes[{m}] has no wrong_tool: for a clarify / no_call entry the mistake is "
                "calling a tool, so name it with wrong_tool (and its wrong_params).")))
    return out


def _entry_key(problem: CallProblem, names: dict[str, str], prefix: tuple) -> tuple[tuple, str]:
    head, *rest = problem.key
    return (*prefix, names[str(head)], *rest), problem.message


def _example(
    entry: CuratedEntry, section: str, catalog: ToolCatalog, service: str, author: str | None, origin: str
) -> Example:
    calls = entry.expected_calls()
    behavior = entry.correct_behavior
    clarify = Clarification(question=behavior.question, missing=behavior.required_fields) if entry.behavior is Behavior.CLARIFY else None
    return Example(
        service=service,
        messages=entry.conversation(),
        tools=offered_tools(catalog, [c.name for c in calls], service),
        behavior=entry.behavior,
        calls=calls,
        clarify=clarify,
        answer=behavior.answer if behavior else None,
        provenance=Provenance(source=Source.CURATED, quality=Quality.HIGH, author=author,
                              catalog_hash=catalog.hash, origin=origin),
        meta=_meta(entry, section, calls),
    )


def _meta(entry: CuratedEntry, section: str, calls: list[ExpectedCall]) -> dict[str, Any]:
    meta: dict[str, Any] = {"section": section}
    if entry.scenario:
        meta["scenario"] = entry.scenario
    if entry.explanation:
        meta["explanation"] = entry.explanation
    if entry.correct_behavior and entry.correct_behavior.action == "ask_for_details":
        meta["action"] = "ask_for_details"
    if entry.common_mistakes:
        meta["negatives"] = [_negative(m, calls) for m in entry.common_mistakes]
    return meta


def _negative(mistake: Mistake, calls: list[ExpectedCall]) -> dict[str, Any]:
    """The full wrong call: ``wrong_params`` patch the correct step's arguments, unless the
    mistake is a different tool, whose arguments are exactly ``wrong_params``."""
    step = mistake.step or 0
    right = calls[step] if step < len(calls) else None
    if mistake.wrong_tool or right is None:
        out = {"name": mistake.wrong_tool, "arguments": dict(mistake.wrong_params), "reason": mistake.reason}
    else:
        out = {"name": right.name, "arguments": {**right.arguments, **mistake.wrong_params}, "reason": mistake.reason}
    if mistake.step is not None:
        out["step"] = mistake.step
    return out


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")


# ---------------------------------------------------------------- vocabulary


def _vocabulary(doc: Located, catalog: ToolCatalog) -> DomainVocabulary:
    raw = doc.data.get("domain_vocabulary") or {}
    try:
        vocabulary = DomainVocabulary.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = doc.where("domain_vocabulary", *err["loc"])
        raise DataError(f"{where}: domain_vocabulary.{'.'.join(map(str, err['loc']))}: {err['msg']}. "
                        "See docs/curated-format.md for its keys.") from e
    problems = [f"{doc.where('domain_vocabulary', *key)}: {msg}" for key, msg in _vocabulary_problems(vocabulary, catalog)]
    if problems:
        raise DataError("domain_vocabulary does not match the catalog:\n" + "\n".join(problems))
    return vocabulary


def _vocabulary_problems(vocabulary: DomainVocabulary, catalog: ToolCatalog) -> list[tuple[tuple, str]]:
    # A vocabulary naming a renamed parameter would silently stop applying; say so at load time.
    out = []
    for i, ref in enumerate(vocabulary.cents):
        if not _param_schemas(catalog, ref):
            out.append((("cents", i), f"cents names {ref!r}, which is no catalog parameter. Write it as tool.param."))
    for i, term in enumerate(vocabulary.terms):
        schemas = _param_schemas(catalog, term.param)
        if not schemas:
            out.append((("terms", i, "param"), f"terms[{i}].param {term.param!r} is no catalog parameter. Write it as tool.param."))
        elif all("enum" in s and term.value not in s["enum"] for s in schemas):
            out.append((("terms", i, "value"), (
                f"terms[{i}].value {term.value!r} is not allowed for {term.param}. Use one of: "
                f"{', '.join(map(str, schemas[0]['enum']))}.")))
    return out


def _param_schemas(catalog: ToolCatalog, ref: str) -> list[dict[str, Any]]:
    tool, _, param = ref.rpartition(".")
    return [t.properties[param] for t in catalog if (not tool or t.name == tool) and param in t.properties]
