import json
from pathlib import Path

import pytest

from tooltune.data.anonymize import AnonymizerConfig, ExtraPattern
from tooltune.data.examples import Behavior, Quality, Source
from tooltune.data.feedback import ingest_logs, load_corrections
from tooltune.data.quarantine import read_quarantine, write_quarantine
from tooltune.data.vocabulary import DomainVocabulary
from tooltune.errors import DataError
from tooltune.tools.catalog import ToolCatalog

FIXTURES = Path(__file__).parents[1] / "fixtures"
SHOP_TOOLS = ["create_payment", "refund_payment", "get_payment_status", "list_payments",
              "get_customer_by_email", "get_customer_by_name", "get_latest_order", "get_orders"]


@pytest.fixture(scope="module")
def catalog() -> ToolCatalog:
    return ToolCatalog.load(FIXTURES / "catalogs" / "shop.json")


def log(id, query, calls, outcome="success", satisfaction=None, tools=None, **extra):
    return {"id": id, "timestamp": "2025-05-01T10:00:00Z", "messages": [{"role": "user", "content": query}],
            "tools": SHOP_TOOLS if tools is None else tools, "calls": calls, "outcome": outcome,
            "satisfaction": satisfaction, **extra}


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


@pytest.fixture
def logs(tmp_path) -> Path:
    pay = {"name": "create_payment", "arguments": {"amount": 5000, "invoice_id": "inv_1043", "customer_id": "cus_0001"}}
    openai_tools = [{"type": "function", "function": {"name": n}} for n in ("get_customer_by_email", "get_orders", "send_fax")]
    return write_lines(tmp_path / "logs.jsonl", [
        log("ok-1", "Charge cus_0001 $50 for inv_1043", [pay], satisfaction=5),                           # 1 example
        log("ok-2", "Who is maria.garcia@example.com? Call her on +34 612 345 678 if needed",              # 2 example
            [{"name": "get_customer_by_email", "arguments": json.dumps({"email": "maria.garcia@example.com"})}],
            tools=openai_tools),
        log("meh", "Show me pending orders", [{"name": "get_orders", "arguments": {"fulfillment_state": "awaiting_shipment"}}],
            satisfaction=3),                                                                               # 3 review (low)
        log("fail", "Charge cus_0001 $50 for inv_1043", [pay], outcome="failure"),                         # 4 review
        log("bad-args", "Charge cus_0001 $50 for inv_1043",                                               # 5 review
            [{"name": "create_payment", "arguments": {"amount": "50.00", "invoice_id": "inv_1043", "customer_id": "cus_0001"}}]),
        '{"id": "broken", "messages": [ card 4111 1111 1111 1111',                                          # 6 review
        "",
        {"id": "no-outcome", "messages": [{"role": "user", "content": "hi"}]},                              # 8 review
        log("irrelevant", "What's the capital of Australia?", [], satisfaction=4),                         # 9 example
    ])


def test_logs_split_into_examples_and_review(logs, catalog):
    load = ingest_logs(logs, catalog)
    assert [e.provenance.origin for e in load.examples] == ["ok-1", "ok-2", "irrelevant"]
    assert [r.source for r in load.review] == [f"{logs}:{n}" for n in (3, 4, 5, 6, 8)]
    assert all(e.provenance.source is Source.PRODUCTION and e.provenance.quality is Quality.MEDIUM for e in load.examples)
    assert load.examples[0].provenance.created_at.year == 2025
    assert load.examples[2].behavior is Behavior.NO_CALL
    reasons = {r.source.rsplit(":", 1)[1]: " ".join(r.reason) for r in load.review}
    assert "satisfaction 3 is below the threshold 4" in reasons["3"]
    assert "outcome is failure" in reasons["4"]
    assert 'create_payment.amount: expected integer, got "50.00"' in reasons["5"]
    assert reasons["6"].startswith(f"{logs}:6:") and "not valid JSON" in reasons["6"]
    assert "outcome: Field required" in reasons["8"]


def test_min_satisfaction_is_configurable(logs, catalog):
    assert len(ingest_logs(logs, catalog, min_satisfaction=3).examples) == 4
    with pytest.raises(DataError, match="min_satisfaction is 6"):
        ingest_logs(logs, catalog, min_satisfaction=6)


