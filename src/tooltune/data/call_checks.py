"""Checks shared by the curated-file loader and the production-feedback ingester: expected calls
against the catalog, the conversation's shape, and the tools an example offers.

Sharing them means a curated example and a corrected production call pass exactly the same checks.

References (``{prev.customer_id}``, ``{steps[0].customer_id}``) stand for a value known only
when the sequence runs, so a parameter whose whole value is a reference skips its type check.
The reference itself must be well formed and point at an earlier step.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Iterator

from tooltune.data.examples import REFERENCE, ExpectedCall
from tooltune.data.vocabulary import DomainVocabulary
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.tools.validate import argument_problems

ROLES = ("system", "user", "assistant", "tool")
# Anything that looks like it meant to be a reference, well formed or not.
_REFERENCE_LIKE = re.compile(r"\{\s*(?:prev|steps)\b[^{}]*\}")
# Money as users write it: "$12.50", "€30", "£1,200", "50 dollars", "30 EUR".
_MONEY = re.compile(
    r"(?:[$€£]\s?(?P<a>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<ac>\d{1,2}))?)"
    r"|(?:(?P<b>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<bc>\d{1,2}))?\s?(?:dollars?|euros?|pounds?|usd|eur|gbp)\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class CallProblem:
    """One problem with one expected call.

    ``key`` locates it inside the call, in the generic layout ``name`` / ``arguments`` /
    ``alternatives`` / ``optional`` (e.g. ``("arguments", "amount")``); callers map it onto their
    own file's keys. ``message`` holds the cause and the fix."""

    key: tuple[str | int, ...]
    message: str


def check_call(
    call: ExpectedCall,
    catalog: ToolCatalog,
    *,
    step: int | None = None,
    vocabulary: DomainVocabulary | None = None,
    request: str = "",
) -> list[CallProblem]:
    """Every problem of ``call`` against ``catalog``; empty when it is a valid expected call.

    ``step`` is the call's index in a sequence (``None`` outside one: references are then an
    error). ``request`` is the user's text, used to spot dollars written where cents belong."""
    if call.name not in catalog:
        return [CallProblem(("name",), unknown_tool(call.name, catalog))]
    tool = catalog.get(call.name)
    vocabulary = vocabulary or DomainVocabulary()
    problems = _reference_problems(call.arguments, step)
    problems += _argument_problems(tool, call.arguments, vocabulary, key=("arguments",))
    problems += _alternative_problems(tool, call, vocabulary)
    problems += _optional_problems(tool, call)
    problems += _dollar_problems(tool, call.arguments, vocabulary, request)
    return problems


def unknown_tool(name: str, catalog: ToolCatalog) -> str:
    close = difflib.get_close_matches(name, catalog.names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    return (f"no tool named {name!r} in the catalog{hint} Use one of: {', '.join(catalog.names)} "
            "(or rediscover the catalog if the tool is new).")


def offered_tools(catalog: ToolCatalog, called: list[str], service: str | None = None) -> list[str]:
    """The tools an example offers: every catalog tool of ``service`` (else of the services of the
    ``called`` tools), in catalog order, plus any called tool outside them.

    Offering the whole service makes the model *select* among related tools, and catalog order
    keeps the correct tool at no fixed position. A catalog whose tools carry no service offers
    all its tools."""
    services = {service} if service else {catalog.get(n).service for n in called if n in catalog}
    pool = [t.name for t in catalog if t.service and t.service in services] or catalog.names
    return pool + [n for n in dict.fromkeys(called) if n not in pool]


def conversation_problem(messages: list[dict[str, Any]]) -> str | None:
    """Why ``messages`` cannot be an example's conversation, or ``None`` when it can."""
    if not messages:
        return "messages is empty; give at least one user message"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, dict) else m
            return f"messages[{i}] has role {role!r}; use one of {', '.join(ROLES)}"
    if messages[-1]["role"] not in ("user", "tool"):
        return ("the last message must be a user turn (or a tool result): the example predicts the reply to it, "
                "so end the conversation before the assistant turn being taught")
    return None


def service_parameters(catalog: ToolCatalog, tools: list[str]) -> set[str]:
    """Every parameter name of the given catalog tools (for checking clarify ``required_fields``)."""
    return {p for t in catalog if t.name in tools for p in t.properties}


# ---------------------------------------------------------------- references


def _reference_problems(arguments: dict[str, Any], step: int | None) -> list[CallProblem]:
    problems = []
    for path, text in _strings(arguments, ()):
        for m in _REFERENCE_LIKE.finditer(text):
            message = _reference_problem(m.group(0), step)
            if message:
                problems.append(CallProblem(("arguments", *path), message))
    return problems


def _reference_problem(ref: str, step: int | None) -> str | None:
    good = REFERENCE.fullmatch(ref)
    if not good:
        return (f"malformed reference {ref}: write {{prev.field}} for the previous step's result or "
                "{steps[N].field} for step N's (0-based), with dotted fields and [i] list indexes.")
    if step is None:
        return (f"reference {ref} outside a sequence: references only work in a correct_sequence step. "
                "Write the literal value, or make the example a sequence.")
    if good.group(1) == "prev" and step == 0:
        return f"reference {ref} in step 0: the first step has no previous result. Write the literal value."
    if good.group(2) is not None and int(good.group(2)) >= step:
        return (f"reference {ref} in step {step}: step {good.group(2)} has not finished when step {step} runs. "
                f"Refer to an earlier step (steps[0] to steps[{step - 1}]; {{prev.field}} is steps[{step - 1}]).")
    return None


