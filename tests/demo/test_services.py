"""The demo MCP services, driven in-process through the SDK's ``Client`` (plus one stdio subprocess run)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tooltune.demo import SERVICES, build_server
from tooltune.errors import ConfigError

from tests.demo.conftest import error, ok

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {
    "shop": [
        "create_payment", "refund_payment", "get_payment_status", "list_payments",
        "get_customer_by_email", "get_customer_by_name", "get_latest_order", "get_orders",
    ],
    "calendar": ["create_event", "list_events", "cancel_event", "find_free_slot"],
    "files": ["list_files", "read_file", "write_file", "search_files", "delete_file"],
    "weather": ["get_current_weather", "get_forecast", "get_air_quality"],
    "code": ["Read", "Write", "Edit", "Bash", "Grep", "Glob"],
}


# ---------------------------------------------------------------- catalogs and schemas


def test_unknown_service_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shop, calendar, files, weather"):
        build_server("bank", tmp_path)


async def test_each_service_lists_its_tools_with_descriptions(tmp_path: Path) -> None:
    seen: list[str] = []
    for service in SERVICES:
        async with Client(build_server(service, tmp_path)) as client:
            listing = await client.list_tools()
        assert listing.next_cursor is None
        assert [t.name for t in listing.tools] == EXPECTED_TOOLS[service]
        for t in listing.tools:
            assert t.description and t.title and t.annotations is not None, t.name
            assert t.output_schema is not None, f"{t.name} has no structured output"
            for param, spec in t.input_schema["properties"].items():
                assert spec.get("description"), f"{t.name}.{param} has no description"
        seen += [t.name for t in listing.tools]
    assert len(seen) == len(set(seen)), "tool names must be unique across services (catalogs get merged)"


async def test_shop_schema_carries_the_quirks(tmp_path: Path) -> None:
    async with Client(build_server("shop", tmp_path)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    pay = tools["create_payment"].input_schema
    assert pay["properties"]["amount"]["type"] == "integer"
    assert "$50.00 → 5000" in pay["properties"]["amount"]["description"]
    assert {"USD", "EUR", "GBP"} <= set(pay["properties"]["currency"]["enum"])
    assert pay["required"] == ["amount", "invoice_id", "customer_id"]
    states = tools["list_payments"].input_schema["properties"]["state"]["enum"]
    assert states == ["pending", "processing", "completed", "failed", "refunded"]
    fulfillment = tools["get_orders"].input_schema["properties"]["fulfillment_state"]["enum"]
    assert fulfillment == ["awaiting_shipment", "shipped", "delivered", "cancelled"]
    assert tools["get_customer_by_email"].input_schema["properties"]["email"]["format"] == "email"
    assert all(tools[n].annotations.read_only_hint for n in EXPECTED_TOOLS["shop"] if n.startswith(("get_", "list_")))
    assert tools["refund_payment"].annotations.destructive_hint is True
    assert tools["create_payment"].annotations.read_only_hint is False
    assert tools["create_payment"].annotations.idempotent_hint is False


# ---------------------------------------------------------------- shop


async def test_john_three_step_payment_flow(tmp_path: Path) -> None:
    async with Client(build_server("shop", tmp_path)) as client:
        john = await ok(client, "get_customer_by_name", name="John Smith")
        order = await ok(client, "get_latest_order", customer_id=john["customer_id"])
        assert order["fulfillment_state"] == "awaiting_shipment" and order["balance_due_cents"] == order["total_cents"]
        payment = await ok(
            client, "create_payment",
            amount=order["total_cents"], invoice_id=order["invoice_id"], customer_id=john["customer_id"],
        )
        assert payment["state"] == "completed"

        stored = await ok(client, "get_payment_status", payment_id=payment["payment_id"])
        assert (stored["amount"], stored["invoice_id"], stored["currency"]) == (order["total_cents"], order["invoice_id"], "USD")
        listed = await ok(client, "list_payments", state="completed", customer_id=john["customer_id"])
        assert payment["payment_id"] in [p["payment_id"] for p in listed["payments"]]
        assert (await ok(client, "get_latest_order", customer_id=john["customer_id"]))["balance_due_cents"] == 0
        # Paying twice would overcharge: the balance is now zero.
        assert "exceeds the balance due" in await error(
            client, "create_payment", amount=order["total_cents"], invoice_id=order["invoice_id"], customer_id=john["customer_id"]
        )


async def test_create_payment_rejects_dollars_wrong_currency_and_foreign_invoice(tmp_path: Path) -> None:
    async with Client(build_server("shop", tmp_path)) as client:
        maria = await ok(client, "get_customer_by_email", email="Maria.Garcia@example.com")
        order = await ok(client, "get_latest_order", customer_id=maria["customer_id"])
        assert order["currency"] == "EUR"
        common = {"invoice_id": order["invoice_id"], "customer_id": maria["customer_id"]}
        assert "valid integer" in await error(client, "create_payment", amount=129.99, currency="EUR", **common)
        assert "Pass currency='EUR'" in await error(client, "create_payment", amount=100, **common)
        assert "belongs to customer" in await error(
            client, "create_payment", amount=100, currency="EUR", invoice_id=order["invoice_id"], customer_id="cus_0001"
        )
        assert "No invoice" in await error(client, "create_payment", amount=100, invoice_id="INV-42", customer_id="cus_0001")
        partial = await ok(client, "create_payment", amount=100, currency="EUR", **common)
        assert partial["amount"] == 100


async def test_customer_lookup_by_name_is_strict_about_ambiguity(tmp_path: Path) -> None:
    async with Client(build_server("shop", tmp_path)) as client:
        message = await error(client, "get_customer_by_name", name="John")
        assert "John Smith (cus_0001" in message and "Johnny Nguyen" in message
        assert (await ok(client, "get_customer_by_name", name="smith"))["customer_id"] == "cus_0001"
        assert "No customer named" in await error(client, "get_customer_by_name", name="Zed Zebra")
        assert "not an email address" in await error(client, "get_customer_by_email", email="John Smith")


async def test_refunds_partial_full_and_errors(tmp_path: Path) -> None:
    async with Client(build_server("shop", tmp_path)) as client:
        assert "No payment with id 'pay_9999'" in await error(client, "refund_payment", payment_id="pay_9999")
        pending = (await ok(client, "list_payments", state="pending", limit=1))["payments"][0]
        assert "only completed payments" in await error(client, "refund_payment", payment_id=pending["payment_id"])

        paid = (await ok(client, "list_payments", state="completed", limit=100))["payments"]
        payment = next(p for p in paid if p["refunded_amount"] == 0)
        too_much = payment["amount"] + 1
        assert "exceeds" in await error(client, "refund_payment", payment_id=payment["payment_id"], amount=too_much)

        part = await ok(client, "refund_payment", payment_id=payment["payment_id"], amount=500, reason="dented box")
        assert (part["state"], part["refunded_amount"], part["refunds"][0]["reason"]) == ("completed", 500, "dented box")
        rest = await ok(client, "refund_payment", payment_id=payment["payment_id"])
        assert (rest["state"], rest["refunded_amount"]) == ("refunded", payment["amount"])
        assert "already fully refunded" in await error(client, "refund_payment", payment_id=payment["payment_id"])


async def test_seed_has_every_payment_and_fulfillment_state(tmp_path: Path) -> None:
    async with Client(build_server("shop", tmp_path)) as client:
        for state in ["pending", "processing", "completed", "failed", "refunded"]:
            assert (await ok(client, "list_payments", state=state))["count"] > 0, state
        for state in ["awaiting_shipment", "shipped", "delivered", "cancelled"]:
            assert (await ok(client, "get_orders", fulfillment_state=state))["count"] > 0, state
        assert (await ok(client, "get_orders", fulfillment_state="delivered", limit=2))["count"] == 2


async def test_concurrent_payments_cannot_overcharge(tmp_path: Path) -> None:
    # Sync tools run on worker threads; the write transaction must make check-then-insert atomic.
    results = []
    async with Client(build_server("shop", tmp_path)) as client:
        order = await ok(client, "get_latest_order", customer_id="cus_0001")
        args = {"amount": order["total_cents"], "invoice_id": order["invoice_id"], "customer_id": "cus_0001"}

        async def pay() -> None:
            results.append(await client.call_tool("create_payment", args))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(pay)
    assert sorted(r.is_error for r in results) == [False, True, True, True]


async def test_state_persists_across_restarts_and_reset_restores_seed(tmp_path: Path) -> None:
    async with Client(build_server("shop", tmp_path)) as client:
        payment = await ok(client, "create_payment", amount=250, invoice_id="inv_1043", customer_id="cus_0001")
    async with Client(build_server("shop", tmp_path)) as client:
        assert (await ok(client, "get_payment_status", payment_id=payment["payment_id"]))["amount"] == 250
    async with Client(build_server("shop", tmp_path, reset=True)) as client:
        assert "No payment" in await error(client, "get_payment_status", payment_id=payment["payment_id"])


def test_seeding_is_deterministic(tmp_path: Path) -> None:
    for service in SERVICES:
        if service == "code":
            continue  # a copied file tree, not SQLite: tests/demo/test_code_service.py checks it
        dumps = []
        for run in ("a", "b"):
            build_server(service, tmp_path / run)
            with sqlite3.connect(tmp_path / run / f"{service}.sqlite") as conn:
                dumps.append(list(conn.iterdump()))
        assert dumps[0] == dumps[1], service


# ---------------------------------------------------------------- calendar, files, weather


async def test_calendar_find_book_cancel(tmp_path: Path) -> None:
    priya = "priya.shah@example.com"
    async with Client(build_server("calendar", tmp_path)) as client:
        slot = await ok(client, "find_free_slot", date="2025-06-03", duration_minutes=60, attendees=[priya])
        assert slot == {"start": "2025-06-03T11:30:00Z", "end": "2025-06-03T12:30:00Z", "duration_minutes": 60}
        event = await ok(client, "create_event", title="Refund API sync", start=slot["start"], duration_minutes=60, attendees=[priya])
        assert event["conflicts"] == [] and event["attendees"] == ["alex.morgan@example.com", priya]
        day = await ok(client, "list_events", date="2025-06-03")
        assert event["event_id"] in [e["event_id"] for e in day["events"]]

        await ok(client, "cancel_event", event_id=event["event_id"])
        again = await ok(client, "cancel_event", event_id=event["event_id"])  # idempotent
        assert again["status"] == "cancelled"
        assert event["event_id"] not in [e["event_id"] for e in (await ok(client, "list_events", date="2025-06-03"))["events"]]

        # An offset is converted to UTC; a naive datetime and a name instead of an email are refused.
        shifted = await ok(client, "create_event", title="x", start="2025-06-04T10:00:00+02:00", duration_minutes=30, attendees=[])
        assert shifted["start"] == "2025-06-04T08:00:00Z"
        message = await error(client, "create_event", title="x", start="2025-06-04T10:00:00", duration_minutes=30, attendees=["Priya"])
        assert "timezone" in message and "not an email address" in message
        assert "No event" in await error(client, "cancel_event", event_id="evt_9999")


async def test_files_write_read_search_delete(tmp_path: Path) -> None:
    async with Client(build_server("files", tmp_path)) as client:
        top = await ok(client, "list_files")
        assert {"docs", "notes", "README.md"} <= {e["name"] for e in top["entries"]}
        written = await ok(client, "write_file", path="/notes/retro.md", content="# Retro\nJPY has no cents\n")
        assert written["created"] is True
        assert (await ok(client, "read_file", path="/notes/retro.md"))["content"].startswith("# Retro")
        hits = await ok(client, "search_files", query="jpy", extension="md")
        assert {m["path"] for m in hits["matches"]} == {"/notes/retro.md", "/notes/2025-06-02-standup.md"}
        assert "without the dot" in await error(client, "search_files", query="jpy", extension=".md")
        assert "absolute path" in await error(client, "read_file", path="notes/retro.md")
        assert "is a folder" in await error(client, "read_file", path="/notes")
        await ok(client, "delete_file", path="/notes/retro.md")
        assert "No file" in await error(client, "read_file", path="/notes/retro.md")


async def test_weather_units_days_and_city_resolution(tmp_path: Path) -> None:
    async with Client(build_server("weather", tmp_path)) as client:
        metric = await ok(client, "get_current_weather", city="Paris")
        imperial = await ok(client, "get_current_weather", city="paris, fr", units="imperial")
        assert metric["location"]["country"] == "FR" and imperial["units"]["temperature"] == "°F"
        assert imperial["temperature"] == round(metric["temperature"] * 9 / 5 + 32, 1)
        assert (await ok(client, "get_current_weather", city="Paris, US"))["location"]["region"] == "TX"
        forecast = await ok(client, "get_forecast", city="Tokyo", days=7)
        assert [d["date"] for d in forecast["days"]][:2] == ["2025-06-02", "2025-06-03"] and len(forecast["days"]) == 7
        assert "less than or equal to 7" in await error(client, "get_forecast", city="Tokyo", days=10)
        assert "'metric' or 'imperial'" in await error(client, "get_current_weather", city="Tokyo", units="celsius")
        assert (await ok(client, "get_air_quality", city="Delhi"))["category"] == "unhealthy"
        assert "Known cities" in await error(client, "get_air_quality", city="Atlantis")


# ---------------------------------------------------------------- the real CLI over stdio


async def test_cli_serves_shop_over_stdio(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=str(Path(sys.executable).with_name("tooltune")),
        args=["demo-server", "--service", "shop", "--data-dir", str(tmp_path)],
    )
    with anyio.fail_after(30):
        async with Client(params) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            john = await ok(client, "get_customer_by_name", name="John Smith")
    assert names == EXPECTED_TOOLS["shop"] and john["customer_id"] == "cus_0001"
    assert (tmp_path / "shop.sqlite").exists()
