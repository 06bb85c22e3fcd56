"""Payments against invoices, and refunds."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.invoice import Invoice


class PaymentError(Exception):
    """A payment or refund that cannot be made (too much, wrong state)."""


@dataclass
class Payment:
    """Money received for one invoice."""

    payment_id: str
    invoice_id: str
    amount_cents: int
    refunded_cents: int = 0

    def settles_immediately(self) -> bool:
        """Whether the money is available at once."""
        return True

    def refundable_cents(self) -> int:
        """What can still be refunded."""
        return self.amount_cents - self.refunded_cents


@dataclass
class CardPayment(Payment):
    """A card payment; settles at once."""

    card_last4: str = "0000"


@dataclass
class BankTransfer(Payment):
    """A bank transfer; pending until the bank confirms it."""

    reference: str = ""

    def settles_immediately(self) -> bool:
        """Bank transfers take days to settle."""
        return False


def record_payment(invoice: Invoice, payment: Payment) -> Invoice:
    """Apply a payment to its invoice; refuses more than the balance due."""
    if payment.invoice_id != invoice.invoice_id:
        raise PaymentError(f"payment {payment.payment_id} is for {payment.invoice_id}, not {invoice.invoice_id}")
    if payment.amount_cents > invoice.balance_due().cents:
        raise PaymentError(f"payment {payment.payment_id} exceeds the balance due")
    invoice.paid_cents += payment.amount_cents
    return invoice


def refund(payment: Payment, amount_cents: int | None = None) -> Payment:
    """Refund part of a payment, or all that is left when no amount is given."""
    amount = payment.refundable_cents() if amount_cents is None else amount_cents
    if amount <= 0 or amount > payment.refundable_cents():
        raise PaymentError(f"cannot refund {amount} cents of payment {payment.payment_id}")
    payment.refunded_cents += amount
    return payment
