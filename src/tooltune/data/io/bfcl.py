"""BFCL v4 (Berkeley Function Calling Leaderboard) test categories, import only.

Reads the data files that the ``bfcl-eval`` package ships (install it without its heavy
dependencies: ``pip install --no-deps bfcl-eval==2026.3.23``), or a copy of them::

    bfcl_eval/data/BFCL_v4_simple_python.json                  {"id", "question", "function"} per line
    bfcl_eval/data/possible_answer/BFCL_v4_simple_python.json  {"id", "ground_truth"} per line

``question`` is a list of turns, each a list of OpenAI-shaped messages; the single-turn
categories read here have exactly one turn, which becomes ``Example.messages``. ``function``
lists the offered tools in BFCL's schema dialect, kept verbatim (see
:mod:`tooltune.data.io.dialects`). Ground truth is ``[{"func": {"param": [v1, v2, ""]}}]``: every
listed value is accepted and ``""`` means the parameter may be left out. It maps to
:class:`ExpectedCall` as ``arguments`` = the first value (left out when the first is ``""``),
``alternatives`` = the other values, ``optional`` = parameters whose list holds ``""``. For a
dict-typed parameter (or a list of dicts) BFCL lists the accepted values *per key*; those are
expanded into every whole value they allow, so a matcher can compare values as a whole. The
ground truth is also kept verbatim in ``meta["bfcl_ground_truth"]``.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tooltune.data.examples import Behavior, Example, ExpectedCall, Provenance, Quality, Source
from tooltune.data.io._records import ImportOptions, RecordError, json_records, quarantine_record, tool_names
from tooltune.data.quarantine import QuarantineRecord
from tooltune.errors import DataError
from tooltune.tools.catalog import canonical_json

NAME = "bfcl"
DIALECT = "bfcl"
BFCL_EVAL_PIN = "bfcl-eval==2026.3.23"
FILE_PREFIX = "BFCL_v4_"
CATEGORIES = (
    "simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple",
    "irrelevance", "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance",
)
IRRELEVANCE = ("irrelevance", "live_irrelevance")
_MULTI_TURN = "multi-turn conversations run against stateful tool backends; importing them is not supported yet"
UNSUPPORTED = {
    "live_relevance": "its cases have no ground truth (any call counts), which an Example cannot state",
    "multi_turn_base": _MULTI_TURN,
    "multi_turn_miss_func": _MULTI_TURN,
    "multi_turn_miss_param": _MULTI_TURN,
    "multi_turn_long_context": _MULTI_TURN,
    "memory": "agentic memory cases are multi-turn with backend state; importing them is not supported yet",
    "web_search": "agentic web-search cases need a live search backend; importing them is not supported yet",
    "format_sensitivity": "the file lists ids of other categories, not test cases",
}
DICT_TYPES = {"dict", "object", "HashMap", "Hashtable"}
ARRAY_TYPES = {"array", "list", "tuple", "ArrayList", "Array"}
MAX_VARIANTS = 1024
"""Most whole values one dict parameter may expand to (BFCL v4's largest is 128)."""
_OMIT = object()


def read(
    source: str | Path, *, quality: Quality | str = Quality.MEDIUM, dataset: str | None = None
) -> Iterator[Example | QuarantineRecord]:
    """The examples of one BFCL category, given by name (``"simple_python"``, read from the
    installed ``bfcl-eval`` package) or by the path of its question file."""
    questions, category = locate(source)
    options = ImportOptions.of(quality, dataset)
    answers = {} if category in IRRELEVANCE else _answers(questions.parent / "possible_answer" / questions.name)
    for line, value, error in json_records(questions):
        where = f"{questions}:{line}"
        if error is not None:
            yield quarantine_record(where, [error], value)
            continue
        try:
            yield _example(value, answers, category, options)
        except RecordError as e:
            yield quarantine_record(where, e.reasons, value)


def locate(source: str | Path) -> tuple[Path, str]:
    """The question file and category of ``source``: a category name or a question file path."""
    path = Path(source)
    if path.is_file():
        category = path.stem.removeprefix(FILE_PREFIX)
    else:
        category = str(source)
        path = data_dir() / f"{FILE_PREFIX}{category}.json"
    if category in UNSUPPORTED:
        raise DataError(f"BFCL category {category!r} cannot be imported: {UNSUPPORTED[category]}.")
    if category not in CATEGORIES:
        raise DataError(
            f"{source}: not a BFCL v4 category or question file; categories: {', '.join(CATEGORIES)} "
            f"(not importable: {', '.join(UNSUPPORTED)})."
        )
    if not path.is_file():
        raise DataError(f"{path}: BFCL question file not found.")
    return path, category


def data_dir() -> Path:
    """``bfcl_eval/data`` of the installed package, found without importing it."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the bfcl-eval package is not installed, so BFCL categories cannot be found by name. "
            f"Install its data with `pip install --no-deps {BFCL_EVAL_PIN}`, or pass the path of a question file."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _answers(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path}: BFCL possible-answer file not found; put it in possible_answer/ next to the questions.")
    answers = {}
    for line, value, error in json_records(path):
        if error is not None or not isinstance(value, dict) or "id" not in value:
            reason = error or "expected an object with id and ground_truth"
            raise DataError(f"{path}:{line}: not a possible-answer record ({reason}).")
        answers[value["id"]] = value.get("ground_truth")
    return answers


def _example(case: Any, answers: dict[str, Any], category: str, options: ImportOptions) -> Example:
    if not isinstance(case, dict) or not isinstance(case.get("id"), str):
        raise RecordError('expected an object with "id", "question" and "function"')
    question, functions = case.get("question"), case.get("function")
    if not isinstance(question, list) or len(question) != 1 or not isinstance(question[0], list):
        raise RecordError(f"{case['id']}: question must hold exactly one turn (a list of messages)")
    names = tool_names(functions, DIALECT)
    meta: dict[str, Any] = {"schema_dialect": DIALECT, "bfcl_category": category, "bfcl_language": _language(category)}
    calls: list[ExpectedCall] = []
    if category not in IRRELEVANCE:
        if case["id"] not in answers:
            raise RecordError(f"{case['id']}: no possible answer with this id")
        meta["bfcl_ground_truth"] = answers[case["id"]]
        properties = {f["name"]: (f.get("parameters") or {}).get("properties") or {} for f in functions}
        required = {f["name"]: set((f.get("parameters") or {}).get("required") or []) for f in functions}
        calls = [_expected_call(entry, properties, required, f"{case['id']}: ground_truth[{i}]")
                 for i, entry in enumerate(_ground_truth(answers[case["id"]], case["id"]))]
    try:
        return Example(
            service=options.dataset,
            messages=question[0],
            tools=names,
            inline_tools=functions,
            behavior=Behavior.CALLS if calls else Behavior.NO_CALL,
            calls=calls,
            provenance=Provenance(source=Source.IMPORTED, quality=options.quality, origin=case["id"]),
            meta=meta,
        )
    except ValueError as e:
        raise RecordError(f"{case['id']}: not a valid example: {e}") from None


def _language(category: str) -> str:
    return {"simple_java": "java", "simple_javascript": "javascript"}.get(category, "python")


def _ground_truth(value: Any, case_id: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or not all(isinstance(e, dict) and len(e) == 1 for e in value):
        raise RecordError(f"{case_id}: ground_truth must be a non-empty list of {{function: {{param: [values]}}}}")
    return value


def _expected_call(entry: dict[str, Any], properties: dict[str, dict[str, Any]], required: dict[str, set[str]],
                   where: str) -> ExpectedCall:
    (name, params), = entry.items()
    if name not in properties:
        raise RecordError(f"{where}: calls {name!r}, which is not among the offered functions")
    if not isinstance(params, dict):
        raise RecordError(f"{where}: {name}: expected {{param: [accepted values]}}")
    arguments, alternatives, optional = {}, {}, []
    for param, allowed in params.items():
        if not isinstance(allowed, list):
            raise RecordError(f"{where}: {name}.{param}: expected a list of accepted values")
        if not allowed:
            raise RecordError(f"{where}: {name}.{param}: no accepted value is listed, so no answer can pass the case")
        if "" in allowed:
            optional.append(param)
        values = _unique([v for value in allowed if value != "" for v in _expand(value, properties[name].get(param), where)])
        # The canonical value is what training renders, so it must satisfy the schema even where
        # BFCL lists "" (leave out) first for a required parameter, or a value for a parameter
        # the function does not declare (BFCL's simple_python_200, parallel_multiple_26, …).
        declared = param in properties[name]
        leave_out_first = allowed[0] == "" and not (param in required[name] and declared)
        if values and not leave_out_first and (declared or "" not in allowed):
            arguments[param], values = values[0], values[1:]
        if values:
            alternatives[param] = values
    return ExpectedCall(name=name, arguments=arguments, alternatives=alternatives, optional=optional)


def _expand(value: Any, schema: Any, where: str) -> list[Any]:
    """Every whole value an accepted value stands for. For dict types (and lists of dicts) BFCL
    lists accepted values per key, ``""`` marking a key that may be left out; elsewhere a value
    stands for itself."""
    schema = schema if isinstance(schema, dict) else {}
    if schema.get("type") in DICT_TYPES and _is_keyed_answer(value):
        choices = [[_OMIT if v == "" else v for v in allowed] for allowed in value.values()]
        variants = _product(choices, where)
        return [{k: v for k, v in zip(value, combo) if v is not _OMIT} for combo in variants]
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
    if schema.get("type") in ARRAY_TYPES and items.get("type") in DICT_TYPES and isinstance(value, list) \
            and all(_is_keyed_answer(v) for v in value):
        return [list(combo) for combo in _product([_expand(v, items, where) for v in value], where)]
    return [value]


def _is_keyed_answer(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, list) for v in value.values())


def _product(choices: list[list[Any]], where: str) -> list[tuple[Any, ...]]:
    count = 1
    for c in choices:
        count *= len(c)
    if count > MAX_VARIANTS:
        raise RecordError(f"{where}: a dict parameter expands to {count} accepted values (limit {MAX_VARIANTS})")
    return list(itertools.product(*choices))


def _unique(values: list[Any]) -> list[Any]:
    """Values in order without repeats; compared as JSON so that 1 and True stay distinct."""
    seen, out = set(), []
    for value in values:
        key = canonical_json(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out
