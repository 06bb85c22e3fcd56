"""Parse results and the registry of tool-call formats (the calls themselves: :mod:`tooltune.tools.call`).

Each format lives in its own module (``hermes.py``, ``glaive.py`` …) with a ``render`` and a
``parse`` function and registers itself here by name. Training, evaluation and serving look the
format up by that name, so a model is parsed in evaluation by exactly the code that serves it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tooltune.errors import FormatError
from tooltune.tools.call import ToolCall


class ParseKind(str, enum.Enum):
    NO_CALL = "no_call"
    """The text holds no tool-call markup: the model answered in prose."""
    CALLS = "calls"
    """The text holds one or more well-formed calls."""
    MALFORMED = "malformed"
    """The text holds call markup that could not be turned into calls; ``error`` says why."""


@dataclass
class ParseResult:
    kind: ParseKind
    calls: list[ToolCall] = field(default_factory=list)
    content: str = ""
    """Text outside the call markup (the assistant's prose), stripped."""
    error: str | None = None

    @classmethod
    def no_call(cls, content: str) -> ParseResult:
        return cls(ParseKind.NO_CALL, content=content.strip())

    @classmethod
    def ok(cls, calls: list[ToolCall], content: str = "") -> ParseResult:
        return cls(ParseKind.CALLS, calls=calls, content=content.strip())

    @classmethod
    def malformed(cls, error: str, content: str = "") -> ParseResult:
        return cls(ParseKind.MALFORMED, content=content.strip(), error=error)

    @property
    def has_calls(self) -> bool:
        return self.kind is ParseKind.CALLS


@dataclass(frozen=True)
class CallFormat:
    """A named tool-call format. ``parse`` must never raise, whatever the text."""

    name: str
    render: Callable[[list[ToolCall]], str]
    parse: Callable[[str], ParseResult]
    description: str = ""


_FORMATS: dict[str, CallFormat] = {}
# Modules that register the built-in formats; imported on first lookup so that importing
# ``base`` alone (as every format module does) never needs the whole set.
_BUILTIN_MODULES = ("hermes", "glaive", "json_format", "openai", "pythonic")


def _load_builtins() -> None:
    import importlib

    for module in _BUILTIN_MODULES:
        importlib.import_module(f"tooltune.formats.{module}")


def register(
    name: str,
    *,
    render: Callable[[list[ToolCall]], str],
    parse: Callable[[str], ParseResult],
    description: str = "",
) -> CallFormat:
    """Register a format module's ``render``/``parse`` under ``name``; the stored parser is
    wrapped by :func:`safe_parse`, so callers may rely on it never raising."""
    if name in _FORMATS:
        raise FormatError(f"tool-call format {name!r} is registered twice.")
    fmt = CallFormat(name=name, render=render, parse=lambda text: safe_parse(parse, text), description=description)
    _FORMATS[name] = fmt
    return fmt


def get_format(name: str) -> CallFormat:
    """The format registered as ``name``; unknown names fail and list the registered ones."""
    _load_builtins()
    try:
        return _FORMATS[name]
    except KeyError:
        raise FormatError(
            f"unknown tool-call format {name!r}; registered formats: {', '.join(sorted(_FORMATS))}."
        ) from None


def format_names() -> list[str]:
    _load_builtins()
    return sorted(_FORMATS)


def safe_parse(parse: Callable[[str], ParseResult], text: Any) -> ParseResult:
    """Run a parser and turn any exception it lets through into a malformed result.

    Format parsers are written not to raise; this is the backstop that keeps the promise for
    inputs nobody foresaw (deep recursion, odd types), because a raise inside evaluation or
    serving would take a whole batch down for one bad generation."""
    if not isinstance(text, str):
        return ParseResult.malformed(f"expected model output text, got {type(text).__name__}")
    try:
        return parse(text)
    except Exception as e:  # noqa: BLE001 - deliberate backstop, see docstring
        return ParseResult.malformed(f"parser error: {type(e).__name__}: {e}", content=text)
