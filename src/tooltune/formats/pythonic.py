"""Pythonic tool calls, as in BFCL ground truth and Llama 3.2: a Python list of calls.

    [get_weather(city='Paris'), math.factorial(n=5)]

Parsing uses :mod:`ast` and never evaluates anything. Argument values must be literals: strings,
ints, floats, True/False/None, lists, tuples (read as lists), dicts with string keys, and
negated numbers. Tool names are identifiers joined by dots (``math.factorial``); arguments are
passed by keyword only.

Which texts are calls (``kind``), after removing a surrounding Markdown code block and whitespace:

- calls: the text is a list of calls ``[f(a=1), g()]`` or a single bare call ``f(a=1)``, and
  every call is well formed;
- malformed: a call or a list holding a call that is not well formed (``[f(x)]``,
  ``[f(a=x)]``, ``[f(), 1]``); or any other text that *starts like a call attempt*, meaning it
  starts with ``[`` and contains ``(``, or starts with a (dotted) name followed by ``(``
  (a truncated ``[f(a=1``, trailing prose ``[f(a=1)] and then``);
- no_call: anything else (prose, ``[]``, a list of plain values such as ``[1, 2]``).

Render restriction: a tool name must be identifiers joined by dots and an argument name must be
an identifier, where an identifier is a Python identifier that is not a keyword and is unchanged
by NFKC normalization (Python normalizes identifiers, so ``ﬁ`` would read back as ``fi``).
Other names raise FormatError. Argument values may be any JSON value except NaN/Infinity.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import unicodedata
import warnings
from typing import Any

from tooltune.errors import FormatError
from tooltune.formats._calls import Malformed, check_renderable, strip_fence
from tooltune.formats.base import ParseResult, register
from tooltune.tools.call import ToolCall

NAME = "pythonic"
_BARE_CALL_START = re.compile(r"[^\W\d]\w*(?:\s*\.\s*[^\W\d]\w*)*\s*\(")


def render(calls: list[ToolCall]) -> str:
    """``[f(a=1), g(b='x')]``: Python literals, keyword arguments in the calls' key order."""
    check_renderable(calls, NAME)
    return "[" + ", ".join(_render_call(call, i) for i, call in enumerate(calls)) + "]"


def _render_call(call: ToolCall, index: int) -> str:
    where = f"{NAME}: call {index}"
    if not all(_is_identifier(part) for part in call.name.split(".")):
        raise FormatError(
            f"{where}: tool name {call.name!r} cannot be written as a Python call; pythonic tool names "
            "are identifiers joined by dots (e.g. math.factorial). Rename the tool or use a JSON-based format."
        )
    arguments = []
    for key, value in call.arguments.items():
        if not isinstance(key, str) or not _is_identifier(key):
            raise FormatError(
                f"{where} ({call.name}): argument name {key!r} is not a Python identifier, so it cannot be "
                "passed as a keyword. Rename the parameter or use a JSON-based format."
            )
        arguments.append(f"{key}={_literal(value, f'{where} ({call.name}) argument {key!r}')}")
    return f"{call.name}({', '.join(arguments)})"


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and unicodedata.normalize("NFKC", name) == name