def test_logs_are_anonymized_consistently_and_still_validate(logs, catalog):
    load = ingest_logs(logs, catalog)
    email = load.examples[1]
    assert email.messages[0]["content"] == "Who is user1@example.com? Call her on +1-555-0101 if needed"
    assert email.calls[0].arguments == {"email": "user1@example.com"}  # JSON-string arguments parsed, then scrubbed
    # Offered: logged names in the catalog; the unknown one is listed, not silently lost.
    assert email.tools == ["get_customer_by_email", "get_orders"] and email.meta["unknown_tools"] == ["send_fax"]
    broken = next(r for r in load.review if r.source.endswith(":6"))
    assert "4111" not in broken.record and "<CARD_1>" in broken.record


def test_review_queue_written_to_disk_has_no_personal_data(logs, catalog, tmp_path):
    out = tmp_path / "review.jsonl"
    write_quarantine(ingest_logs(logs, catalog).review, out)
    text = out.read_text()
    assert "maria.garcia@example.com" not in text and "4111 1111" not in text
    assert len(read_quarantine(out)) == 5


def test_calls_to_tools_not_offered_go_to_review(catalog, tmp_path):
    path = write_lines(tmp_path / "logs.jsonl", [
        log("x", "Status of pay_0001?", [{"name": "get_payment_status", "arguments": {"payment_id": "pay_0001"}}],
            tools=["get_orders"]),
        log("y", "Fax it", [{"name": "send_fax", "arguments": {}}]),
    ])
    load = ingest_logs(path, catalog)
    assert load.examples == []
    assert "called 'get_payment_status', which the turn did not offer" in load.review[0].reason[0]
    assert "no tool named 'send_fax'" in " ".join(load.review[1].reason)


CORRECTIONS_YAML = """
- log_id: fail
  user_query: "Charge john.smith@example.com's card $50 for inv_1043"
  wrong_call: {name: create_payment, arguments: {amount: 50, invoice_id: inv_1043, customer_id: john.smith@example.com}}
  right_sequence:
    - {name: get_customer_by_email, arguments: {email: john.smith@example.com}}
    - {name: create_payment, arguments: {amount: 5000, invoice_id: inv_1043, customer_id: "{prev.customer_id}"}}
  explanation: "amount is in cents and customer_id is an id, not an email"
  author: reviewer@corp.io
- user_query: "Pay the usual amount on inv_1043"
  wrong_call: {name: create_payment, arguments: {amount: 5000, invoice_id: inv_1043, customer_id: cus_0001}}
  right_behavior: {action: clarify, question: "How much should I charge?", required_fields: [amount]}
- user_query: "Refund $20 of pay_0003"
  right_call: {name: refund_payment, arguments: {payment_id: pay_0003, amount: 20}}
- user_query: "What's the weather?"
  right_behavior: {action: no_call}
  right_call: {name: get_orders, arguments: {fulfillment_state: shipped}}
"""


def test_corrections_yaml_become_high_quality_examples_with_negatives(catalog, tmp_path):
    path = tmp_path / "corrections.yaml"
    path.write_text(CORRECTIONS_YAML)
    vocabulary = DomainVocabulary(cents=["create_payment.amount", "refund_payment.amount"])
    load = load_corrections(path, catalog, vocabulary=vocabulary)
    assert len(load.examples) == 2 and len(load.review) == 2
    seq, clarify = load.examples
    assert seq.provenance.source is Source.CORRECTION and seq.provenance.quality is Quality.HIGH
    assert seq.provenance.origin == f"{path}:2" and seq.meta["log_id"] == "fail"
    assert seq.behavior is Behavior.SEQUENCE and seq.calls[0].arguments == {"email": "user1@example.com"}
    assert seq.messages[0]["content"] == "Charge user1@example.com's card $50 for inv_1043"
    assert seq.meta["negatives"] == [{"name": "create_payment", "reason": "amount is in cents and customer_id is an id, not an email",
                                      "arguments": {"amount": 50, "invoice_id": "inv_1043", "customer_id": "user1@example.com"}}]
    assert seq.tools == SHOP_TOOLS
    assert clarify.behavior is Behavior.CLARIFY and clarify.clarify.missing == ["amount"]
    assert clarify.meta["negatives"][0]["name"] == "create_payment"
    dollars, both = load.review
    assert dollars.source == f"{path}:13" and "refund_payment.amount: 20 is the amount in major units" in dollars.reason[0]
    assert both.source == f"{path}:15" and "give exactly one of right_call" in both.reason[0]


