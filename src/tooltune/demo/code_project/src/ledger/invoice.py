"""Invoices and their line items."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.money import Money


@dataclass
class LineItem:
    """One line of an invoice: a quantity at a unit price in cents."""

    description: str
    quantity: int
    unit_price_cents: int

    def total_cents(self) -> int:
        """Quantity times unit price, in cents."""
        return self.quantity * self.unit_price_cents


@dataclass
class Invoice:
    """An invoice for one customer, in one currency."""

    invoice_id: str
    customer_id: str
    currency: str = "USD"
    lines: list[LineItem] = field(default_factory=list)
    paid_cents: int = 0

    def add_line(self, description: str, quantity: int, unit_price_cents: int) -> LineItem:
        """Append a line item and return it; quantities must be positive."""
        if quantity <= 0:
            raise ValueError(f"quantity must be positive, got {quantity}")
        line = LineItem(description, quantity, unit_price_cents)
        self.lines.append(line)
        return line

    def total_cents(self) -> int:
        """The sum of every line, in cents."""
        return invoice_total(self.lines)

    def balance_due(self) -> Money:
        """What is still owed: total minus payments so far."""
        return Money(self.total_cents() - self.paid_cents, self.currency)


def invoice_total(lines: list[LineItem]) -> int:
    """Sum order lines; every price is in cents."""
    return sum(line.total_cents() for line in lines)
