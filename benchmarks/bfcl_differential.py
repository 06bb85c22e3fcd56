"""Run tooltune's matcher and BFCL's own AST checker on the same outputs; list every disagreement.

    .venv/bin/python benchmarks/bfcl_differential.py [CATEGORY ...]

For each case of the Python BFCL categories, a passing answer (see bfcl_ground_truth.py) is
mutated in ways models get wrong or nearly right: calls reordered, dropped or duplicated, a
wrong name, an extra parameter, each parameter dropped, strings upper-cased / given extra
punctuation / changed, numbers as int, float, string or off by one, bools flipped or as 0/1,
lists reversed / longer / as floats or ints, dict keys dropped or values changed. Both checkers
judge every variant. Expected disagreements are the deliberate differences documented in
tooltune/eval/match.py (optimal parallel assignment; int accepted for float inside arrays).

BFCL's checker module imports its model registry, which needs every provider SDK; the registry
is replaced by an empty stub (the checker only uses it to rename dotted function names for
some models, which this comparison does not want either).
"""

from __future__ import annotations

import argparse
import sys
import types
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bfcl_ground_truth as gt  # noqa: E402

from tooltune.data.io import import_file  # noqa: E402
from tooltune.eval.match import expected_calls, match  # noqa: E402
from tooltune.formats.base import ParseResult  # noqa: E402
from tooltune.runtime.machine import machine_line  # noqa: E402
from tooltune.tools.call import ToolCall  # noqa: E402

CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple",
              "live_parallel", "live_parallel_multiple"]


def bfcl_checker():
    stub = types.ModuleType("bfcl_eval.constants.model_config")
    stub.MODEL_CONFIG_MAPPING = {}
    sys.modules.setdefault("bfcl_eval.constants.model_config", stub)
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval import ast_checker as checker

    checker.convert_func_name = lambda name, model: name
    return lambda tools, calls, answer, category: checker.ast_checker(tools, calls, answer, Language.PYTHON, category, "x")


def variants(calls: list[ToolCall]) -> Iterator[tuple[str, list[ToolCall]]]:
    yield "canonical", calls
    if len(calls) > 1:
        yield "reversed", calls[::-1]
        yield "drop_call", calls[1:]
    yield "dup_call", calls + calls[:1]
    for i, call in enumerate(calls):
        def with_args(arguments, tag, name=None):
            return tag, [*calls[:i], ToolCall(name or call.name, arguments), *calls[i + 1:]]

        yield with_args(call.arguments, "wrong_name", call.name + "_x")
        yield with_args({**call.arguments, "zzz_extra": 1}, "extra_param")
        for key, value in call.arguments.items():
            yield with_args({k: v for k, v in call.arguments.items() if k != key}, "drop_param")
            for tag, new in _values(value):
                yield with_args({**call.arguments, key: new}, tag)


def _values(v) -> Iterator[tuple[str, object]]:
    if isinstance(v, str):
        yield "upper", v.upper().replace(" ", "")
        yield "punct", v + "-. "
        yield "changed", v + "x"
    elif isinstance(v, bool):
        yield "not_bool", not v
        yield "bool_as_int", int(v)
    elif isinstance(v, int):
        yield "int_as_float", float(v)
        yield "int_as_str", str(v)
        yield "off_by_one", v + 1
    elif isinstance(v, float):
        if v == int(v):
            yield "float_as_int", int(v)
        yield "off_by_half", v + 0.5
    elif isinstance(v, list):
        if len(v) > 1:
            yield "list_reversed", v[::-1]
        yield "list_longer", v + v[:1] if v else ["a"]
        if v and all(type(x) is int for x in v):
            yield "list_as_floats", [float(x) for x in v]
        if v and all(type(x) is float and x == int(x) for x in v):
            yield "list_as_ints", [int(x) for x in v]
        if v and all(isinstance(x, str) for x in v):
            yield "list_upper", [x.upper() for x in v]
    elif isinstance(v, dict) and v:
        first = next(iter(v))
        yield "dict_key_dropped", {k: x for k, x in v.items() if k != first}
        if isinstance(v[first], str):
            yield "dict_value_upper", {**v, first: v[first].upper()}


def run(category: str, bfcl) -> tuple[Counter, dict[str, list[str]]]:
    verdicts: Counter = Counter()
    disagreements: dict[str, list[str]] = defaultdict(list)
    for example in import_file("bfcl", category).examples:
        tools = gt.offered_tools(example)
        by_name = {t.name: t for t in tools}
        start = []
        for call in expected_calls(example):
            arguments, _ = gt.passing_arguments(call, by_name.get(call.name), "python")
            start.append(ToolCall(call.name, call.arguments if arguments is None else arguments))
        for tag, calls in variants(start):
            ours = match(example, ParseResult.ok(calls), tools).correct
            theirs = bfcl(example.inline_tools, [{c.name: c.arguments} for c in calls], example.meta["bfcl_ground_truth"], category)["valid"]
            verdicts[(ours, theirs)] += 1
            if ours != theirs:
                disagreements[tag].append(f"{example.provenance.origin} (tooltune {ours}, BFCL {theirs})")
    return verdicts, disagreements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("categories", nargs="*", default=CATEGORIES)
    args = parser.parse_args(argv)
    bfcl = bfcl_checker()
    print(machine_line())
    for category in args.categories:
        verdicts, disagreements = run(category, bfcl)
        total = sum(verdicts.values())
        agree = verdicts[(True, True)] + verdicts[(False, False)]
        print(f"{category:<24} {total:>6} variants, agree {agree / total:.2%} "
              f"(both pass {verdicts[(True, True)]}, both fail {verdicts[(False, False)]})")
        for tag, cases in sorted(disagreements.items()):
            print(f"    {tag:<18} {len(cases):>4}  e.g. {', '.join(cases[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