def _literal(value: Any, where: str) -> str:
    """Python source for a JSON value; the base types' own ``__repr__`` round-trips through ast."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FormatError(f"{where}: {value!r} is not a JSON number; pass a finite float.")
        return float.__repr__(value)
    if isinstance(value, str):
        return str.__repr__(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(item, where) for item in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise FormatError(f"{where}: dict keys must be strings (JSON object keys); got {list(value)!r}.")
        return "{" + ", ".join(f"{str.__repr__(k)}: {_literal(v, where)}" for k, v in value.items()) + "}"
    raise FormatError(f"{where}: a {type(value).__name__} is not a JSON value; use JSON values only.")


def parse(text: str) -> ParseResult:
    """Calls from a Python list of calls (or one bare call); see the module docstring for the
    rule that separates no_call from malformed."""
    source = strip_fence(text)
    if "(" not in source:
        return ParseResult.no_call(text)
    attempt = source.startswith("[") or _BARE_CALL_START.match(source) is not None
    try:
        tree = _parse_quietly(source)
    # CPython reports very deep nesting (e.g. '- - - … 1') as MemoryError or RecursionError,
    # and null bytes or lone surrogates as ValueError; all mean "not parseable" here.
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        if attempt:
            return ParseResult.malformed(f"looks like a pythonic call list but is not valid Python: {_reason(e)}")
        return ParseResult.no_call(text)
    try:
        calls = _calls_from(tree.body, source)
    except Malformed as e:
        return ParseResult.malformed(str(e))
    if calls is not None:
        return ParseResult.ok(calls)
    if attempt:
        return ParseResult.malformed(f"looks like a pythonic call list but is not one: {_snippet(source, tree.body)}")
    return ParseResult.no_call(text)


def _parse_quietly(source: str) -> ast.Expression:
    # The compiler warns about odd-but-valid source ('1and x', '"s"()') on stderr; model output
    # is not our code, so those warnings would only be noise in serving logs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(source, mode="eval")


def _reason(e: Exception) -> str:
    if isinstance(e, SyntaxError):
        return f"{e.msg} (line {e.lineno}, column {e.offset})"
    if isinstance(e, (RecursionError, MemoryError)):
        return "expression nested too deeply"
    return str(e)


def _calls_from(node: ast.expr, source: str) -> list[ToolCall] | None:
    """The calls in ``node``, None if it holds no call at all."""
    if isinstance(node, ast.Call):
        return [_call(node, 0, source)]
    if isinstance(node, ast.List) and any(isinstance(item, ast.Call) for item in node.elts):
        return [_call(item, i, source) for i, item in enumerate(node.elts)]
    return None


def _call(node: ast.expr, index: int, source: str) -> ToolCall:
    where = f"call {index}"
    if not isinstance(node, ast.Call):
        raise Malformed(f"item {index} of the list, {_snippet(source, node)}, is not a function call")
    name = _dotted_name(node.func)
    if name is None:
        raise Malformed(f"{where}: {_snippet(source, node.func)} is not a tool name like f or math.factorial")
    where = f"{where} ({name})"
    if node.args:
        raise Malformed(
            f"{where}: positional argument {_snippet(source, node.args[0])}; pass every argument by keyword (name=value)"
        )
    arguments: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise Malformed(f"{where}: {_snippet(source, kw)} unpacks arguments; pass each one by keyword")
        if kw.arg in arguments:
            raise Malformed(f"{where}: argument {kw.arg!r} is given twice")
        arguments[kw.arg] = _value(kw.value, f"{where} argument {kw.arg!r}", source)
    return ToolCall(name=name, arguments=arguments)


def _dotted_name(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _value(node: ast.expr, where: str, source: str) -> Any:
    """The JSON value of a literal node; anything that would need evaluating is Malformed."""
    if isinstance(node, ast.Constant):
        return _constant(node.value, where, source, node)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = node.operand
        if isinstance(operand, ast.Constant) and type(operand.value) in (int, float):
            number = -operand.value if isinstance(node.op, ast.USub) else operand.value
            return _constant(number, where, source, node)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(item, where, source) for item in node.elts]
    if isinstance(node, ast.Dict):
        result = {}
        for key, item in zip(node.keys, node.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                shown = "**" + _snippet(source, item) if key is None else _snippet(source, key)
                raise Malformed(f"{where}: dict key {shown} is not a string literal")
            result[key.value] = _value(item, where, source)
        return result
    raise Malformed(
        f"{where}: {_snippet(source, node)} is not a literal "
        "(use strings, numbers, True/False/None, lists and dicts)"
    )


def _constant(value: Any, where: str, source: str, node: ast.expr) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Malformed(f"{where}: {_snippet(source, node)} is not a finite number")
        return value
    raise Malformed(f"{where}: {_snippet(source, node)} ({type(value).__name__}) is not a JSON value")


def _snippet(source: str, node: ast.AST) -> str:
    segment = ast.get_source_segment(source, node) or type(node).__name__
    return repr(segment if len(segment) <= 60 else segment[:57] + "...")


register(NAME, render=render, parse=parse, description="Pythonic (BFCL): [f(a=1), g(b='x')]")
