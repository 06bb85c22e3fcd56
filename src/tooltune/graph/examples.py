"""Training examples from the code graph: ``tooltune data from-graph``.

Records (:mod:`tooltune.graph.records`) are scored, filtered by ``quality_threshold``, capped at
``max_records`` (best first), and each becomes

- **instruction examples** about the code (the code is in the request, the reply is its real
  docstring: no tool is needed, so behaviour ``no_call`` with an answer), and
- **tool-calling examples for the ``code`` service** grounded in real names and paths: "where is
  `Registry.deploy` defined?" → ``Grep`` for ``def deploy\\(`` over the project; "show me
  `Registry.deploy` in shop/registry.py" → ``Read`` of that file at the method's lines; "which
  files call `format_cents`?" → ``Grep`` for ``format_cents\\(``; "what else is in the folder of
  shop/registry.py?" → ``Glob``.

Every request is worded ``augmentation_factor`` ways, drawn without repetition from the
phrasings of its intent. The result is a curated file (docs/curated-format.md) for the ``code``
service, so ``tooltune data build --curated`` validates it against the catalog and uses it like
any other source.
"""

from __future__ import annotations

import random
import re
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tooltune.errors import ConfigError
from tooltune.graph.records import CODE_TYPES, CodeRecord, read_records
from tooltune.graph.store import GraphStore

PHRASINGS: dict[str, list[str]] = {
    "locate": [
        "Where is `{name}` defined?",
        "In which file is `{name}` defined?",
        "Find the definition of `{name}`.",
        "Which file has the code for `{name}`?",
        "I need to change `{name}`; where does it live?",
        "Locate `{name}` in the codebase.",
        "Search the project for where `{name}` is declared.",
        "Show me where {what} `{name}` is implemented.",
    ],
    "read": [
        "Show me the source of `{name}` in {path}.",
        "Open {path} and show me `{name}`.",
        "Read `{name}` from {path}.",
        "Let me see the code of {what} `{name}` ({path}).",
        "Print the lines of {path} that define `{name}`.",
        "What does the implementation of `{name}` in {path} look like?",
        "Display `{name}`, it's in {path}.",
        "Pull up `{name}` from {path} so I can review it.",
    ],
    "callers": [
        "Which files call `{name}`?",
        "Find every file that uses `{name}`.",
        "Where is `{name}` called from?",
        "List the files with calls to `{name}`.",
        "Who calls `{name}` in this project?",
        "Search for call sites of `{name}`.",
        "I'm changing `{name}`'s signature; which files call it?",
        "Grep the codebase for uses of `{name}`.",
    ],
    "siblings": [
        "What other Python files are in the folder of {path}?",
        "List the Python files next to {path}.",
        "Which modules sit beside {path}?",
        "Show the .py files in the same directory as {path}.",
        "What else is in {folder}? Only Python files.",
        "List every Python file in {folder}.",
        "Which Python modules does {folder} contain?",
        "Glob the .py files in {folder}.",
    ],
    "summarize": [
        "Explain what this code does:\n\n```python\n{code}\n```",
        "Summarize this {what} in a sentence or two:\n\n```python\n{code}\n```",
        "What is this for?\n\n```python\n{code}\n```",
        "Describe the purpose of the following {what}.\n\n```python\n{code}\n```",
        "In plain words, what does this do?\n\n```python\n{code}\n```",
        "Give me a short description of this code:\n\n```python\n{code}\n```",
        "Read this and tell me what it's for:\n\n```python\n{code}\n```",
        "What does this {what} do?\n\n```python\n{code}\n```",
    ],
    "docstring": [
        "Write a docstring for this {what}:\n\n```python\n{code}\n```",
        "Document this code with a docstring:\n\n```python\n{code}\n```",
        "This {what} has no docstring. Write one:\n\n```python\n{code}\n```",
        "Add documentation to the following:\n\n```python\n{code}\n```",
        "Suggest a docstring for:\n\n```python\n{code}\n```",
        "Draft the docstring of this {what}.\n\n```python\n{code}\n```",
        "What docstring should this have?\n\n```python\n{code}\n```",
        "Please write the docs for this code:\n\n```python\n{code}\n```",
    ],
}
"""Request wordings per intent; ``augmentation_factor`` of them are used per record."""
MAX_AUGMENTATION = min(len(v) for v in PHRASINGS.values())
TOOL_INTENTS = ("locate", "read", "callers", "siblings")
INSTRUCTION_INTENTS = ("summarize", "docstring")


