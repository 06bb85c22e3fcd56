import json
from pathlib import Path

import pytest

import tooltune
from tooltune.data.curated import load_curated
from tooltune.data.examples import Behavior, Quality, Source
from tooltune.data.quarantine import QuarantineRecord, read_quarantine, replace_quarantine, write_quarantine
from tooltune.errors import DataError
from tooltune.tools.catalog import ToolCatalog

FIXTURES = Path(__file__).parents[1] / "fixtures"
SHIPPED = Path(tooltune.__file__).parent / "demo" / "curated" / "shop.yaml"
CORRUPT = FIXTURES / "curated" / "shop_corrupt.yaml"


@pytest.fixture(scope="module")
def catalog() -> ToolCatalog:
    return ToolCatalog.load(FIXTURES / "catalogs" / "shop.json")


@pytest.fixture(scope="module")
def shipped(catalog):
    return load_curated(SHIPPED, catalog)


def line_of(path: Path, text: str) -> int:
    """1-based line of the first line containing ``text``: keeps tests independent of edits above it."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def write(tmp_path: Path, text: str, name: str = "shop.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- the shipped shop file


def test_shipped_shop_file_loads_without_quarantine(shipped, catalog):
    assert shipped.quarantine == []
    assert shipped.service == "shop"
    assert len(shipped.examples) >= 25
    called = {c.name for e in shipped.examples for c in e.calls}
    assert called == set(catalog.names)  # every shop tool has examples
    assert all(e.provenance.source is Source.CURATED and e.provenance.quality is Quality.HIGH for e in shipped.examples)
    assert all(e.provenance.catalog_hash == catalog.hash for e in shipped.examples)
    assert shipped.vocabulary.is_cents("create_payment", "amount")


def test_shipped_has_sequence_clarify_ask_and_no_call(shipped):
    by_query = {e.user_text: e for e in shipped.examples}
    john = by_query["Process payment for John Smith's order"]
    assert john.behavior is Behavior.SEQUENCE
    assert [c.name for c in john.calls] == ["get_customer_by_name", "get_latest_order", "create_payment"]
    assert john.calls[2].arguments["amount"] == "{prev.total_cents}"
    assert john.calls[2].arguments["customer_id"] == "{steps[0].customer_id}"

    usual = by_query["Pay the invoice inv_1043 for cus_0001, the usual amount"]
    assert usual.behavior is Behavior.CLARIFY and usual.clarify.missing == ["amount"]
    ask = by_query["Create a payment"]
    assert ask.behavior is Behavior.CLARIFY and ask.meta["action"] == "ask_for_details"
    assert set(ask.clarify.missing) == {"amount", "invoice_id", "customer_id"}
    assert sum(e.behavior is Behavior.NO_CALL for e in shipped.examples) >= 3


def test_shipped_amounts_in_cents_and_vocabulary(shipped):
    by_query = {e.user_text: e for e in shipped.examples}
    assert by_query["Take a payment of $12.50 from cus_0013 against inv_1027"].calls[0].arguments["amount"] == 1250
    euro = by_query["Charge cus_0002 €30 towards inv_1006"].calls[0].arguments
    assert euro["amount"] == 3000 and euro["currency"] == "EUR"
    assert by_query["Show me all pending orders"].calls[0].arguments == {"fulfillment_state": "awaiting_shipment"}
    assert by_query["Which orders are on their way right now?"].calls[0].arguments["fulfillment_state"] == "shipped"


def test_offered_tools_are_the_whole_service_in_catalog_order(shipped, catalog):
    assert all(e.tools == catalog.names for e in shipped.examples)


def test_common_mistakes_become_full_negative_calls(shipped):
    first = next(e for e in shipped.examples if e.user_text == "Charge customer cus_0001 $50 for invoice inv_1043")
    assert first.meta["negatives"][0] == {
        "name": "create_payment", "arguments": {"amount": 50, "invoice_id": "inv_1043", "customer_id": "cus_0001"},
        "reason": "dollars instead of cents"}
    assert first.meta["explanation"].startswith("amount is in cents")
    assert first.provenance.origin == f"{SHIPPED}:{line_of(SHIPPED, first.user_text)}"
    with_mistakes = [e for e in shipped.examples if e.meta.get("negatives")]
    assert len(with_mistakes) > len(shipped.examples) / 2


def test_multi_turn_messages_are_kept(shipped):
    multi = [e for e in shipped.examples if len(e.messages) > 1 and e.calls]
    assert multi and multi[0].messages[-1]["role"] == "user"
    assert multi[0].calls[0].arguments["amount"] == 7525


# ---------------------------------------------------------------- the corrupt fixture


@pytest.fixture(scope="module")
def corrupt(catalog):
    return load_curated(CORRUPT, catalog)


def reasons_of(load, text: str) -> list[str]:
    """Reasons of the quarantined record whose raw entry mentions ``text``."""
    hits = [q.reason for q in load.quarantine if text in json.dumps(q.record, ensure_ascii=False)]
    assert len(hits) == 1, f"expected one quarantined record containing {text!r}, got {len(hits)}"
    return hits[0]


def test_corrupt_file_keeps_good_entries(corrupt):
    assert sorted(e.user_text for e in corrupt.examples) == [
        "Charge customer cus_0001 $50 for invoice inv_1043", "Create a payment", "Which orders are on their way?"]
    assert len(corrupt.quarantine) == 9
    for q in corrupt.quarantine:
        assert q.source.startswith(f"{CORRUPT}:") and q.reason
        assert all(r.startswith(f"{CORRUPT}:") for r in q.reason)


def test_corrupt_unknown_tool(corrupt):
    (reason,) = reasons_of(corrupt, "create_paymnt")
    assert reason.startswith(f"{CORRUPT}:{line_of(CORRUPT, 'create_paymnt')}: training_examples[1]: ")
    assert "did you mean 'create_payment'" in reason


def test_corrupt_dollars_as_string_points_at_the_parameter_line(corrupt):
    (reason,) = reasons_of(corrupt, '"50.00"')
    line = line_of(CORRUPT, 'amount: "50.00"')
    assert reason == (f"{CORRUPT}:{line}: training_examples[2]: "
                      'create_payment.amount: expected integer, got "50.00". Write amounts in cents as an integer (5000).')


def test_corrupt_dollars_as_integer_is_caught_from_the_request(corrupt):
    (reason,) = reasons_of(corrupt, "Refund $20 of payment pay_0003")
    assert "refund_payment.amount: 20 is the amount in major units" in reason and "(2000)" in reason


def test_corrupt_references(corrupt):
    reasons = reasons_of(corrupt, "{prev invoice_id}")
    assert len(reasons) == 2
    assert reasons[0].startswith(f"{CORRUPT}:{line_of(CORRUPT, '{steps[1].customer_id}')}:")
    assert "step 1 has not finished" in reasons[0]
    assert reasons[1].startswith(f"{CORRUPT}:{line_of(CORRUPT, '{prev invoice_id}')}:")
    assert "malformed reference {prev invoice_id}" in reasons[1]


def test_corrupt_unknown_required_field(corrupt):
    (reason,) = reasons_of(corrupt, "amout")
    assert reason.startswith(f"{CORRUPT}:{line_of(CORRUPT, '[amout]')}: edge_cases[0]: required_field 'amout'")


def test_corrupt_missing_user_query_and_vocabulary_hint(corrupt):
    missing = next(q for q in corrupt.quarantine if "user_query" not in q.record and isinstance(q.record, dict)
                   and "scenario" not in q.record)
    assert missing.source == f"{CORRUPT}:{line_of(CORRUPT, '- correct_tool: get_orders')}"
    assert "user_query is missing" in missing.reason[0]
    (pending,) = reasons_of(corrupt, "Show me the pending orders")
    assert "Use 'awaiting_shipment': the domain vocabulary maps 'pending' to it." in pending


def test_corrupt_typo_key_and_non_mapping(corrupt):
    (typo,) = reasons_of(corrupt, "correct_parameter\"")
    assert "unknown key 'correct_parameter'" in typo
    (string,) = reasons_of(corrupt, "just a string")
    assert "expected a mapping" in string


def test_quarantine_file_round_trip(corrupt, tmp_path):
    path = tmp_path / "out" / "quarantine.jsonl"
    assert write_quarantine(corrupt.quarantine, path) == 9
    write_quarantine([{"source": "x.jsonl:1", "reason": ["bad"], "record": "raw"}], path)  # appends
    back = read_quarantine(path)
    assert len(back) == 10 and back[-1] == QuarantineRecord(source="x.jsonl:1", reason=["bad"], record="raw")
    assert back[0].record == json.loads(json.dumps(corrupt.quarantine[0].record))


def test_a_commands_quarantine_file_holds_only_its_last_run(corrupt, tmp_path):
    path = tmp_path / "examples.quarantine.jsonl"
    replace_quarantine(corrupt.quarantine, path)
    assert replace_quarantine(corrupt.quarantine[:2], path) == path
    back = read_quarantine(path)  # the rerun's two records, not appended to the first run's nine
    assert [r.source for r in back] == [r.source for r in corrupt.quarantine[:2]]


# ---------------------------------------------------------------- other keys and formats


def test_json_file_errors_use_json_pointers(catalog, tmp_path):
    path = write(tmp_path, json.dumps({"service": "shop", "training_examples": [
        {"user_query": "Show failed payments", "correct_tool": "list_payments", "correct_parameters": {"state": "failed"}},
        {"user_query": "Charge cus_0001 $50 for inv_1043", "correct_tool": "create_payment",
         "correct_parameters": {"amount": "50.00", "invoice_id": "inv_1043", "customer_id": "cus_0001"}},
    ]}), "shop.json")
    load = load_curated(path, catalog)
    assert len(load.examples) == 1 and load.examples[0].provenance.origin == f"{path}#/training_examples/0"
    (q,) = load.quarantine
    assert q.source == f"{path}#/training_examples/1"
    assert q.reason[0].startswith(f"{path}#/training_examples/1/correct_parameters/amount: ")


def test_no_call_alternatives_optional_and_parallel(catalog, tmp_path):
    path = write(tmp_path, """
