"""Score BFCL's own ground truth with tooltune's matcher: a self-consistency check.

    .venv/bin/python benchmarks/bfcl_ground_truth.py [CATEGORY ...]

Each case of each BFCL v4 category (all importable ones by default; needs ``bfcl-eval``
installed) is imported, its expected calls are rendered with their canonical values as
pythonic text (``get_format("pythonic").render``; the ``json`` format for the few calls that
pythonic cannot write, e.g. a parameter named ``from``), parsed back and scored through
:func:`tooltune.eval.score.score_output`. Irrelevance cases are answered with plain prose.

A case whose canonical answer fails is then searched for *any* passing answer: each parameter
tries its canonical value, its alternatives, and omission when optional. The outcome is one of

- ``canonical``: the canonical answer passes;
- ``repaired``: the canonical answer fails but another accepted answer passes (the importer's
  choice of canonical value disagrees with the schema, e.g. "left out" for a required param);
- ``unsatisfiable``: no answer the ground truth accepts passes the matcher (the ground truth
  contradicts its own schema), with the reason.

tests/eval/test_bfcl_ground_truth.py asserts the exact lists.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

from tooltune.data.examples import Example, ExpectedCall
from tooltune.data.io import bfcl, import_file, to_json_schema_tool
from tooltune.errors import FormatError
from tooltune.eval.match import check_call, expected_calls
from tooltune.eval.score import score_output
from tooltune.formats.base import get_format
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool
from tooltune.runtime.machine import machine_line

_OMIT = object()


@dataclass
class Case:
    id: str
    outcome: str
    """canonical | repaired | unsatisfiable"""
    reason: str | None = None
    message: str = ""


@dataclass
class CategoryReport:
    category: str
    n: int
    failures: list[Case] = field(default_factory=list)
    """Every case whose canonical answer fails (repaired or unsatisfiable)."""
    rendered_as_json: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(c.outcome == outcome for c in self.failures)

    @property
    def canonical_rate(self) -> float:
        return 1 - len(self.failures) / self.n if self.n else 1.0

    @property
    def satisfiable_rate(self) -> float:
        return 1 - self.count("unsatisfiable") / self.n if self.n else 1.0


def offered_tools(example: Example) -> list[Tool]:
    """The example's tools without jsonschema meta-validation (the importer's tests check the
    schemas; validating ~5 000 of them again would dominate the run)."""
    dialect = example.meta.get("schema_dialect")
    dicts = [to_json_schema_tool(d, dialect) if dialect else d for d in example.inline_tools]
    inline = {d["name"]: Tool.model_validate(d) for d in dicts}
    return [inline[name] for name in example.tools]


def render(calls: list[ToolCall]) -> tuple[str, str]:
    """``(format name, text)``: pythonic, or json where pythonic cannot write a name."""
    try:
        return "pythonic", get_format("pythonic").render(calls)
    except FormatError:
        return "json", get_format("json").render(calls)


def passing_arguments(expected: ExpectedCall, tool: Tool | None, language: str) -> tuple[dict | None, str]:
    """Arguments the matcher accepts for ``expected``, searched parameter by parameter (the
    checks of different parameters are independent); ``(None, why)`` when none exist."""
    params = list(dict.fromkeys([*expected.arguments, *expected.alternatives, *expected.optional]))
    options = {p: [*expected.allowed(p), *([_OMIT] if p in expected.optional else [])] for p in params}
    choice = dict.fromkeys(params, 0)
    while True:
        arguments = {p: options[p][choice[p]] for p in params if options[p][choice[p]] is not _OMIT}
        check = check_call(expected, ToolCall(expected.name, arguments), tool, language)
        if check.correct:
            return arguments, ""
        failing = {p.name for p in check.params if not p.ok}
        stuck = [p for p in failing if p not in choice or choice[p] + 1 >= len(options[p])]
        if stuck:
            return None, f"{check.reason.value if check.reason else '?'}: {check.message}"
        for p in failing:
            choice[p] += 1


def check_category(category: str) -> CategoryReport:
    start = time.perf_counter()
    imported = import_file("bfcl", category)
    report = CategoryReport(category, len(imported.examples))
    for example in imported.examples:
        tools = offered_tools(example)
        expected = expected_calls(example)
        case_id = example.provenance.origin or example.id
        if not expected:
            result = score_output(example, "I can't help with that using these tools.", "pythonic", tools)
            if not result.correct:
                report.failures.append(Case(case_id, "unsatisfiable", result.match.reason.value, result.match.message))
            continue
        fmt, text = render([c.to_call() for c in expected])
        if fmt != "pythonic":
            report.rendered_as_json.append(case_id)
        result = score_output(example, text, fmt, tools)
        if result.correct:
            continue
        canonical_reason, canonical_message = result.match.reason.value, result.match.message
        language = str(example.meta.get("bfcl_language", "python"))
        by_name = {t.name: t for t in tools}
        repaired, why = [], ""
        for call in expected:
            arguments, why = passing_arguments(call, by_name.get(call.name), language)
            if arguments is None:
                break
            repaired.append(ToolCall(call.name, arguments))
        if len(repaired) == len(expected):
            fmt, text = render(repaired)
            repaired_ok = score_output(example, text, fmt, tools).correct
        if len(repaired) == len(expected) and repaired_ok:
            report.failures.append(Case(case_id, "repaired", canonical_reason, canonical_message))
        else:
            report.failures.append(Case(case_id, "unsatisfiable", canonical_reason, why or canonical_message))
    report.seconds = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("categories", nargs="*", default=list(bfcl.CATEGORIES), help="BFCL categories (default: all importable)")
    args = parser.parse_args(argv)
    reports = [check_category(c) for c in args.categories]
    print(machine_line())  # the seconds column is this machine's
    print(f"{'category':<24}{'cases':>7}{'canonical':>11}{'satisfiable':>13}{'seconds':>9}")
    for r in reports:
        print(f"{r.category:<24}{r.n:>7}{r.canonical_rate:>10.2%} {r.satisfiable_rate:>12.2%} {r.seconds:>8.1f}")
    for r in reports:
        for case in r.failures:
            print(f"{case.outcome:<14}{case.id:<28}{case.reason:<18}{case.message}")
        for case_id in r.rendered_as_json:
            print(f"{'json-rendered':<14}{case_id:<28}pythonic cannot write a name in this call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