def _strings(value: Any, path: tuple) -> Iterator[tuple[tuple, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


# ---------------------------------------------------------------- arguments


def _argument_problems(tool: Tool, arguments: dict[str, Any], vocabulary: DomainVocabulary, *, key: tuple) -> list[CallProblem]:
    # A value that is wholly a reference stands in for any type, so schema complaints about
    # exactly that value are dropped; complaints about the object (missing, unexpected) stay.
    referenced = {_problem_path(tool.name, p) for p, text in _strings(arguments, ()) if REFERENCE.fullmatch(text)}
    out = []
    for problem in argument_problems(tool, arguments):
        path = problem.split(": ", 1)[0]
        if path in referenced:
            continue
        param = _param_of(tool.name, path)
        value = arguments.get(param) if param else None
        where = (*key, param) if param and param in arguments else key
        out.append(CallProblem(where, f"{problem}. {_fix(problem, tool, param, value, vocabulary)}"))
    return out


def _alternative_problems(tool: Tool, call: ExpectedCall, vocabulary: DomainVocabulary) -> list[CallProblem]:
    out = []
    for param, values in call.alternatives.items():
        if param not in tool.properties:
            out.append(CallProblem(("alternatives", param), _unknown_param(tool, param, "alternatives")))
            continue
        for i, value in enumerate(values):
            prefix = _problem_path(tool.name, (param,))
            for p in _argument_problems(tool, {**call.arguments, param: value}, vocabulary, key=("alternatives",)):
                if p.message.startswith(prefix + ":") or p.message.startswith(prefix + "."):
                    out.append(CallProblem(("alternatives", param, i), f"alternative {i}: {p.message}"))
    return out


def _optional_problems(tool: Tool, call: ExpectedCall) -> list[CallProblem]:
    out = []
    for i, param in enumerate(call.optional):
        if param not in tool.properties:
            out.append(CallProblem(("optional", i), _unknown_param(tool, param, "optional")))
        elif param in tool.required:
            out.append(CallProblem(("optional", i), (
                f"{tool.name}.{param}: optional lists {param!r}, which the schema requires. "
                "Remove it from optional: a call without it would fail.")))
    return out


def _unknown_param(tool: Tool, param: str, field: str) -> str:
    return (f"{tool.name}: {field} names {param!r}, which is not a parameter. "
            f"Use one of: {', '.join(tool.properties) or '(none)'}.")


def _problem_path(tool: str, parts: tuple) -> str:
    out = tool
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _param_of(tool: str, path: str) -> str | None:
    rest = path[len(tool) + 1:] if path.startswith(tool + ".") else ""
    return re.split(r"[.\[]", rest, maxsplit=1)[0] or None


def _fix(problem: str, tool: Tool, param: str | None, value: Any, vocabulary: DomainVocabulary) -> str:
    if "missing required parameter" in problem:
        return "Add it, or make the example a clarify edge case if the user did not give it."
    if "unexpected parameter" in problem:
        return "Remove it or rename it to one of the known parameters."
    if param and vocabulary.is_cents(tool.name, param):
        cents = to_cents(value)
        return f"Write amounts in cents as an integer ({cents if cents is not None else 5000})."
    if param and "expected one of" in problem and isinstance(value, str):
        mapped = [t.value for t in vocabulary.terms if t.applies_to(tool.name, param)
                  and value.lower().replace("_", " ") in [s.lower() for s in t.says]]
        if mapped:
            return f"Use {mapped[0]!r}: the domain vocabulary maps {value!r} to it."
        return "Use one of the listed values."
    return "Change the value to match the tool's parameter schema."


def to_cents(value: Any) -> int | None:
    """``"$50.00"`` → 5000, ``12.5`` → 1250; ``None`` when ``value`` is not a money amount."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return round(value * 100)
    if isinstance(value, str):
        text = value.strip().lstrip("$€£").replace(",", "").strip()
        try:
            return round(float(text) * 100)
        except ValueError:
            return None
    return None


def _dollar_problems(tool: Tool, arguments: dict[str, Any], vocabulary: DomainVocabulary, request: str) -> list[CallProblem]:
    # The mistake this project exists to fix: "$50" sent as 50 (fifty cents).
    amounts = {}
    for m in _MONEY.finditer(request):
        whole, frac = (m.group("a"), m.group("ac")) if m.group("a") else (m.group("b"), m.group("bc"))
        major = int(whole.replace(",", ""))
        amounts[m.group(0)] = (major, major * 100 + int((frac or "0").ljust(2, "0")))
    all_cents = {c for _, c in amounts.values()}
    out = []
    for param, value in arguments.items():
        if not vocabulary.is_cents(tool.name, param) or not isinstance(value, int) or isinstance(value, bool):
            continue
        for said, (major, cents) in amounts.items():
            if value == major and value not in all_cents:
                out.append(CallProblem(("arguments", param), (
                    f"{tool.name}.{param}: {value} is the amount in major units: the request says {said.strip()!r}, "
                    f"which is {cents} cents. Write amounts in cents as an integer ({cents}).")))
                break
    return out
