import json

import pytest

from tooltune.errors import CatalogError, SchemaError
from tooltune.tools.catalog import Tool, ToolCatalog


def test_roundtrip_keeps_schemas_verbatim(tmp_path, shop_catalog_dict):
    catalog = ToolCatalog.from_dict(shop_catalog_dict)
    path = catalog.save(tmp_path / "c.json")
    loaded = ToolCatalog.load(path)
    assert loaded == catalog
    assert loaded.hash == catalog.hash
    saved = json.loads(path.read_text())
    assert saved["tools"][0]["parameters"] == shop_catalog_dict["tools"][0]["parameters"]
    assert saved["hash"] == catalog.hash and saved["tools"][0]["hash"] == catalog.tools[0].hash


def test_hash_changes_with_schema_not_with_service(shop_catalog_dict):
    catalog = ToolCatalog.from_dict(shop_catalog_dict)
    tool = catalog.get("create_payment")
    moved = tool.model_copy(update={"service": "other", "source": "elsewhere"})
    assert moved.hash == tool.hash
    changed = tool.model_copy(update={"parameters": {**tool.parameters, "required": ["amount"]}})
    assert changed.hash != tool.hash
    assert ToolCatalog(tools=[changed, catalog.tools[1]]).hash != catalog.hash


def test_accepts_openai_and_mcp_shapes():
    openai_item = {"type": "function", "function": {"name": "f", "description": "d",
                                                    "parameters": {"type": "object", "properties": {}}}}
    mcp_item = {"name": "g", "description": "e", "inputSchema": {"type": "object", "properties": {"x": {"type": "integer"}}}}
    catalog = ToolCatalog.from_dict([openai_item, mcp_item])
    assert catalog.names == ["f", "g"]
    assert catalog.get("g").properties == {"x": {"type": "integer"}}


def test_missing_parameters_means_no_arguments():
    assert Tool.from_dict({"name": "ping"}).parameters == {"type": "object", "properties": {}}


def test_invalid_schema_names_tool_and_path():
    with pytest.raises(SchemaError, match=r"tools\[0\] \(bad\): invalid JSON Schema at parameters/properties/x"):
        ToolCatalog.from_dict({"tools": [{"name": "bad", "parameters": {"type": "object", "properties": {"x": {"type": 5}}}}]})


def test_required_not_in_properties_says_fix():
    with pytest.raises(SchemaError, match='required lists .unit., which is not in properties. Add it'):
        Tool.from_dict({"name": "w", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["unit"]}})


def test_duplicate_names_rejected(shop_catalog_dict):
    tools = shop_catalog_dict["tools"]
    with pytest.raises(CatalogError, match="appears twice"):
        ToolCatalog.from_dict([tools[0], tools[0]])


def test_load_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"tools": [\n  {"name": "x",}\n]}')
    with pytest.raises(CatalogError, match=r"c\.json:2:16: not valid JSON"):
        ToolCatalog.load(path)


def test_unknown_tool_lists_known(shop_catalog_dict):
    with pytest.raises(CatalogError, match="known tools: create_payment, get_orders"):
        ToolCatalog.from_dict(shop_catalog_dict).get("nope")
