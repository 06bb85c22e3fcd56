"""The one MCP client against real servers: the demo shop as a stdio subprocess, over HTTP on
127.0.0.1 and in process; tool errors, protocol errors and servers that cannot be reached."""

from __future__ import annotations

import sys
from pathlib import Path

import mcp_types as types
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from tooltune.demo import build_server
from tooltune.errors import DiscoveryError
from tooltune.tools.mcp_client import CallResult, MCPClient, decode_result

pytestmark = pytest.mark.anyio

PY = sys.executable
TOOLTUNE = str(Path(sys.executable).parent / "tooltune")  # the console script of this venv
SERVERS = Path(__file__).parent.parent / "fixtures" / "mcp_servers"
MARIA = {"email": "maria.garcia@example.com"}
needs_cli = pytest.mark.skipif(not Path(TOOLTUNE).exists(), reason="tooltune console script not installed")


async def assert_shop_session(client: MCPClient) -> None:
    """Listing, a call that succeeds, a tool error, arguments the tool rejects, an unknown tool."""
    assert client.server_name == "shop"
    tools = await client.list_tools()
    assert "get_customer_by_email" in {t.name for t in tools} and len(tools) == 8

    found = await client.call_tool("get_customer_by_email", MARIA)
    assert not found.is_error and found.value["customer_id"] == "cus_0002" and found.value["name"] == "Maria Garcia"

    missing = await client.call_tool("get_customer_by_email", {"email": "nobody@example.com"})
    assert missing.is_error and "No customer has the email 'nobody@example.com'" in missing.value

    rejected = await client.call_tool("get_customer_by_email", {})
    assert rejected.is_error and "email" in rejected.value and "Field required" in rejected.value

    unknown = await client.call_tool("no_such_tool", {})
    assert unknown == CallResult("Unknown tool: no_such_tool", is_error=True)


# --- the three ways to reach a server ---------------------------------------------------------


@needs_cli
async def test_stdio_subprocess(tmp_path):
    client = MCPClient.stdio([TOOLTUNE, "demo-server", "--service", "shop", "--data-dir", str(tmp_path)])
    assert client.label == f"MCP server `{TOOLTUNE} demo-server --service shop --data-dir {tmp_path}`"
    async with client:
        await assert_shop_session(client)


@needs_cli
async def test_streamable_http(http_server, tmp_path):
    port = http_server(TOOLTUNE, "demo-server", "--service", "shop", "--data-dir", str(tmp_path), "--http")
    async with MCPClient.http(f"http://127.0.0.1:{port}/mcp", headers={"X-Test": "1"}) as client:
        await assert_shop_session(client)


async def test_in_process_server_object(tmp_path):
    async with MCPClient.in_process(build_server("shop", tmp_path)) as client:
        await assert_shop_session(client)


# --- results: one shape for text, structured content and errors -------------------------------


def _result(*texts: str, structured: dict | None = None, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=t) for t in texts],
                                structured_content=structured, is_error=is_error)


def test_decode_prefers_structured_content_then_json_text_then_text():
    assert decode_result(_result('{"a": 1}', structured={"b": 2})) == CallResult({"b": 2}, is_error=False)
    assert decode_result(_result('{"a": [1, 2]}')) == CallResult({"a": [1, 2]}, is_error=False)
    assert decode_result(_result("plain", "words")) == CallResult("plain words", is_error=False)
    assert decode_result(_result("boom", structured={"b": 2}, is_error=True)) == CallResult("boom", is_error=True)


def test_decode_keeps_json_over_the_parsing_limits_as_text():
    deep = "[" * 100 + "]" * 100  # MAX_DEPTH is 64
    assert decode_result(_result(deep)) == CallResult(deep, is_error=False)


async def test_a_protocol_error_is_an_error_result_not_an_exception():
    server = MCPServer("strict")

    @server.tool()
    def refuse() -> str:
        """Answers every call with a JSON-RPC error."""
        raise MCPError(code=types.INVALID_PARAMS, message="refused by protocol")

    async with MCPClient.in_process(server) as client:
        assert await client.call_tool("refuse", {}) == CallResult("MCPError: refused by protocol", is_error=True)


# --- servers that cannot be reached ------------------------------------------------------------


async def test_a_command_that_does_not_exist_is_named():
    with pytest.raises(DiscoveryError, match=r"MCP server `no-such-mcp-server-xyz --flag`: cannot start it: "
                                             r"command 'no-such-mcp-server-xyz' not found.*PATH"):
        async with MCPClient.stdio("no-such-mcp-server-xyz --flag"):
            pass


async def test_a_server_that_exits_is_named_with_its_stderr():
    with pytest.raises(DiscoveryError) as info:
        async with MCPClient.stdio([PY, str(SERVERS / "exiting_server.py")]):
            pass
    message = str(info.value)
    assert "exiting_server.py" in message and "closed the connection during the initialize handshake" in message
    assert "  | ConfigError: cannot read /nonexistent/exiting-fixture.yaml" in message


async def test_a_url_nobody_listens_on_is_named(unused_port):
    url = f"http://127.0.0.1:{unused_port}/mcp"
    with pytest.raises(DiscoveryError, match=r"cannot connect.*server is running") as info:
        async with MCPClient.http(url, timeout=5):
            pass
    assert f"MCP server at {url}" in str(info.value)


def test_bad_targets_are_refused_before_anything_starts():
    with pytest.raises(DiscoveryError, match="the server command is empty"):
        MCPClient.stdio("  ")
    with pytest.raises(DiscoveryError, match="working directory '/no/such/dir' does not exist"):
        MCPClient.stdio([PY, "-V"], cwd="/no/such/dir")
    with pytest.raises(DiscoveryError, match="not an http"):
        MCPClient.http("localhost:8000/mcp")


async def test_a_client_used_outside_its_session_says_so(tmp_path):
    client = MCPClient.in_process(build_server("shop", tmp_path))
    with pytest.raises(RuntimeError, match=r"MCP server 'shop' \(in process\): not connected; use the client inside"):
        client.server_name
    with pytest.raises(RuntimeError, match="not connected"):  # a bug of the caller, not a failed call
        await client.call_tool("get_customer_by_email", MARIA)
