"""An MCP server listing tools no client should accept: an empty name, a schema nested 60
levels deep, an enum of 5,000 values and a remote $ref (tests/security)."""

from __future__ import annotations

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server


def _nested(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


TOOLS = {
    "empty-name": types.Tool(name="", description="No name.", input_schema={"type": "object"}),
    "deep": types.Tool(name="deep", description="Deep.", input_schema=_nested(60)),
    "enum": types.Tool(name="pick", description="Pick one.", input_schema={
        "type": "object", "properties": {"x": {"enum": [f"v{i}" for i in range(5000)]}}}),
    "remote-ref": types.Tool(name="fetch", description="Remote.", input_schema={
        "type": "object", "properties": {"x": {"$ref": "http://169.254.169.254/latest/meta-data"}}}),
}


async def list_tools(ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    import sys

    return types.ListToolsResult(tools=[TOOLS[sys.argv[1]]])


server = Server("hostile-tools", on_list_tools=list_tools)


async def main() -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
