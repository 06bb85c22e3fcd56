"""The training/evaluation example: one conversation, the tools offered, the expected behaviour.

Every data source (curated files, synthetic generation, production logs, corrections, public
sets) produces :class:`Example` objects; splits, training, evaluation and the registry consume
them. Tool schemas are not copied into examples: ``tools`` names catalog entries, so a schema is
stored once, verbatim, in the catalog (no Arrow coercion of heterogeneous schemas) and the
catalog hash in the provenance says which version the example was written against.

Expected arguments follow the shape of BFCL's possible answers: ``arguments`` holds the one
canonical value per parameter that training renders; ``alternatives`` adds other values that a
matcher accepts; ``optional`` names parameters that may be left out.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from pydantic import BaseModel, Field, computed_field

from tooltune.errors import DataError
from tooltune.safeload import loads_json
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool, ToolCatalog, content_hash

REFERENCE = re.compile(r"\{(prev|steps\[(\d+)\])((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])+)\}")
"""A reference to an earlier step's result inside a string argument: ``{prev.order_id}`` or
``{steps[0].customer.id}``; resolved when a sequence is executed."""


class Behavior(str, enum.Enum):
    CALLS = "calls"
    """Call the tools in ``calls`` (one, or several in parallel)."""
    SEQUENCE = "sequence"
    """Call ``calls`` one after another; later arguments may reference earlier results."""
    CLARIFY = "clarify"
    """Ask the user for the missing details instead of calling."""
    NO_CALL = "no_call"
    """No offered tool fits: answer without calling."""


class Source(str, enum.Enum):
    CURATED = "curated"
    SYNTHETIC = "synthetic"
    PRODUCTION = "production"
    CORRECTION = "correction"
    IMPORTED = "imported"


class Quality(str, enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Category(str, enum.Enum):
    """BFCL-style category, derived from behaviour, call count and tools offered."""

    SIMPLE = "simple"
    MULTIPLE = "multiple"
    PARALLEL = "parallel"
    PARALLEL_MULTIPLE = "parallel_multiple"
    IRRELEVANCE = "irrelevance"
    MULTI_STEP = "multi_step"
    CLARIFY = "clarify"


class ExpectedCall(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict, description="Canonical value per parameter (the training target).")
    alternatives: dict[str, list[Any]] = Field(default_factory=dict, description="Other accepted values per parameter.")
    optional: list[str] = Field(default_factory=list, description="Parameters that may be omitted.")

    def allowed(self, param: str) -> list[Any]:
        """Every accepted value of ``param``, the canonical one first."""
        head = [self.arguments[param]] if param in self.arguments else []
        return head + [v for v in self.alternatives.get(param, []) if v not in head]

    def to_call(self) -> ToolCall:
        return ToolCall(self.name, dict(self.arguments))

    def references(self) -> list[str]:
        """Every ``{prev…}``/``{steps[i]…}`` reference in the arguments (nested values included)."""
        return [m.group(0) for text in string_values(self.arguments) for m in REFERENCE.finditer(text)]


class Clarification(BaseModel):
    question: str = Field(description="What the assistant should ask.")
    missing: list[str] = Field(default_factory=list, description="Parameters (or details) the user has not given.")


class Provenance(BaseModel):
    source: Source
    quality: Quality = Quality.MEDIUM
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    author: str | None = None
    catalog_hash: str | None = Field(None, description="Hash of the catalog the example was written against.")
    origin: str | None = Field(None, description="Where it came from: file:line, log id, dataset name and index.")


class Example(BaseModel):
    """One conversation and what the assistant should do next."""

    service: str | None = None
    messages: list[dict[str, Any]] = Field(description="OpenAI-shaped messages up to the turn to predict.")
    tools: list[str] = Field(description="Names of the catalog tools offered, distractors included.")
    inline_tools: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Tool definitions carried by the example itself, verbatim (imported public sets whose "
        "tools are in no catalog). They take precedence over catalog entries of the same name.",
    )
    behavior: Behavior
    calls: list[ExpectedCall] = Field(default_factory=list, description="Parallel calls, or the steps of a sequence.")
    step_results: list[Any] = Field(default_factory=list, description="Recorded result of each sequence step (from execution).")
    clarify: Clarification | None = None
    answer: str | None = Field(None, description="Reference reply for no_call / clarify turns.")
    provenance: Provenance
    meta: dict[str, Any] = Field(default_factory=dict, description="Free-form: template id, split hints, negatives.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        """Content hash of what the example asks and expects; provenance and meta excluded, so the
        same example from two sources dedups and keeps its split."""
        return content_hash({
            "messages": self.messages, "tools": sorted(self.tools), "behavior": self.behavior.value,
            "calls": [c.model_dump() for c in self.calls], "clarify": self.clarify.model_dump() if self.clarify else None,
        })

    @property
    def category(self) -> Category:
        if self.behavior is Behavior.NO_CALL:
            return Category.IRRELEVANCE
        if self.behavior is Behavior.CLARIFY:
            return Category.CLARIFY
        if self.behavior is Behavior.SEQUENCE:
            return Category.MULTI_STEP
        several_offered = len(self.tools) > 1
        if len(self.calls) > 1:
            return Category.PARALLEL_MULTIPLE if len({c.name for c in self.calls}) > 1 or several_offered else Category.PARALLEL
        return Category.MULTIPLE if several_offered else Category.SIMPLE

    def inline_tool_objects(self) -> list[Tool]:
        """``inline_tools`` as ``Tool`` objects. Definitions in an imported set's own schema dialect
        (``meta["schema_dialect"]``, e.g. BFCL's ``"type": "dict"``) are translated to JSON Schema
        for the ``Tool``; ``inline_tools`` itself stays verbatim."""
        dicts = self.inline_tools
        if self.meta.get("schema_dialect"):
            from tooltune.data.io.dialects import to_json_schema_tool  # lazy: data.io imports this module

            dicts = [to_json_schema_tool(d, self.meta["schema_dialect"]) for d in dicts]
        return [Tool.from_dict(d, where=f"example {self.id}: inline_tools[{i}]") for i, d in enumerate(dicts)]

    def offered_tools(self, catalog: ToolCatalog | None = None) -> list[Tool]:
        """The offered tools as ``Tool`` objects: inline definitions first, else catalog entries."""
        inline = {t.name: t for t in self.inline_tool_objects()}
        out = []
        for name in self.tools:
            if name in inline:
                out.append(inline[name])
            elif catalog is not None:
                out.append(catalog.get(name))
            else:
                raise DataError(f"example {self.id}: tool {name!r} has no inline definition; pass the catalog.")
        return out

    @property
    def user_text(self) -> str:
        """The last user message: the request being answered."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""


def resolve_references(value: Any, step_results: list[Any], step: int) -> Any:
    """Replace ``{prev.x}`` / ``{steps[i].x}`` in ``value`` with results of earlier steps.

    A string that is exactly one reference takes the referenced value with its type (so
    ``"{prev.total_cents}"`` becomes the integer 5000); references inside longer strings are
    substituted as text. Raises :class:`DataError` naming the reference when it cannot resolve.
    """
    if isinstance(value, dict):
        return {k: resolve_references(v, step_results, step) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, step_results, step) for v in value]
    if not isinstance(value, str) or "{" not in value:
        return value
    whole = REFERENCE.fullmatch(value)
    if whole:
        return _lookup(whole, step_results, step)
    return REFERENCE.sub(lambda m: str(_lookup(m, step_results, step)), value)


