import pytest

from ledger.money import Money, format_cents, parse_amount


def test_parse_amount_reads_what_people_write():
    assert parse_amount("$12.50") == 1250
    assert parse_amount("12.5") == 1250
    assert parse_amount("€30") == 3000


def test_parse_amount_refuses_words():
    with pytest.raises(ValueError, match="not an amount"):
        parse_amount("twelve dollars")


def test_format_cents_and_add():
    assert format_cents(1250) == "12.50 USD"
    assert format_cents(5000, "JPY") == "5000 JPY"
    assert str(Money(100) + Money(250)) == "3.50 USD"
    with pytest.raises(ValueError):
        Money(100, "EUR") + Money(100)
