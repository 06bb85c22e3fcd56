"""Shared by the demo-service tests: the anyio backend and one-line tool calls that must
succeed (``ok``) or fail with a tool error (``error``)."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def ok(client: Client, tool: str, **arguments: Any) -> Any:
    """Call a tool that must succeed and return its structured result."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool}({arguments}) failed: {result.content[0].text}"
    return result.structured_content


async def error(client: Client, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail with a tool error and return the message."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool}({arguments}) unexpectedly succeeded: {result.structured_content}"
    return result.content[0].text
