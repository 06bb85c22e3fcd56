"""tooltune: make language models call your own tools reliably.

The public names below are the library API; the ``tooltune`` command is a thin layer over them.
"""

from tooltune.errors import (
    ArgumentError,
    CatalogError,
    ConfigError,
    DataError,
    DiscoveryError,
    DiscoveryTimeout,
    DocumentError,
    FormatError,
    SchemaError,
    TemplateError,
    TooltuneError,
)
from tooltune.formats.base import CallFormat, ParseKind, ParseResult, format_names, get_format
from tooltune.formats.chat import call_format_for, render_chat
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool, ToolAnnotations, ToolCatalog
from tooltune.tools.diff import CatalogDiff, Change, ChangeKind, Rating, diff
from tooltune.tools.discover import discover, discover_file, discover_mcp_http, discover_mcp_stdio, discover_openapi
from tooltune.tools.validate import argument_problems, validate_call

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "CallFormat",
    "CatalogDiff",
    "CatalogError",
    "Change",
    "ChangeKind",
    "ConfigError",
    "DataError",
    "DiscoveryError",
    "DiscoveryTimeout",
    "DocumentError",
    "FormatError",
    "ParseKind",
    "ParseResult",
    "Rating",
    "SchemaError",
    "TemplateError",
    "Tool",
    "ToolAnnotations",
    "ToolCall",
    "ToolCatalog",
    "TooltuneError",
    "argument_problems",
    "call_format_for",
    "diff",
    "discover",
    "discover_file",
    "discover_mcp_http",
    "discover_mcp_stdio",
    "discover_openapi",
    "format_names",
    "get_format",
    "render_chat",
    "validate_call",
]