def test_corrections_jsonl_and_custom_anonymizer(catalog, tmp_path):
    path = write_lines(tmp_path / "corrections.jsonl", [
        {"messages": [{"role": "user", "content": "Show orders for account ACCT-123456 that are on their way"}],
         "wrong_call": {"name": "get_orders", "arguments": {"fulfillment_state": "in_transit"}},
         "right_call": {"name": "get_orders", "arguments": {"fulfillment_state": "shipped"}}},
        "not json",
    ])
    config = AnonymizerConfig(extra_patterns=[ExtraPattern(name="account", regex=r"ACCT-\d{6}")])
    load = load_corrections(path, catalog, anonymizer=config)
    (example,) = load.examples
    assert example.messages[0]["content"] == "Show orders for account <ACCOUNT_1> that are on their way"
    assert example.behavior is Behavior.CALLS and example.meta["negatives"][0]["reason"] == "corrected in review"
    assert load.review[0].source == f"{path}:2"


def test_a_later_line_with_the_same_id_replaces_the_earlier_one_across_files(tmp_path, catalog):
    """Feedback on a served turn is written as the whole turn again: the last word counts."""
    folder = tmp_path / "requests"
    folder.mkdir()
    pay = {"name": "create_payment", "arguments": {"amount": 5000, "invoice_id": "inv_1043", "customer_id": "cus_0001"}}
    write_lines(folder / "2026-12-04-000.jsonl", [log("r1", "Charge cus_0001 $50 for inv_1043", [pay]),
                                                   log("r2", "Charge cus_0001 $50 for inv_1043", [pay])])
    write_lines(folder / "2026-12-05-000.jsonl", [
        log("r1", "Charge cus_0001 $50 for inv_1043", [pay], outcome="failure",
            tool_results=[{"name": "create_payment", "is_error": True, "result": "invoice inv_1043 is already paid"}])])
    with (folder / "2026-12-05-000.jsonl").open("a") as f:
        f.write('{"id": "r3", "messages": [{"role": "user", "content": "Call +4915112345678')  # a server killed mid-line
    load = ingest_logs(folder, catalog)
    assert [e.provenance.origin for e in load.examples] == ["r2"]
    assert [r.source for r in load.review] == [f"{folder / '2026-12-05-000.jsonl'}:{n}" for n in (1, 2)]
    assert "not valid JSON" in load.review[1].reason[0] and "4915112345678" not in str(load.review[1].record)
    assert any("rejected by the tool: invoice inv_1043 is already paid" in r for r in load.review[0].reason)
    assert load.superseded == [f"{folder / '2026-12-04-000.jsonl'}:1"]


def test_a_call_the_tool_rejected_is_a_failure_even_when_the_outcome_says_success(tmp_path, catalog):
    pay = {"name": "create_payment", "arguments": {"amount": 5000, "invoice_id": "inv_1043", "customer_id": "cus_0001"}}
    path = write_lines(tmp_path / "logs.jsonl", [log("r1", "Charge cus_0001 $50 for inv_1043", [pay],
                                                     tool_results=[{"name": "create_payment", "is_error": True,
                                                                    "result": "card declined"}],
                                                     parse_problems=["calls[1]: markup does not parse"])])
    [review] = ingest_logs(path, catalog).review
    assert any("calls[0] (create_payment) was rejected by the tool: card declined" in r for r in review.reason)
    assert any("output problem: calls[1]: markup does not parse" in r for r in review.reason)


def test_unrated_turns_are_counted_not_trained_on_unless_something_was_seen_wrong(tmp_path, catalog):
    """What tooltune serve writes before anyone judged the answer: not an example, not a failure."""
    pay = {"name": "create_payment", "arguments": {"amount": 5000, "invoice_id": "inv_1043", "customer_id": "cus_0001"}}
    path = write_lines(tmp_path / "logs.jsonl", [
        log("quiet", "Charge cus_0001 $50 for inv_1043", [pay], outcome="unrated"),
        log("rejected", "Charge cus_0001 $50 for inv_1043", [pay], outcome="unrated",
            tool_results=[{"name": "create_payment", "is_error": True, "result": "card declined"}]),
        log("quiet", "Charge cus_0001 $50 for inv_1043", [pay], outcome="success", satisfaction=5)])  # feedback came
    load = ingest_logs(path, catalog)
    assert [e.provenance.origin for e in load.examples] == ["quiet"] and load.unrated == []
    assert [r.source for r in load.review] == [f"{path}:2"] and "outcome is" not in " ".join(load.review[0].reason)
    only = write_lines(tmp_path / "only.jsonl", [log("quiet", "Charge cus_0001 $50 for inv_1043", [pay], outcome="unrated")])
    assert ingest_logs(only, catalog).unrated == [f"{only}:1"]
