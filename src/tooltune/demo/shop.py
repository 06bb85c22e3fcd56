"""The ``shop`` demo service: customers, orders and payments, with the quirks models get wrong.

The quirks are deliberate, because they are what fine-tuning has to teach:

- **Money is integer minor units.** ``amount`` and ``total_cents`` are cents ($50.00 → 5000;
  for JPY, which has no minor unit, whole yen). A model that sends ``50.0`` or ``"$50"`` gets
  a validation error; one that sends ``50`` pays fifty cents.
- **Ids chain across calls.** Paying for "John's order" takes three calls: find the customer,
  get the order (which carries the ``invoice_id`` and ``total_cents``), then pay.
- **Currency must match the invoice.** ``currency`` defaults to USD, but European customers
  are invoiced in EUR, British ones in GBP, and so on.
- **Names can be ambiguous.** ``get_customer_by_name("John")`` matches several customers and
  fails with the candidates listed, so the model has to ask or use the full name / email.

Payment lifecycle (documented in the tool descriptions too)::

    create_payment (card on file) ──> completed ──refund (full)──> refunded
                                        └──refund (partial)──> completed, refunded_amount > 0
    seeded bank transfers: pending ──> processing ──> completed     (or failed)

Only ``completed`` payments can be refunded. All timestamps use the frozen demo clock.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field

from tooltune.demo.db import DEMO_NOW, Database, iso, now_iso, open_database
from tooltune.demo.tooling import ADDITIVE, DESTRUCTIVE, READ_ONLY, Email, ToolError, register, tool

Currency = Literal["USD", "EUR", "GBP", "CAD", "AUD", "JPY"]
PaymentState = Literal["pending", "processing", "completed", "failed", "refunded"]
FulfillmentState = Literal["awaiting_shipment", "shipped", "delivered", "cancelled"]

INSTRUCTIONS = (
    "Demo online shop. All money amounts are integers in the currency's smallest unit (cents): "
    "$50.00 is 5000. To take payment for a customer's order: find the customer "
    "(get_customer_by_name or get_customer_by_email), get the order (get_latest_order or "
    "get_orders), then call create_payment with the order's total_cents, invoice_id and currency."
)

SCHEMA = """
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE,
    country TEXT NOT NULL, currency TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers,
    invoice_id TEXT NOT NULL UNIQUE, placed_at TEXT NOT NULL, fulfillment_state TEXT NOT NULL,
    currency TEXT NOT NULL, total_cents INTEGER NOT NULL);
CREATE TABLE order_items (
    order_id TEXT NOT NULL REFERENCES orders, sku TEXT NOT NULL, name TEXT NOT NULL,
    quantity INTEGER NOT NULL, unit_price_cents INTEGER NOT NULL);
CREATE TABLE payments (
    seq INTEGER PRIMARY KEY, payment_id TEXT NOT NULL UNIQUE,
    invoice_id TEXT NOT NULL REFERENCES orders (invoice_id), customer_id TEXT NOT NULL REFERENCES customers,
    amount INTEGER NOT NULL, currency TEXT NOT NULL, state TEXT NOT NULL, method TEXT NOT NULL,
    refunded_amount INTEGER NOT NULL DEFAULT 0, failure_reason TEXT, created_at TEXT NOT NULL);
CREATE TABLE refunds (
    seq INTEGER PRIMARY KEY, refund_id TEXT NOT NULL UNIQUE, payment_id TEXT NOT NULL REFERENCES payments (payment_id),
    amount INTEGER NOT NULL, reason TEXT, created_at TEXT NOT NULL);
