"""ledger: invoices, payments and refunds, every amount in integer cents."""

from ledger.invoice import Invoice, LineItem, invoice_total
from ledger.money import Money, format_cents, parse_amount
from ledger.payments import BankTransfer, CardPayment, Payment, PaymentError, record_payment, refund
from ledger.report import monthly_summary

__all__ = [
    "BankTransfer", "CardPayment", "Invoice", "LineItem", "Money", "Payment", "PaymentError",
    "format_cents", "invoice_total", "monthly_summary", "parse_amount", "record_payment", "refund",
]