class FromGraphConfig(BaseModel):
    """What ``tooltune data from-graph`` reads from the graph and how it turns it into examples."""

    model_config = ConfigDict(extra="forbid")

    types: list[Literal["Method", "Class", "Function"]] = Field(
        ["Method", "Class", "Function"], min_length=1, description="Node types to draw records from.")
    max_records: int = Field(1000, ge=1, le=1_000_000, description="At most this many records (highest score first).")
    quality_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Keep records whose quality score is at least this (0–1).")
    augmentation_factor: int = Field(
        3, ge=1, le=MAX_AUGMENTATION, description=f"Phrasings per request (1–{MAX_AUGMENTATION}), each a separate example.")
    seed: int = Field(0, description="Seed for choosing the phrasings.")
    service: str = Field("code", min_length=1, description="Service the tool-calling examples are for (its catalog validates them).")
    workdir: str | None = Field(
        None, description="Absolute path the code service sees the project at; default: the folder the graph was built from.")
    instructions: bool = Field(True, description="Emit instruction examples about the code (summaries, docstrings).")
    tool_calls: bool = Field(True, description="Emit tool-calling examples for the code service (Grep, Read, Glob).")
    include_private: bool = Field(False, description="Also use _private and __dunder__ names (default: public API only).")


def build_from_graph_config(values: dict[str, Any]) -> FromGraphConfig:
    """Validate ``values`` (CLI options or a YAML mapping), naming every bad field and its option."""
    try:
        return FromGraphConfig.model_validate(values)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            name = str(err["loc"][0]) if err["loc"] else "(root)"
            option = f" (--{name.replace('_', '-')})" if name in FromGraphConfig.model_fields else ""
            lines.append(f"{name}{option}: {err['msg']} (got {err.get('input')!r}).")
        raise ConfigError("invalid from-graph config:\n" + "\n".join(lines)) from e


class FromGraphResult(BaseModel):
    entries: list[dict[str, Any]] = Field(description="Curated-format entries, in record order.")
    root: str = Field(description="The folder the graph was built from.")
    read: int = Field(description="Records read from the graph.")
    kept: list[str] = Field(description="Qualnames of the records used, best first.")
    dropped: dict[str, int] = Field(description="Records left out, per reason.")
    scores: dict[str, float] = Field(description="Quality score of every record read.")
    intents: dict[str, int] = Field(description="Examples per intent (locate, read, callers, siblings, summarize, docstring).")


def examples_from_graph(store: GraphStore, config: FromGraphConfig) -> FromGraphResult:
    """Query ``store``'s graph, score, filter and augment: the whole of ``data from-graph``."""
    root, records = read_records(store, list(CODE_TYPES))  # every type, so scores and drops cover the whole graph
    if not records and not root:
        raise ConfigError(f"graph {store.graph!r} ({store.backend}) is empty: run `tooltune graph build PATH` first.")
    kept, dropped = select(records, config)
    entries = curated_entries(kept, root, config)
    intents: dict[str, int] = {}
    for entry in entries:
        intent = entry["scenario"].split(":")[0].removeprefix("graph ")
        intents[intent] = intents.get(intent, 0) + 1
    return FromGraphResult(entries=entries, root=root, read=len(records), kept=[r.qualname for r in kept], dropped=dropped,
                           scores={r.qualname: r.score for r in records}, intents=intents)


def select(records: list[CodeRecord], config: FromGraphConfig) -> tuple[list[CodeRecord], dict[str, int]]:
    """Records of the wanted types that pass the threshold, best first, at most ``max_records``;
    and how many were dropped for each reason."""
    dropped = {"type": 0, "private": 0, "below_threshold": 0, "over_max_records": 0}
    kept = []
    for record in records:
        if record.kind not in config.types:
            dropped["type"] += 1
        elif not config.include_private and record.name.startswith("_"):
            dropped["private"] += 1
        elif record.score < config.quality_threshold:
            dropped["below_threshold"] += 1
        else:
            kept.append(record)
    kept.sort(key=lambda r: (-r.score, r.qualname))
    dropped["over_max_records"] = max(0, len(kept) - config.max_records)
    return kept[: config.max_records], dropped


def curated_entries(records: list[CodeRecord], root: str, config: FromGraphConfig) -> list[dict[str, Any]]:
    """Curated-format entries (``user_query`` + outcome) for ``records``; see the module docstring."""
    workdir = (config.workdir or root).rstrip("/")
    if not workdir.startswith("/"):
        raise ConfigError(f"workdir (--workdir): {workdir!r} is not absolute; the code service's tools take absolute "
                          "paths, so give the folder the service sees the project at (e.g. /sandbox/project).")
    entries, seen = [], set()
    for record in records:
        rng = random.Random(f"{config.seed}:{record.qualname}")
        intents = []
        if config.tool_calls:
            intents += [i for i in TOOL_INTENTS if _applies(i, record)]
        if config.instructions:
            intents += [i for i in INSTRUCTION_INTENTS if _applies(i, record)]
        for intent in intents:
            outcome = _outcome(intent, record, workdir)
            for phrasing in rng.sample(PHRASINGS[intent], config.augmentation_factor):
                query = _fill(phrasing, record)
                if query in seen:  # e.g. two classes of one folder asking for that folder's files
                    continue
                seen.add(query)
                entries.append({"user_query": query, **outcome,
                                "scenario": f"graph {intent}: {record.qualname}",
                                "explanation": _explanation(intent, record)})
    return entries