def _lookup(match: re.Match, step_results: list[Any], step: int) -> Any:
    index = step - 1 if match.group(1) == "prev" else int(match.group(2))
    if not 0 <= index < min(step, len(step_results)):
        raise DataError(f"step {step}: {match.group(0)} refers to step {index}, which has no result before this step.")
    current = step_results[index]
    for part in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", match.group(3)):
        key, pos = part
        try:
            current = current[key] if key else current[int(pos)]
        except (KeyError, IndexError, TypeError):
            raise DataError(f"step {step}: {match.group(0)}: step {index}'s result has no {key or pos!r}.") from None
    return current


def target_messages(example: Example) -> list[dict[str, Any]]:
    """The example's conversation including the expected assistant turn(s): what training
    renders and what evaluation compares against.

    A sequence becomes call → tool result → call … with references resolved from the recorded
    ``step_results`` (an unexecuted sequence keeps the reference text); clarify and no_call turns
    become an assistant text reply.
    """
    from tooltune.formats.chat import assistant_message

    messages = list(example.messages)
    if example.behavior is Behavior.CALLS:
        return messages + [assistant_message([c.to_call() for c in example.calls])]
    if example.behavior is Behavior.SEQUENCE:
        for i, step in enumerate(example.calls):
            args = resolve_references(step.arguments, example.step_results, i) if example.step_results else step.arguments
            messages.append(assistant_message([ToolCall(step.name, args, id=f"call_{i}")]))
            if i < len(example.step_results):
                messages.append({"role": "tool", "tool_call_id": f"call_{i}", "name": step.name,
                                 "content": example.step_results[i]})
        if example.answer:
            messages.append(assistant_message(content=example.answer))
        return messages
    if example.behavior is Behavior.CLARIFY:
        question = example.clarify.question if example.clarify else example.answer
        return messages + [assistant_message(content=question or "Could you give me the missing details?")]
    return messages + [assistant_message(content=example.answer or "I can't do that with the tools I have.")]


def read_jsonl(path: str | Path) -> Iterator[Example]:
    """Examples from a JSONL file written by :func:`write_jsonl`; errors name file and line."""
    path = Path(path)
    try:
        f = path.open(encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot read the examples: {e.strerror or e}.") from e
    with f:
        lineno = 0
        try:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    example = Example.model_validate(loads_json(line))
                except ValueError as e:
                    raise DataError(f"{path}:{lineno}: not a valid example: {e}") from e
                yield example
        except UnicodeDecodeError as e:
            raise DataError(f"{path}:{lineno + 1}: not UTF-8 text; examples files are JSONL written by tooltune.") from e


def write_jsonl(examples: Iterable[Example], path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w") as f:
        for example in examples:
            f.write(example.model_dump_json(exclude_none=True) + "\n")
            n += 1
    return n


def string_values(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (dict values and list items, at any depth)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from string_values(v)
    elif isinstance(value, list):
        for v in value:
            yield from string_values(v)
