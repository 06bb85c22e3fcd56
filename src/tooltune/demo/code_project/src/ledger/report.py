"""A monthly summary of invoices."""

from __future__ import annotations

from collections import defaultdict

from ledger.invoice import Invoice


def monthly_summary(invoices: list[Invoice]) -> dict[str, dict[str, int]]:
    """Per currency: invoice count, total billed and total still due, in cents."""
    # TODO: split by month once invoices carry an issue date.
    summary: dict[str, dict[str, int]] = defaultdict(lambda: {"invoices": 0, "billed_cents": 0, "due_cents": 0})
    for invoice in invoices:
        row = summary[invoice.currency]
        row["invoices"] += 1
        row["billed_cents"] += invoice.total_cents()
        row["due_cents"] += invoice.balance_due().cents
    return dict(summary)
