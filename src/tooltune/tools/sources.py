"""Where a service's tools come from: one typed source (as for ``tools discover``), the
``KIND:TARGET`` text form the command line takes, and discovery of several sources at once.

The pipeline discovers its ``services`` with it; ``tooltune serve --watch`` and ``tooltune
models check`` re-discover the same sources to see whether the live tools still match the ones
a deployed model was trained on.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tooltune.errors import ConfigError
from tooltune.tools.catalog import ToolCatalog

_KINDS = ("mcp-stdio", "mcp-http", "openapi", "file")


class ServiceSource(BaseModel):
    """One tool source; exactly one of the four fields is set (as for ``tools discover``)."""

    model_config = ConfigDict(extra="forbid")

    mcp_stdio: str | None = Field(None, description="Command line that starts an MCP server over stdio.")
    mcp_http: str | None = Field(None, description="URL of an MCP server speaking streamable HTTP.")
    openapi: Path | None = Field(None, description="OpenAPI 3 document.")
    file: Path | None = Field(None, description="JSON/YAML file of tools.")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for an MCP server.")

    @model_validator(mode="after")
    def _one_source(self) -> ServiceSource:
        given = [k for k in ("mcp_stdio", "mcp_http", "openapi", "file") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of mcp_stdio, mcp_http, openapi, file; got {', '.join(given) or 'none'}")
        return self

    def describe(self) -> str:
        kind = next(k for k in ("mcp_stdio", "mcp_http", "openapi", "file") if getattr(self, k))
        return f"{kind.replace('_', '-')}:{getattr(self, kind)}"


def parse_source(text: str) -> ServiceSource:
    """``mcp-http:URL``, ``mcp-stdio:COMMAND``, ``openapi:PATH`` or ``file:PATH`` → a source."""
    kind, sep, target = text.partition(":")
    if not sep or kind not in _KINDS or not target.strip():
        raise ConfigError(f"--watch {text!r}: expected KIND:TARGET with KIND one of {', '.join(_KINDS)}, e.g. "
                          "mcp-http:http://127.0.0.1:8765/mcp or 'mcp-stdio:tooltune demo-server --service shop'.")
    return ServiceSource(**{kind.replace("-", "_"): target.strip()})


def discover_sources(sources: list[ServiceSource]) -> ToolCatalog:
    """Every source discovered and merged into one catalog (tools keep their ``service``)."""
    from tooltune.tools.discover import discover

    catalog = ToolCatalog()
    for source in sources:
        catalog = catalog.merge(discover(**source.model_dump()))
    return catalog
