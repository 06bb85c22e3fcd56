import pytest

from ledger.invoice import Invoice
from ledger.payments import BankTransfer, CardPayment, PaymentError, record_payment, refund


def _invoice() -> Invoice:
    invoice = Invoice("inv_1001", "cus_0001")
    invoice.add_line("Mechanical keyboard", 1, 11900)
    return invoice


def test_payment_reduces_balance_and_overpaying_fails():
    invoice = record_payment(_invoice(), CardPayment("pay_0001", "inv_1001", 5000))
    assert invoice.balance_due().cents == 6900
    with pytest.raises(PaymentError, match="exceeds"):
        record_payment(invoice, CardPayment("pay_0002", "inv_1001", 7000))


def test_refunds_and_settlement():
    payment = CardPayment("pay_0003", "inv_1001", 5000)
    assert refund(payment, 1000).refundable_cents() == 4000
    assert refund(payment).refundable_cents() == 0
    with pytest.raises(PaymentError):
        refund(payment)
    assert not BankTransfer("pay_0004", "inv_1001", 100).settles_immediately()
