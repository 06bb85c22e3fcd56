import pytest

from ledger.invoice import Invoice


def test_total_and_balance_due():
    invoice = Invoice("inv_1001", "cus_0001")
    invoice.add_line("USB-C cable", 2, 1299)
    invoice.add_line("Laptop stand", 1, 4500)
    assert invoice.total_cents() == 7098
    assert invoice.balance_due().cents == 7098


def test_quantity_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Invoice("inv_1002", "cus_0002").add_line("Webcam", 0, 8900)