"""


# ---------------------------------------------------------------- records returned by the tools


class Customer(BaseModel):
    customer_id: str = Field(description="Customer id, e.g. 'cus_0001'. Pass it to order and payment tools.")
    name: str
    email: str
    country: str = Field(description="ISO 3166-1 alpha-2 country code.")
    currency: Currency = Field(description="Currency this customer is invoiced in.")
    created_at: str


class OrderItem(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price_cents: int = Field(description="Unit price in the smallest currency unit (cents).")


class Order(BaseModel):
    order_id: str
    customer_id: str
    invoice_id: str = Field(description="Invoice to pay with create_payment, e.g. 'inv_1001'.")
    placed_at: str
    fulfillment_state: FulfillmentState
    currency: Currency = Field(description="Currency the invoice is billed in; create_payment must use it.")
    total_cents: int = Field(description="Order total in the smallest currency unit (cents): 12999 is $129.99.")
    paid_cents: int = Field(description="Charged so far by pending, processing, completed or refunded payments (failed ones excluded).")
    refunded_cents: int = Field(description="Refunded so far on this invoice.")
    balance_due_cents: int = Field(description="total_cents - paid_cents (0 for cancelled orders): the most create_payment may still charge.")
    items: list[OrderItem]


class Refund(BaseModel):
    refund_id: str
    payment_id: str
    amount: int = Field(description="Refunded amount in the smallest currency unit (cents).")
    reason: str | None
    created_at: str


class Payment(BaseModel):
    payment_id: str = Field(description="Payment id, e.g. 'pay_0001'.")
    invoice_id: str
    customer_id: str
    amount: int = Field(description="Charged amount in the smallest currency unit (cents).")
    currency: Currency
    state: PaymentState
    method: Literal["card", "bank_transfer"]
    refunded_amount: int = Field(description="Total refunded so far, in cents.")
    failure_reason: str | None
    created_at: str
    refunds: list[Refund]


class PaymentList(BaseModel):
    payments: list[Payment]
    count: int


class OrderList(BaseModel):
    orders: list[Order]
    count: int


# ---------------------------------------------------------------- tool parameters

PaymentId = Annotated[str, Field(description="Payment id as returned by create_payment or list_payments, e.g. 'pay_0001'.")]
CustomerId = Annotated[str, Field(description="Customer id from get_customer_by_name / get_customer_by_email, e.g. 'cus_0001'.")]
Limit = Annotated[int, Field(ge=1, le=100, description="Maximum number of results (1-100), newest first.")]


class Shop:
    """The shop's tools over one SQLite database."""

    def __init__(self, db: Database):
        self.db = db

    @tool("Create payment", ADDITIVE)
    def create_payment(
        self,
        amount: Annotated[int, Field(ge=1, description=(
            "Amount in the smallest currency unit (cents): $50.00 → 5000, €12.34 → 1234. "
            "For JPY, which has no minor unit, whole yen: ¥5000 → 5000. Usually the order's total_cents."))],
        invoice_id: Annotated[str, Field(description="Invoice being paid, from the order (get_latest_order / get_orders), e.g. 'inv_1001'.")],
        customer_id: CustomerId,
        currency: Annotated[Currency, Field(description="ISO 4217 code; must equal the invoice's currency (see the order's 'currency').")] = "USD",
    ) -> Payment:
        """Charge a customer's card on file for an invoice and return the payment record.

        The demo processor settles card payments at once, so the new payment is 'completed'
        (completed payments can later be refunded with refund_payment). Fails if the invoice
        belongs to another customer, is billed in another currency, belongs to a cancelled
        order, or if amount exceeds the invoice's balance due. Partial payments are allowed.
        """
        with self.db.write() as conn:
            _customer_row(conn, customer_id)
            order = _order_by_invoice(conn, invoice_id)
            _check_payable(conn, order, amount, customer_id, currency)
            seq = _next_seq(conn, "payments")
            payment_id = f"pay_{seq:04d}"
            conn.execute(
                "INSERT INTO payments (seq, payment_id, invoice_id, customer_id, amount, currency, state, method, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'completed', 'card', ?)",
                (seq, payment_id, invoice_id, customer_id, amount, currency, now_iso()),
            )
            return _payment(conn, payment_id)

    @tool("Refund payment", DESTRUCTIVE)
    def refund_payment(
        self,
        payment_id: PaymentId,
        amount: Annotated[int | None, Field(ge=1, description=(
            "Amount to refund in the smallest currency unit (cents): $20.00 → 2000. "
            "Omit to refund everything not yet refunded."))] = None,
        reason: Annotated[str | None, Field(max_length=500, description="Why the money is returned; shown to the customer.")] = None,
    ) -> Payment:
        """Refund a completed payment in full or in part, and return the updated payment.

        A full refund (or partial refunds adding up to the amount) moves the payment to
        'refunded'. Only 'completed' payments can be refunded, and never for more than the
        amount not yet refunded. This returns money to the customer and cannot be undone.
        """
        with self.db.write() as conn:
            row = _payment_row(conn, payment_id)
            refundable = row["amount"] - row["refunded_amount"]
            if row["state"] != "completed":
                raise ToolError(_not_refundable(row))
            amount = refundable if amount is None else amount
            if amount > refundable:
                raise ToolError(
                    f"Refund of {amount} cents exceeds the {refundable} cents still refundable on {payment_id} "
                    f"(charged {row['amount']}, already refunded {row['refunded_amount']}). Amounts are in cents."
                )
            seq = _next_seq(conn, "refunds")
            conn.execute(
                "INSERT INTO refunds VALUES (?, ?, ?, ?, ?, ?)",
                (seq, f"re_{seq:04d}", payment_id, amount, reason, now_iso()),
            )
            state = "refunded" if amount == refundable else "completed"
            conn.execute(
                "UPDATE payments SET refunded_amount = refunded_amount + ?, state = ? WHERE payment_id = ?",
                (amount, state, payment_id),
            )
            return _payment(conn, payment_id)

    @tool("Get payment status", READ_ONLY)
    def get_payment_status(self, payment_id: PaymentId) -> Payment:
        """Look up one payment: its state (pending, processing, completed, failed, refunded), amounts in cents and refunds."""
        with self.db.read() as conn:
            return _payment(conn, payment_id)

    @tool("List payments", READ_ONLY)
    def list_payments(
        self,
        state: Annotated[PaymentState, Field(description="Only payments in this state.")],
        customer_id: Annotated[str | None, Field(description="Only this customer's payments, e.g. 'cus_0001'. Omit for all customers.")] = None,
        limit: Limit = 20,
    ) -> PaymentList:
        """List payments in one state, newest first, optionally for one customer."""
        query = "SELECT payment_id FROM payments WHERE state = ?"
        args: list[object] = [state]
        if customer_id is not None:
            query += " AND customer_id = ?"
            args.append(customer_id)
        with self.db.read() as conn:
            if customer_id is not None:
                _customer_row(conn, customer_id)
            rows = conn.execute(query + " ORDER BY created_at DESC, seq DESC LIMIT ?", (*args, limit)).fetchall()
            payments = [_payment(conn, r["payment_id"]) for r in rows]
        return PaymentList(payments=payments, count=len(payments))

    @tool("Find customer by email", READ_ONLY)
    def get_customer_by_email(self, email: Annotated[Email, Field(description="The customer's email address, e.g. 'john.smith@example.com'.")]) -> Customer:
        """Find a customer by exact email address (case-insensitive)."""
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM customers WHERE email = ?", (email.lower(),)).fetchone()
        if row is None:
            raise ToolError(f"No customer has the email {email!r}. Try get_customer_by_name.")
        return Customer(**dict(row))

    @tool("Find customer by name", READ_ONLY)
    def get_customer_by_name(
        self, name: Annotated[str, Field(min_length=1, description="Full name such as 'John Smith'; a unique first or last name also works.")]
    ) -> Customer:
        """Find the one customer whose name matches.

        An exact full name (case-insensitive) always wins. Otherwise every word given must
        start a word of the customer's name ('smith' matches 'John Smith'). If several
        customers match, the call fails and lists them: ask the user which one, or use
        get_customer_by_email.
        """
        with self.db.read() as conn:
            rows = conn.execute("SELECT * FROM customers ORDER BY customer_id").fetchall()
        return Customer(**dict(_match_name(rows, name)))

    @tool("Get latest order", READ_ONLY)
    def get_latest_order(self, customer_id: CustomerId) -> Order:
        """Return the customer's most recently placed order, with its invoice_id, total_cents, currency, balance due and fulfillment_state."""
        with self.db.read() as conn:
            _customer_row(conn, customer_id)
            row = conn.execute(
                "SELECT * FROM orders WHERE customer_id = ? ORDER BY placed_at DESC, order_id DESC LIMIT 1", (customer_id,)
            ).fetchone()
            if row is None:
                raise ToolError(f"Customer {customer_id} has no orders.")
            return _order(conn, row)

    @tool("List orders", READ_ONLY)
    def get_orders(
        self,
        fulfillment_state: Annotated[FulfillmentState, Field(description="Only orders in this fulfillment state.")],
        customer_id: Annotated[str | None, Field(description="Only this customer's orders, e.g. 'cus_0001'. Omit for all customers.")] = None,
        limit: Limit = 20,
    ) -> OrderList:
        """List orders in one fulfillment state (awaiting_shipment, shipped, delivered, cancelled), newest first."""
        query = "SELECT * FROM orders WHERE fulfillment_state = ?"
        args: list[object] = [fulfillment_state]
        if customer_id is not None:
            query += " AND customer_id = ?"
            args.append(customer_id)
        with self.db.read() as conn:
            if customer_id is not None:
                _customer_row(conn, customer_id)
            rows = conn.execute(query + " ORDER BY placed_at DESC, order_id DESC LIMIT ?", (*args, limit)).fetchall()
            orders = [_order(conn, r) for r in rows]
        return OrderList(orders=orders, count=len(orders))


