"""How the demo services declare their tools: annotation presets, a ``@tool`` marker and registration.

A service is a plain class whose public methods are its tools. ``@tool`` records the title and
MCP annotations next to the method, and ``register`` adds every marked method of an instance
to an ``MCPServer``, in the order the class defines them (that order is the listing order).
The method's docstring is the tool description and its ``Annotated[..., Field(description=)]``
parameters become the input schema: both are what a model reads, so they carry the units,
formats and ids it needs.
"""

from __future__ import annotations

import inspect

import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import AfterValidator, Field

from tooltune.errors import ConfigError

__all__ = ["READ_ONLY", "ADDITIVE", "IDEMPOTENT_WRITE", "DESTRUCTIVE", "Email", "ToolError", "tool", "register",
           "rename_parameter"]

# All demo state is local SQLite, so no tool reaches an open world.
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ADDITIVE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
IDEMPOTENT_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def _check_email(value: str) -> str:
    # A plain pattern would fail with a regex dump; this names the mistake models actually make
    # (passing a person's name where an address is expected).
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an email address; pass an address such as john.smith@example.com")
    return value.lower()


Email = Annotated[str, AfterValidator(_check_email), Field(json_schema_extra={"format": "email"})]
"""A string parameter that must be an email address; advertised as ``format: email``."""

_F = TypeVar("_F", bound=Callable[..., Any])
_MARK = "__demo_tool__"


def tool(title: str, annotations: ToolAnnotations) -> Callable[[_F], _F]:
    """Mark a service method as an MCP tool with a human title and behaviour hints."""

    def mark(fn: _F) -> _F:
        setattr(fn, _MARK, (title, annotations))
        return fn

    return mark


def register(server: MCPServer, service: object) -> MCPServer:
    """Add every ``@tool`` method of ``service`` to ``server`` and return the server."""
    for name, member in vars(type(service)).items():
        marked = getattr(member, _MARK, None)
        if marked is not None:
            title, annotations = marked
            method = getattr(service, name)
            # cleandoc: the model reads the description, so the docstring's indentation would
            # cost tokens in every prompt and teach nothing.
            server.add_tool(method, title=title, annotations=annotations, description=inspect.cleandoc(method.__doc__ or ""))
    return server


def rename_parameter(server: MCPServer, tool_name: str, old: str, new: str) -> None:
    """Re-register ``tool_name`` with its parameter ``old`` called ``new``: what an API's next
    version does when it renames a field. Calls must use the new name (the old one is refused as
    missing or unknown), and the tool then runs as before. The demo's way to make a breaking
    schema change (``tooltune demo-server --rename-param``) for drift detection."""
    # The SDK has no public getter for a registered tool's function and metadata.
    registered = server._tool_manager.get_tool(tool_name)  # noqa: SLF001
    if registered is None:
        raise ConfigError(f"--rename-param {tool_name}.{old}={new}: the server has no tool {tool_name!r}.")
    signature = inspect.signature(registered.fn, eval_str=True)
    if old not in signature.parameters or new in signature.parameters:
        raise ConfigError(f"--rename-param {tool_name}.{old}={new}: {tool_name} has parameters "
                          f"{', '.join(signature.parameters)}; name an existing one and a new name.")
    original = registered.fn

    def renamed(**arguments: Any) -> Any:
        if new in arguments:
            arguments[old] = arguments.pop(new)
        return original(**arguments)

    renamed.__name__, renamed.__doc__ = original.__name__, original.__doc__
    renamed.__signature__ = signature.replace(  # type: ignore[attr-defined]  # read by the SDK's inspect.signature
        parameters=[p.replace(name=new) if p.name == old else p for p in signature.parameters.values()])
    server.remove_tool(tool_name)
    server.add_tool(renamed, name=tool_name, title=registered.title, description=registered.description,
                    annotations=registered.annotations)