def write_curated(entries: list[dict[str, Any]], path: str | Path, *, service: str = "code") -> Path:
    """Write ``entries`` as a curated file for ``service`` (YAML), ready for ``data build --curated``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"service": service, "author": "tooltune data from-graph", "training_examples": entries}
    path.write_text("# Written by `tooltune data from-graph` from the code graph; regenerate rather than edit.\n"
                    + yaml.dump(body, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=120))
    return path


class _PlainDumper(yaml.SafeDumper):
    """No &anchors / *aliases: phrasings share their outcome dict, but a reader wants each entry whole."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _applies(intent: str, record: CodeRecord) -> bool:
    if intent == "callers":
        return record.kind != "Class" and bool(record.callers)
    if intent in INSTRUCTION_INTENTS:
        return bool(record.docstring.strip()) and bool(record.code or record.kind == "Class")
    if intent == "siblings":
        return record.kind == "Class"  # one per file is enough; classes are the usual entry point
    return True


def _outcome(intent: str, record: CodeRecord, workdir: str) -> dict[str, Any]:
    file_path = f"{workdir}/{record.path}"
    if intent == "locate":
        keyword = "class" if record.kind == "Class" else "def"
        # ( and . are regex metacharacters: escaping them is one of the lessons (a common mistake).
        pattern = rf"class {re.escape(record.name)}\b" if keyword == "class" else rf"def {re.escape(record.name)}\("
        return {"correct_tool": "Grep",
                "correct_parameters": {"pattern": pattern, "path": workdir, "glob": "*.py", "output_mode": "content"},
                "alternatives": {"glob": ["**/*.py"], "output_mode": ["files_with_matches"]}, "optional": ["path", "glob"]}
    if intent == "read":
        return {"correct_tool": "Read",
                "correct_parameters": {"file_path": file_path, "offset": record.line, "limit": record.end_line - record.line + 1}}
    if intent == "callers":
        prefix = r"\." if record.kind == "Method" else r"\b"
        return {"correct_tool": "Grep",
                "correct_parameters": {"pattern": rf"{prefix}{re.escape(record.name)}\(", "path": workdir, "glob": "*.py",
                                       "output_mode": "files_with_matches"},
                "alternatives": {"glob": ["**/*.py"]}, "optional": ["path", "glob", "output_mode"]}
    if intent == "siblings":
        folder = str(PurePosixPath(file_path).parent)
        return {"correct_tool": "Glob", "correct_parameters": {"pattern": "*.py", "path": folder}}
    answer = record.docstring.split("\n\n")[0].strip() if intent == "summarize" else record.docstring.strip()
    return {"correct_behavior": {"action": "no_call", "answer": answer}}


def _fill(phrasing: str, record: CodeRecord) -> str:
    folder = str(PurePosixPath(record.path).parent)
    return phrasing.format(name=record.display, path=record.path, folder=folder if folder != "." else "the project root",
                           what={"Class": "class", "Method": "method", "Function": "function"}[record.kind],
                           code=_shown_code(record))


def _shown_code(record: CodeRecord) -> str:
    if record.kind != "Class":
        return record.code
    bases = f"({', '.join(record.bases)})" if record.bases else ""
    methods = "\n".join(f"    {sig}:\n        ..." for sig in record.methods) or "    ..."
    return f"class {record.name}{bases}:\n{methods}"


def _explanation(intent: str, record: CodeRecord) -> str:
    where = f"{record.path}:{record.line}"
    return {
        "locate": f"The request names {record.display} but not its file: search the project ({where} is the answer).",
        "read": f"The file is given: read {record.path} at lines {record.line}-{record.end_line}.",
        "callers": f"{len(record.callers)} project function(s) call {record.display}; escape ( so the regex matches a call.",
        "siblings": f"{record.path} is in {PurePosixPath(record.path).parent}; list that folder's .py files.",
        "summarize": f"The code is in the request; the answer is its docstring's summary ({where}).",
        "docstring": f"The code is in the request; the answer is its real docstring ({where}).",
    }[intent]
