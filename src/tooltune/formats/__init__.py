"""Tool-call formats: one module per format, each with ``render(calls)`` and ``parse(text)``.

Look formats up by name with :func:`get_format`; the built-in ones register on first lookup.
"""

from tooltune.formats.base import CallFormat, ParseKind, ParseResult, format_names, get_format

__all__ = ["CallFormat", "ParseKind", "ParseResult", "format_names", "get_format"]