service: shop
training_examples:
  - user_query: "Tell me a joke"
    correct_tool: null
  - user_query: "Find Lukas Müller"
    correct_tool: get_customer_by_name
    correct_parameters: {name: Lukas Müller}
    alternatives: {name: [Lukas Muller, 5]}
  - user_query: "Status of pay_0001 and pay_0002"
    correct_calls:
      - {tool: get_payment_status, parameters: {payment_id: pay_0001}}
      - {tool: get_payment_status, parameters: {payment_id: "{prev.payment_id}"}}
  - user_query: "Show failed payments"
    correct_tool: list_payments
    correct_parameters: {state: failed}
    optional: [state, colour]
""")
    load = load_curated(path, catalog)
    assert [e.behavior for e in load.examples] == [Behavior.NO_CALL]
    reasons = [r for q in load.quarantine for r in q.reason]
    assert any("alternative 1: get_customer_by_name.name: expected string, got 5" in r for r in reasons)
    assert any("reference {prev.payment_id} outside a sequence" in r for r in reasons)
    assert any("optional lists 'state', which the schema requires" in r for r in reasons)
    assert any("optional names 'colour', which is not a parameter" in r for r in reasons)


def test_file_level_problems_raise_with_location(catalog, tmp_path):
    with pytest.raises(DataError, match=r"shop.yaml:3:\d+: not valid YAML: mapping values are not allowed here"):
        load_curated(write(tmp_path, "service: shop\ntraining_examples:\n  - user_query: Charge: $50\n"), catalog)
    with pytest.raises(DataError, match=r"shop.yaml:2: unknown top-level key 'training_example'"):
        load_curated(write(tmp_path, "service: shop\ntraining_example: []\n"), catalog)
    with pytest.raises(DataError, match=r"shop.yaml:4: terms\[0\].value 'pending' is not allowed"):
        load_curated(write(tmp_path, "domain_vocabulary:\n  terms:\n    - {says: [pending], param: get_orders.fulfillment_state,\n       value: pending}\n"), catalog)
    with pytest.raises(DataError, match="no such file"):
        load_curated(tmp_path / "missing.yaml", catalog)
