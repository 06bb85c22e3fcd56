"""Migrating examples to a new catalog: valid, migrated (renames), invalid (quarantined)."""

from __future__ import annotations

import copy
import json

import pytest

from tooltune.data.examples import Behavior, Clarification, Example, ExpectedCall, Provenance, Source, read_jsonl, write_jsonl
from tooltune.data.migrate import MigrationStatus, migrate_dataset, migrate_example, migrate_examples
from tooltune.data.quarantine import read_quarantine
from tooltune.tools.catalog import ToolCatalog
from tooltune.tools.diff import diff


@pytest.fixture
def old(shop_catalog_dict) -> ToolCatalog:
    return ToolCatalog.from_dict(shop_catalog_dict)


def edited(base: dict, fn) -> ToolCatalog:
    data = copy.deepcopy(base)
    fn({t["name"]: t for t in data["tools"]})
    return ToolCatalog.from_dict(data)


def rename_amount(tools):
    props = tools["create_payment"]["parameters"]["properties"]
    props["amount_cents"] = props.pop("amount")
    tools["create_payment"]["parameters"]["required"] = ["amount_cents", "invoice_id", "customer_id"]


def payment(old: ToolCatalog, **extra) -> Example:
    return Example(
        messages=[{"role": "user", "content": "Pay invoice INV-7 for customer C-1, $50"}],
        tools=["create_payment", "get_orders"], behavior=Behavior.CALLS,
        calls=[ExpectedCall(name="create_payment", arguments={"amount": 5000, "invoice_id": "INV-7", "customer_id": "C-1"},
                            alternatives={"amount": [5000]}, **extra)],
        provenance=Provenance(source=Source.CURATED, catalog_hash=old.hash))


def orders(old: ToolCatalog, state: str = "shipped") -> Example:
    return Example(
        messages=[{"role": "user", "content": f"Show {state} orders"}], tools=["create_payment", "get_orders"],
        behavior=Behavior.CALLS, calls=[ExpectedCall(name="get_orders", arguments={"fulfillment_state": state})],
        provenance=Provenance(source=Source.SYNTHETIC, catalog_hash=old.hash))


def run(example: Example, old: ToolCatalog, new: ToolCatalog):
    return migrate_example(example, new, diff(old, new))


def test_renamed_parameter_is_renamed_everywhere(old, shop_catalog_dict):
    new = edited(shop_catalog_dict, rename_amount)
    m = run(payment(old, optional=[]), old, new)
    assert m.status is MigrationStatus.MIGRATED
    call = m.example.calls[0]
    assert call.arguments == {"amount_cents": 5000, "invoice_id": "INV-7", "customer_id": "C-1"}
    assert call.alternatives == {"amount_cents": [5000]}
    assert m.edits == ["create_payment.amount renamed to amount_cents"]
    assert m.example.provenance.catalog_hash == new.hash and m.example.id != payment(old).id


def test_clarify_missing_list_follows_a_rename(old, shop_catalog_dict):
    new = edited(shop_catalog_dict, rename_amount)
    ask = Example(messages=[{"role": "user", "content": "Pay INV-7"}], tools=["create_payment"], behavior=Behavior.CLARIFY,
                  clarify=Clarification(question="How much?", missing=["amount"]), provenance=Provenance(source=Source.CURATED))
    m = run(ask, old, new)
    assert m.status is MigrationStatus.MIGRATED and m.example.clarify.missing == ["amount_cents"]


def test_new_optional_parameter_keeps_examples_valid(old, shop_catalog_dict):
    new = edited(shop_catalog_dict, lambda t: t["get_orders"]["parameters"]["properties"].update(
        customer_id={"type": "string"}))
    m = run(orders(old), old, new)
    assert m.status is MigrationStatus.VALID and m.example.id == orders(old).id and m.edits == []


def test_breaking_changes_make_examples_invalid_with_reasons(old, shop_catalog_dict):
    def add_required(t):
        t["create_payment"]["parameters"]["properties"]["memo"] = {"type": "string"}
        t["create_payment"]["parameters"]["required"].append("memo")

    m = run(payment(old), old, edited(shop_catalog_dict, add_required))
    assert m.status is MigrationStatus.INVALID
    assert any("missing required parameter \"memo\"" in r for r in m.reasons)
    assert any(r.startswith("catalog change: [breaking] param_added_required create_payment.memo") for r in m.reasons)

    no_cancel = edited(shop_catalog_dict, lambda t: t["get_orders"]["parameters"]["properties"]["fulfillment_state"]["enum"].remove("cancelled"))
    assert run(orders(old, "cancelled"), old, no_cancel).status is MigrationStatus.INVALID
    assert run(orders(old, "shipped"), old, no_cancel).status is MigrationStatus.VALID

    to_string = edited(shop_catalog_dict, lambda t: t["create_payment"]["parameters"]["properties"]["amount"].update(type="string"))
    assert any("expected string, got 5000" in r for r in run(payment(old), old, to_string).reasons)


def test_removed_tool_invalidates_callers_and_leaves_distractor_users(old, shop_catalog_dict):
    new = ToolCatalog(tools=[old.get("get_orders")])
    called = run(payment(old), old, new)
    assert called.status is MigrationStatus.INVALID and "which the new catalog removed" in called.reasons[0]
    offered = run(orders(old), old, new)
    assert offered.status is MigrationStatus.MIGRATED and offered.example.tools == ["get_orders"]


def test_migrate_examples_counts_and_quarantines(old, shop_catalog_dict):
    new = edited(shop_catalog_dict, rename_amount)
    result = migrate_examples([payment(old), orders(old), orders(old, "lost")], new, old, source="train.jsonl")
    assert result.counts == {"valid": 1, "migrated": 1, "invalid": 1}
    assert [q.source for q in result.quarantine] == ["train.jsonl:3"]
    assert result.quarantine[0].record["calls"][0]["arguments"] == {"fulfillment_state": "lost"}


def test_migrate_dataset_reads_the_saved_catalog_and_keeps_splits(old, shop_catalog_dict, tmp_path):
    data = tmp_path / "data"
    write_jsonl([payment(old), orders(old)], data / "train.jsonl")
    write_jsonl([orders(old, "delivered"), orders(old, "lost")], data / "test_phrasing.jsonl")
    old.save(data / "catalog.json")
    new = edited(shop_catalog_dict, rename_amount)
    report = migrate_dataset(data, new, tmp_path / "out")
    out = tmp_path / "out"
    assert report["counts"] == {"valid": 2, "migrated": 1, "invalid": 1}
    assert report["splits"]["test_phrasing"] == {"valid": 1, "migrated": 0, "invalid": 1}
    assert "amount_cents" in next(read_jsonl(out / "train.jsonl")).calls[0].arguments
    assert [q.source for q in read_quarantine(out / "quarantine.jsonl")] == [f"{data / 'test_phrasing.jsonl'}:2"]
    assert ToolCatalog.load(out / "catalog.json").hash == new.hash
    assert json.loads((out / "report.json").read_text())["split_sizes"] == {"train": 2, "test_phrasing": 1}
