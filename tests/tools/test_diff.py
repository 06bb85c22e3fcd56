import copy

from tooltune.tools.catalog import ToolCatalog
from tooltune.tools.diff import ChangeKind, Rating, diff


def _edit(base: dict, fn) -> ToolCatalog:
    data = copy.deepcopy(base)
    fn(data["tools"])
    return ToolCatalog.from_dict(data)


def kinds(d):
    return [(c.kind, c.tool, c.param, c.rating) for c in d.changes]


def test_identical_catalogs_have_no_changes(shop_catalog_dict):
    c = ToolCatalog.from_dict(shop_catalog_dict)
    d = diff(c, c)
    assert d.changes == [] and d.rating is Rating.NONE and not d.breaking


def test_rename_detected_and_breaking(shop_catalog_dict):
    old = ToolCatalog.from_dict(shop_catalog_dict)

    def rename(tools):
        props = tools[0]["parameters"]["properties"]
        props["amount_in_cents"] = props.pop("amount")
        tools[0]["parameters"]["required"] = ["amount_in_cents", "invoice_id", "customer_id"]

    d = diff(old, _edit(shop_catalog_dict, rename))
    assert kinds(d) == [(ChangeKind.PARAM_RENAMED, "create_payment", "amount", Rating.BREAKING)]
    assert d.changes[0].new_param == "amount_in_cents"
    assert d.breaking


def test_added_params_rated_by_requiredness(shop_catalog_dict):
    def add(tools):
        tools[1]["parameters"]["properties"]["customer_id"] = {"type": "string", "description": "filter"}
        tools[0]["parameters"]["properties"]["note"] = {"type": "string", "description": "memo"}
        tools[0]["parameters"]["required"].append("note")

    d = diff(ToolCatalog.from_dict(shop_catalog_dict), _edit(shop_catalog_dict, add))
    assert set(kinds(d)) == {
        (ChangeKind.PARAM_ADDED_REQUIRED, "create_payment", "note", Rating.BREAKING),
        (ChangeKind.PARAM_ADDED_OPTIONAL, "get_orders", "customer_id", Rating.MINOR),
    }


def test_type_enum_and_tool_changes(shop_catalog_dict):
    def change(tools):
        tools[0]["parameters"]["properties"]["amount"]["type"] = "number"
        tools[0]["parameters"]["properties"]["currency"]["enum"] = ["USD", "EUR", "GBP"]
        tools[1]["parameters"]["properties"]["fulfillment_state"]["enum"].remove("cancelled")
        tools[1]["description"] = "List orders."
        tools.append({"name": "ping", "description": "health"})

    old = ToolCatalog.from_dict(shop_catalog_dict)
    d = diff(old, _edit(shop_catalog_dict, change))
    got = {(k.value, t, p): r for k, t, p, r in kinds(d)}
    assert got == {
        ("param_type_changed", "create_payment", "amount"): Rating.BREAKING,
        ("param_enum_changed", "create_payment", "currency"): Rating.MINOR,
        ("param_enum_changed", "get_orders", "fulfillment_state"): Rating.BREAKING,
        ("tool_description_changed", "get_orders", None): Rating.PATCH,
        ("tool_added", "ping", None): Rating.MINOR,
    }
    removed = diff(_edit(shop_catalog_dict, change), old)
    assert (ChangeKind.TOOL_REMOVED, "ping", None, Rating.BREAKING) in kinds(removed)


def test_removed_param_and_requiredness_flip(shop_catalog_dict):
    def change(tools):
        del tools[0]["parameters"]["properties"]["currency"]
        tools[1]["parameters"]["required"] = []

    d = diff(ToolCatalog.from_dict(shop_catalog_dict), _edit(shop_catalog_dict, change))
    assert set(kinds(d)) == {
        (ChangeKind.PARAM_REMOVED, "create_payment", "currency", Rating.BREAKING),
        (ChangeKind.PARAM_MADE_OPTIONAL, "get_orders", "fulfillment_state", Rating.MINOR),
    }


def test_ambiguous_lookalikes_are_not_guessed_as_renames(shop_catalog_dict):
    def change(tools):
        props = tools[0]["parameters"]["properties"]
        props["a"] = {"type": "string"}
        props["b"] = {"type": "string"}
        del props["invoice_id"], props["customer_id"]
        tools[0]["parameters"]["required"] = ["amount"]
        props.update({"x": {"type": "string"}, "y": {"type": "string"}})

    old_data = copy.deepcopy(shop_catalog_dict)
    old_data["tools"][0]["parameters"]["properties"].update({"a": {"type": "string"}, "b": {"type": "string"}})
    old = ToolCatalog.from_dict(old_data)
    new = _edit(shop_catalog_dict, change)
    assert not any(c.kind is ChangeKind.PARAM_RENAMED and c.param in ("a", "b") for c in diff(old, new).changes)
