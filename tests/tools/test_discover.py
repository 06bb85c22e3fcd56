"""Tool discovery against real subprocess MCP servers (stdio and HTTP), OpenAPI documents and tool files."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from tooltune.errors import CatalogError, DiscoveryError, DiscoveryTimeout, SchemaError
from tooltune.tools.discover import (
    STDIO_SHUTDOWN_BOUND_S,
    discover,
    discover_file,
    discover_mcp_http,
    discover_mcp_stdio,
    discover_openapi,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
SERVERS = FIXTURES / "mcp_servers"
PY = sys.executable
TOOLTUNE = str(Path(sys.executable).parent / "tooltune")  # the console script of this venv
SHOP_TOOLS = {
    "create_payment",
    "refund_payment",
    "get_payment_status",
    "list_payments",
    "get_customer_by_email",
    "get_customer_by_name",
    "get_latest_order",
    "get_orders",
}


# --- helpers (the http_server and unused_port fixtures are in conftest.py) -------------------


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# --- MCP over stdio ---------------------------------------------------------------------------


def test_stdio_follows_every_page_and_maps_annotations():
    catalog = discover_mcp_stdio([PY, str(SERVERS / "paged_server.py")], timeout=20)

    assert catalog.names == ["get_weather", "add", "negate", "delete_file", "square", "ping", "sqrt"]
    assert catalog.services == ["paged-fixture"]  # serverInfo.name
    weather = catalog.get("get_weather")
    assert weather.parameters["required"] == ["city"]
    assert weather.annotations.title == "Weather"
    assert weather.annotations.read_only_hint is True
    assert weather.annotations.open_world_hint is True
    assert catalog.get("delete_file").annotations.destructive_hint is True
    assert catalog.get("ping").parameters == {"type": "object"}
    assert weather.source.startswith("mcp-stdio:") and "paged_server.py" in weather.source


def test_stdio_service_override_and_string_command():
    command = f"{PY} {SERVERS / 'paged_server.py'}"
    assert discover(mcp_stdio=command, service="calc", timeout=20).services == ["calc"]


def test_stdio_hanging_in_initialize_times_out_and_kills_the_server(tmp_path):
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(DiscoveryTimeout) as info:
        discover_mcp_stdio(
            [PY, str(SERVERS / "hanging_server.py"), "initialize"],
            timeout=2,
            env={"HANGING_SERVER_PIDFILE": str(pidfile)},
        )
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "hanging_server.py initialize" in message
    assert "initialize" in message and "within 2 s" in message and "--timeout" in message
    assert_gone(int(pidfile.read_text()))


def test_stdio_hanging_in_list_tools_names_that_step(tmp_path):
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(DiscoveryTimeout, match=r"did not answer tools/list within 2 s") as info:
        discover_mcp_stdio(
            [PY, str(SERVERS / "hanging_server.py"), "list"], timeout=2, env={"HANGING_SERVER_PIDFILE": str(pidfile)}
        )
    assert time.monotonic() - started < 10
    assert "--timeout" in str(info.value)
    assert_gone(int(pidfile.read_text()))


def test_stdio_server_ignoring_sigterm_is_still_killed_in_bounded_time(tmp_path):
    # Worst case for cleanup: stdin EOF and SIGTERM are both ignored, only SIGKILL works.
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(DiscoveryTimeout):
        discover_mcp_stdio(
            [PY, str(SERVERS / "hanging_server.py"), "stubborn"],
            timeout=1,
            env={"HANGING_SERVER_PIDFILE": str(pidfile)},
        )
    assert time.monotonic() - started < 1 + STDIO_SHUTDOWN_BOUND_S + 2  # timeout + bounded shutdown + slack
    assert_gone(int(pidfile.read_text()))


def test_stdio_exiting_server_reports_its_stderr_tail():
    with pytest.raises(DiscoveryError) as info:
        discover_mcp_stdio([PY, str(SERVERS / "exiting_server.py")], timeout=10)
    message = str(info.value)
    assert "exiting_server.py" in message
    assert "closed the connection" in message
    assert "cannot read /nonexistent/exiting-fixture.yaml" in message  # the stderr tail


def test_stdio_bad_schema_names_server_and_tool():
    with pytest.raises(SchemaError) as info:
        discover_mcp_stdio([PY, str(SERVERS / "bad_schema_server.py")], timeout=20)
    message = str(info.value)
    assert "bad_schema_server.py" in message
    assert "schedule_meeting" in message
    assert "properties/when/type" in message


def test_stdio_command_not_found():
    with pytest.raises(DiscoveryError, match=r"command 'no-such-mcp-server-xyz' not found.*PATH"):
        discover_mcp_stdio("no-such-mcp-server-xyz --flag", timeout=5)


def test_stdio_rejects_bad_arguments_before_starting_anything():
    with pytest.raises(DiscoveryError, match="empty"):
        discover_mcp_stdio("  ", timeout=5)
    with pytest.raises(DiscoveryError, match="--timeout must be a positive"):
        discover_mcp_stdio([PY, "-V"], timeout=0)
    with pytest.raises(DiscoveryError, match="does not exist"):
        discover_mcp_stdio([PY, "-V"], cwd="/no/such/dir", timeout=5)


# --- MCP over streamable HTTP -----------------------------------------------------------------


def test_http_discovers_every_page(http_server):
    port = http_server(PY, str(SERVERS / "paged_server.py"), "--http")
    url = f"http://127.0.0.1:{port}/mcp"
    catalog = discover_mcp_http(url, timeout=20, headers={"X-Test": "1"})
    assert len(catalog) == 7
    assert catalog.services == ["paged-fixture"]
    assert catalog.get("sqrt").source == f"mcp-http: {url}"
    with pytest.raises(DiscoveryError, match=r"error -32601: Not Found.*usually /mcp"):
        discover_mcp_http(f"http://127.0.0.1:{port}/wrong", timeout=5)


def test_http_connection_refused_names_the_url(unused_port):
    url = f"http://127.0.0.1:{unused_port}/mcp"
    with pytest.raises(DiscoveryError, match=r"cannot connect.*server is running") as info:
        discover_mcp_http(url, timeout=5)
    assert url in str(info.value)


def test_http_server_that_never_answers_times_out():
    # A listening socket nobody accepts from: TCP connects, no HTTP answer ever comes.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/mcp"
        started = time.monotonic()
        with pytest.raises(DiscoveryTimeout, match=r"did not answer the initialize handshake within 1 s"):
            discover_mcp_http(url, timeout=1)
        assert time.monotonic() - started < 5


def test_http_rejects_non_http_url():
    with pytest.raises(DiscoveryError, match="not an http"):
        discover_mcp_http("localhost:8000/mcp")


# --- the demo shop service, discovered like a user would ---------------------------------------

needs_cli = pytest.mark.skipif(not Path(TOOLTUNE).exists(), reason="tooltune console script not installed")


def assert_shop(catalog) -> None:
    assert set(catalog.names) == SHOP_TOOLS
    assert catalog.get("create_payment").properties["amount"]["type"] == "integer"


@needs_cli
def test_demo_shop_over_stdio(tmp_path):
    catalog = discover_mcp_stdio(
        [TOOLTUNE, "demo-server", "--service", "shop", "--data-dir", str(tmp_path)], timeout=20
    )
    assert_shop(catalog)


@needs_cli
def test_demo_shop_over_http(http_server, tmp_path):
    port = http_server(TOOLTUNE, "demo-server", "--service", "shop", "--data-dir", str(tmp_path), "--http")
    assert_shop(discover_mcp_http(f"http://127.0.0.1:{port}/mcp", timeout=20))


# --- OpenAPI ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def petstore():
    return discover_openapi(FIXTURES / "openapi" / "petstore.yaml")


def test_openapi_one_tool_per_operation_in_document_order(petstore):
    assert petstore.names == ["listPets", "createPet", "get_pets_petId", "deletePet", "replacePet", "createCategory"]
    assert petstore.services == ["petstore"]  # info.title


def test_openapi_parameters_merge_ref_query_header_and_keep_schemas(petstore):
    params = petstore.get("listPets").parameters
    assert params["properties"]["limit"] == {
        "type": "integer",
        "maximum": 100,
        "description": "How many items to return at one time (max 100).",
    }
    assert params["properties"]["X-Request-Id"] == {"type": "string", "format": "uuid"}
    assert params["required"] == ["limit"]


def test_openapi_body_properties_with_collision_prefix(petstore):
    tool = petstore.get("createPet")
    props = tool.parameters["properties"]
    assert list(props) == ["name", "body_name", "born", "tag", "owner"]
    assert tool.required == ["body_name"]  # the body is required and lists "name"
    assert props["tag"] == {"type": "string", "enum": ["dog", "cat", "bird"]}  # $ref inlined
    assert props["born"]["example"] == "2020-01-31"  # a string, not a YAML date
    assert props["owner"]["nullable"] is True  # OpenAPI 3.0 keyword kept verbatim
    assert tool.description == "Create a pet\n\nAdds a pet to the store."


def test_openapi_path_level_params_slug_names_and_annotations(petstore):
    get = petstore.get("get_pets_petId")  # no operationId
    assert get.required == ["petId"]
    assert get.annotations.read_only_hint is True
    delete = petstore.get("deletePet")
    assert delete.annotations.destructive_hint is True
    assert delete.annotations.read_only_hint is False
    assert petstore.get("createPet").annotations.destructive_hint is None
    replace = petstore.get("replacePet")
    assert replace.properties["body"]["type"] == "array"  # a non-object body goes in whole
    assert replace.required == ["petId"]  # requestBody.required defaults to false
    assert replace.description == "PUT /pets/{petId}"


def test_openapi_recursive_ref_becomes_defs(petstore):
    params = petstore.get("createCategory").parameters
    assert params["properties"]["children"]["items"] == {"$ref": "#/$defs/Category"}
    assert params["$defs"]["Category"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Category"}


def test_openapi_errors_name_file_and_operation_pointer(tmp_path):
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {"/a/{id}": {"post": {"operationId": "a", "parameters": [{"$ref": "#/components/parameters/Nope"}]}}},
    }
    path = tmp_path / "api.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DiscoveryError) as info:
        discover_openapi(path)
    assert f"{path}#/paths/~1a~1{{id}}/post" in str(info.value)
    assert "#/components/parameters/Nope" in str(info.value)


def test_openapi_rejects_swagger_2_and_external_refs():
    with pytest.raises(DiscoveryError, match="Swagger 2.0"):
        discover_openapi({"swagger": "2.0", "paths": {}})
    doc = {"openapi": "3.0.0", "paths": {"/x": {"get": {"parameters": [{"$ref": "common.yaml#/P"}]}}}}
    with pytest.raises(DiscoveryError, match=r"#/paths/~1x/get.*points outside this document"):
        discover_openapi(doc)


# --- tool files -------------------------------------------------------------------------------


def test_file_openai_format():
    catalog = discover_file(FIXTURES / "tools" / "openai_tools.json")
    assert catalog.names == ["get_weather", "get_time"]
    assert catalog.get("get_weather").required == ["city"]
    assert catalog.services == ["openai_tools"]  # file stem


def test_file_mcp_tools_list_shape_maps_camel_case_hints():
    catalog = discover_file(FIXTURES / "tools" / "mcp_tools_list.json", service="issues")
    search = catalog.get("search_issues")
    assert search.parameters["properties"]["limit"] == {"type": "integer", "minimum": 1}
    assert search.annotations.read_only_hint is True and search.annotations.open_world_hint is False
    assert catalog.get("close_issue").annotations.idempotent_hint is True
    assert catalog.services == ["issues"]


def test_file_tooltune_yaml_keeps_own_service(tmp_path):
    catalog = discover_file(FIXTURES / "tools" / "catalog.yaml")
    assert catalog.get("book_room").service == "office"
    assert catalog.get("list_rooms").service == "catalog"
    assert catalog.get("book_room").properties["date"]["example"] == "2024-05-01"
    # a saved catalog reads back unchanged
    saved = catalog.save(tmp_path / "out.json")
    assert discover_file(saved).to_dict() == catalog.to_dict()


def test_file_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "tools.yaml"
    path.write_text("tools:\n  - name: a\n    description: [unclosed\n  - name: b\n")
    with pytest.raises(DiscoveryError, match=rf"{path}:\d+:\d+: not valid YAML"):
        discover_file(path)


def test_file_bad_json_names_the_line(tmp_path):
    path = tmp_path / "tools.json"
    path.write_text('[\n  {"name": "a"},\n  {"name": }\n]\n')
    with pytest.raises(DiscoveryError, match=rf"{path}:3:\d+: not valid JSON"):
        discover_file(path)


def test_file_bad_tool_names_its_index(tmp_path):
    path = tmp_path / "tools.json"
    path.write_text(json.dumps([{"name": "ok"}, {"description": "no name"}]))
    with pytest.raises(CatalogError, match=r"tools\.json: tools\[1\]: has no \"name\""):
        discover_file(path)
    path.write_text(json.dumps({"tools": [{"name": "a"}, {"name": "a"}]}))
    with pytest.raises(CatalogError, match=r"tools\.json: tool name 'a' appears twice"):
        discover_file(path)


def test_file_missing_or_wrong_shape(tmp_path):
    with pytest.raises(DiscoveryError, match="no such file"):
        discover_file(tmp_path / "nope.json")
    path = tmp_path / "api.yaml"
    path.write_text("openapi: 3.0.0\npaths: {}\n")
    with pytest.raises(DiscoveryError, match="use.*--openapi|with --openapi"):
        discover_file(path)


def test_discover_dispatches_on_the_source_given():
    assert discover(openapi=FIXTURES / "openapi" / "petstore.yaml", service="pets").services == ["pets"]
    assert discover(file=FIXTURES / "tools" / "openai_tools.json").names == ["get_weather", "get_time"]


def test_discover_needs_exactly_one_source():
    with pytest.raises(DiscoveryError, match="exactly one source"):
        discover()
    with pytest.raises(DiscoveryError, match="--openapi, --file"):
        discover(openapi="a.yaml", file="b.json")