def build(data_dir: Path, *, reset: bool = False) -> MCPServer:
    """The shop MCP server over ``data_dir/shop.sqlite`` (seeded on first use)."""
    db = open_database(data_dir / "shop.sqlite", "shop", SCHEMA, seed, reset=reset)
    return register(MCPServer("shop", instructions=INSTRUCTIONS), Shop(db))


# ---------------------------------------------------------------- queries


def _customer_row(conn: sqlite3.Connection, customer_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM customers WHERE customer_id = ?", (customer_id,)).fetchone()
    if row is None:
        raise ToolError(
            f"No customer with id {customer_id!r}. Customer ids look like 'cus_0001'; "
            "look one up with get_customer_by_name or get_customer_by_email."
        )
    return row


def _order_by_invoice(conn: sqlite3.Connection, invoice_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM orders WHERE invoice_id = ?", (invoice_id,)).fetchone()
    if row is None:
        raise ToolError(
            f"No invoice {invoice_id!r}. Invoice ids look like 'inv_1001' and come from an order "
            "(get_latest_order or get_orders)."
        )
    return row


def _paid_cents(conn: sqlite3.Connection, invoice_id: str) -> tuple[int, int]:
    """(charged, refunded) on an invoice, counting every payment that has not failed."""
    charged, refunded = conn.execute(
        "SELECT COALESCE(SUM(amount), 0), COALESCE(SUM(refunded_amount), 0) FROM payments WHERE invoice_id = ? AND state != 'failed'",
        (invoice_id,),
    ).fetchone()
    return charged, refunded


def _check_payable(conn: sqlite3.Connection, order: sqlite3.Row, amount: int, customer_id: str, currency: str) -> None:
    invoice = order["invoice_id"]
    if order["customer_id"] != customer_id:
        raise ToolError(f"Invoice {invoice} belongs to customer {order['customer_id']}, not {customer_id}.")
    if order["currency"] != currency:
        raise ToolError(f"Invoice {invoice} is billed in {order['currency']}, but currency is {currency}. Pass currency={order['currency']!r}.")
    if order["fulfillment_state"] == "cancelled":
        raise ToolError(f"Order {order['order_id']} (invoice {invoice}) is cancelled and cannot be paid.")
    balance = _balance_due(order, _paid_cents(conn, invoice)[0])
    if amount > balance:
        raise ToolError(
            f"amount {amount} exceeds the balance due on {invoice}: {balance} cents "
            f"(total {order['total_cents']}). Amounts are in cents: $50.00 is 5000."
        )


def _payment_row(conn: sqlite3.Connection, payment_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM payments WHERE payment_id = ?", (payment_id,)).fetchone()
    if row is None:
        raise ToolError(f"No payment with id {payment_id!r}. Payment ids look like 'pay_0001'; find one with list_payments.")
    return row


def _payment(conn: sqlite3.Connection, payment_id: str) -> Payment:
    row = _payment_row(conn, payment_id)
    refunds = conn.execute("SELECT * FROM refunds WHERE payment_id = ? ORDER BY seq", (payment_id,)).fetchall()
    fields = {k: row[k] for k in row.keys() if k != "seq"}
    return Payment(**fields, refunds=[Refund(**{k: r[k] for k in r.keys() if k != "seq"}) for r in refunds])


def _order(conn: sqlite3.Connection, row: sqlite3.Row) -> Order:
    items = conn.execute(
        "SELECT sku, name, quantity, unit_price_cents FROM order_items WHERE order_id = ? ORDER BY rowid", (row["order_id"],)
    ).fetchall()
    paid, refunded = _paid_cents(conn, row["invoice_id"])
    return Order(
        **dict(row), paid_cents=paid, refunded_cents=refunded, balance_due_cents=_balance_due(row, paid),
        items=[OrderItem(**dict(i)) for i in items],
    )


def _balance_due(order: sqlite3.Row, paid: int) -> int:
    # Refunds do not reopen an invoice (a refund settles a complaint, it is not a debt), and a
    # cancelled order owes nothing.
    return 0 if order["fulfillment_state"] == "cancelled" else max(0, order["total_cents"] - paid)


def _not_refundable(row: sqlite3.Row) -> str:
    if row["state"] == "refunded":
        return f"Payment {row['payment_id']} is already fully refunded."
    return f"Payment {row['payment_id']} is {row['state']}; only completed payments can be refunded."


def _next_seq(conn: sqlite3.Connection, table: str) -> int:
    # Sequential ids keep runs reproducible; the caller holds the write lock, so no two
    # transactions can take the same number.
    (last,) = conn.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {table}").fetchone()
    return last + 1


def _match_name(rows: list[sqlite3.Row], query: str) -> sqlite3.Row:
    wanted = query.lower().split()
    exact = [r for r in rows if r["name"].lower().split() == wanted]
    if exact:
        return exact[0]
    matches = [r for r in rows if all(any(part.startswith(w) for part in r["name"].lower().split()) for w in wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ToolError(f"No customer named {query!r}. Check the spelling, or use get_customer_by_email.")
    listed = "; ".join(f"{r['name']} ({r['customer_id']}, {r['email']})" for r in matches)
    raise ToolError(f"{len(matches)} customers match {query!r}: {listed}. Use the full name or get_customer_by_email.")


# ---------------------------------------------------------------- seed data

_CUSTOMERS = [  # name, country, currency
    ("John Smith", "US", "USD"), ("Maria Garcia", "ES", "EUR"), ("Wei Chen", "US", "USD"),
    ("Aisha Khan", "GB", "GBP"), ("Johnny Nguyen", "US", "USD"), ("Emma Johnson", "US", "USD"),
    ("Lukas Müller", "DE", "EUR"), ("Sophie Martin", "FR", "EUR"), ("Hiroshi Tanaka", "JP", "JPY"),
    ("Olivia Brown", "CA", "CAD"), ("Liam O'Connor", "IE", "EUR"), ("Priya Patel", "US", "USD"),
    ("Noah Williams", "US", "USD"), ("Chloe Dubois", "FR", "EUR"), ("Mateo Rossi", "IT", "EUR"),
    ("Grace Lee", "US", "USD"), ("Oliver Taylor", "GB", "GBP"), ("Fatima Al-Sayed", "GB", "GBP"),
    ("Jack Wilson", "AU", "AUD"), ("Ava Thompson", "US", "USD"),
]

_PRODUCTS = [  # sku, name, USD price in cents
    ("HP-200", "Wireless headphones", 8999), ("CB-USB", "USB-C cable (2 m)", 1299), ("KB-75", "Mechanical keyboard", 11900),
    ("MS-01", "Ergonomic mouse", 4950), ("LS-ST", "Laptop stand", 3499), ("WC-4K", "4K webcam", 12999),
    ("SSD-1T", "Portable SSD 1 TB", 9999), ("BAG-15", "Laptop sleeve 15\"", 2999), ("HUB-7", "7-port USB hub", 3999),
]

# Rough prices in each currency's smallest unit per US cent (JPY: yen per cent).
_RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "CAD": 1.37, "AUD": 1.52, "JPY": 1.55}


def _email(name: str, country: str) -> str:
    local = name.lower().replace("'", "").replace("ü", "u").replace(" ", ".")
    return f"{local}@example.{'co.uk' if country == 'GB' else 'com'}"


def seed(conn: sqlite3.Connection) -> None:
    """Insert the fixture world: 20 customers, ~50 orders in every fulfillment state, payments in every state."""
    rng = random.Random(20250602)
    for n, (name, country, currency) in enumerate(_CUSTOMERS, start=1):
        created = iso(DEMO_NOW - timedelta(days=400 - 13 * n))
        conn.execute("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", (f"cus_{n:04d}", name, _email(name, country), country, currency, created))
    order_no = 1000
    # Orders awaiting shipment take the in-flight payment outcomes in turn, so each appears.
    outcomes = itertools.cycle(["none", "pending", "processing", "failed"])
    for n, (_, _, currency) in enumerate(_CUSTOMERS, start=1):
        # Older orders first, then one recent order, so the last one is the customer's latest.
        ages = sorted(rng.sample(range(15, 150), n % 3 + (n == 1)), reverse=True) + [rng.randint(1, 14)]
        for age in ages:
            order_no += 1
            _seed_order(conn, rng, f"cus_{n:04d}", order_no, currency, age, outcomes)
    _seed_john_latest(conn, order_no + 1)


def _seed_order(
    conn: sqlite3.Connection, rng: random.Random, customer_id: str, number: int, currency: str, age: int, outcomes: Iterator[str]
) -> None:
    items = [(p, rng.randint(1, 3)) for p in rng.sample(_PRODUCTS, rng.randint(1, 3))]
    state = _fulfillment_for(age, number)
    lines = [(sku, name, qty, round(price * _RATES[currency])) for (sku, name, price), qty in items]
    _insert_order(conn, customer_id, number, currency, age, state, lines)
    outcome = next(outcomes) if state == "awaiting_shipment" else "settled"
    _seed_payments(conn, rng, customer_id, number, currency, state, age, sum(q * p for _, _, q, p in lines), outcome)


def _fulfillment_for(age: int, number: int) -> str:
    if number % 11 == 0:
        return "cancelled"
    if age > 30:
        return "delivered"
    return "shipped" if age > 8 else "awaiting_shipment"


def _insert_order(conn: sqlite3.Connection, customer_id: str, number: int, currency: str, age: int, state: str, lines: list) -> None:
    placed = iso(DEMO_NOW - timedelta(days=age, hours=number % 9))
    total = sum(q * p for _, _, q, p in lines)
    conn.execute("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", (f"ord_{number}", customer_id, f"inv_{number}", placed, state, currency, total))
    conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", [(f"ord_{number}", *line) for line in lines])


def _seed_payments(
    conn: sqlite3.Connection, rng: random.Random, customer_id: str, number: int, currency: str, state: str, age: int, total: int,
    outcome: str,
) -> None:
    # Shipped and delivered orders were paid by card; cancelled ones were paid then refunded.
    # Orders awaiting shipment show the in-flight states: unpaid, pending or processing bank
    # transfers, and failed card attempts.
    created = iso(DEMO_NOW - timedelta(days=age, hours=number % 9) + timedelta(minutes=5))
    if state in ("shipped", "delivered"):
        partial = rng.randint(1, total // 4) if number % 7 == 0 else 0
        _insert_payment(conn, number, customer_id, total, currency, "completed", "card", created, refunded=partial)
    elif state == "cancelled":
        _insert_payment(conn, number, customer_id, total, currency, "refunded", "card", created, refunded=total)
    elif outcome != "none":
        method = "card" if outcome == "failed" else "bank_transfer"
        _insert_payment(conn, number, customer_id, total, currency, outcome, method, created)


def _insert_payment(
    conn: sqlite3.Connection, number: int, customer_id: str, amount: int, currency: str, state: str, method: str, created: str,
    refunded: int = 0,
) -> None:
    seq = _next_seq(conn, "payments")
    payment_id = f"pay_{seq:04d}"
    failure = "card_declined" if state == "failed" else None
    conn.execute(
        "INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, payment_id, f"inv_{number}", customer_id, amount, currency, state, method, refunded, failure, created),
    )
    if refunded:
        refund_seq = _next_seq(conn, "refunds")
        reason = "Order cancelled" if state == "refunded" else "Damaged in transit"
        conn.execute("INSERT INTO refunds VALUES (?, ?, ?, ?, ?, ?)", (refund_seq, f"re_{refund_seq:04d}", payment_id, refunded, reason, created))


def _seed_john_latest(conn: sqlite3.Connection, number: int) -> None:
    # The worked example: John Smith's newest order is unpaid and awaiting shipment, so
    # "process payment for John's order" has exactly one right answer:
    # pay its invoice for 8999 + 3 * 1299 = 12896 cents in USD.
    lines = [("HP-200", "Wireless headphones", 1, 8999), ("CB-USB", "USB-C cable (2 m)", 3, 1299)]
    _insert_order(conn, "cus_0001", number, "USD", 0, "awaiting_shipment", lines)
