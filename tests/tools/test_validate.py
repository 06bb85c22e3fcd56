import pytest

from tooltune.errors import ArgumentError
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import ToolCatalog
from tooltune.tools.validate import argument_problems, validate_call


@pytest.fixture
def catalog(shop_catalog_dict):
    return ToolCatalog.from_dict(shop_catalog_dict)


def test_valid_call_passes(catalog):
    validate_call(ToolCall("create_payment", {"amount": 5000, "invoice_id": "INV-1", "customer_id": "C1"}), catalog)


def test_type_message_names_tool_and_param(catalog):
    problems = argument_problems(catalog.get("create_payment"), {"amount": "50.00", "invoice_id": "I", "customer_id": "C"})
    assert problems == ['create_payment.amount: expected integer, got "50.00"']


def test_enum_missing_unexpected_and_bounds(catalog):
    problems = argument_problems(catalog.get("get_orders"), {"status": "pending", "limit": 0})
    assert 'get_orders: missing required parameter "fulfillment_state"' in problems
    assert any(p.startswith('get_orders: unexpected parameter "status"; known parameters: fulfillment_state, limit') for p in problems)
    assert any(p.startswith("get_orders.limit: 0 is less than the minimum of 1") for p in problems)
    enum = argument_problems(catalog.get("get_orders"), {"fulfillment_state": "pending"})
    assert enum == ['get_orders.fulfillment_state: expected one of "awaiting_shipment", "shipped", "delivered", "cancelled", got "pending"']


def test_extra_params_allowed_when_asked_or_schema_allows(catalog):
    tool = catalog.get("get_orders")
    assert argument_problems(tool, {"fulfillment_state": "shipped", "x": 1}, allow_extra=True) == []
    open_tool = tool.model_copy(update={"parameters": {**tool.parameters, "additionalProperties": True}})
    assert argument_problems(open_tool, {"fulfillment_state": "shipped", "x": 1}) == []


def test_nested_paths_and_non_object_arguments():
    cat = ToolCatalog.from_dict([{"name": "invite", "parameters": {"type": "object", "properties": {
        "attendees": {"type": "array", "items": {"type": "string", "format": "email"}}}}}])
    assert argument_problems(cat.get("invite"), {"attendees": ["a@b.co", 7]}) == ["invite.attendees[1]: expected string, got 7"]
    assert argument_problems(cat.get("invite"), ["x"]) == ['invite: arguments must be an object, got ["x"]']


def test_validate_call_raises_with_all_problems(catalog):
    with pytest.raises(ArgumentError) as e:
        validate_call(ToolCall("create_payment", {"amount": 12.5}), catalog)
    assert "create_payment.amount: expected integer, got 12.5" in e.value.problems
    assert any("missing required parameter" in p for p in e.value.problems)
    with pytest.raises(ArgumentError, match="no such tool"):
        validate_call(ToolCall("pay", {}), catalog)
