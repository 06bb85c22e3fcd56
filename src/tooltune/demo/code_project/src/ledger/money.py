"""Money as integer cents: never floats, so sums are exact."""

from __future__ import annotations

import re
from dataclasses import dataclass

CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
ZERO_DECIMAL = {"JPY"}
_AMOUNT = re.compile(r"^\s*([$€£¥])?\s*(\d+)(?:\.(\d{1,2}))?\s*$")


@dataclass(frozen=True)
class Money:
    """An amount in the currency's smallest unit (cents), with its ISO 4217 code."""

    cents: int
    currency: str = "USD"

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.cents + other.cents, self.currency)

    def __str__(self) -> str:
        return format_cents(self.cents, self.currency)


def parse_amount(text: str) -> int:
    """Parse a price as people write it ("$12.50", "12.5", "€30") into integer cents (1250)."""
    match = _AMOUNT.match(text)
    if match is None:
        raise ValueError(f"not an amount: {text!r}")
    whole, fraction = match.group(2), match.group(3) or "0"
    return int(whole) * 100 + int(fraction.ljust(2, "0"))


def format_cents(cents: int, currency: str = "USD") -> str:
    """Format integer cents for people: 1250 USD -> "12.50 USD"; JPY has no minor unit."""
    if currency in ZERO_DECIMAL:
        return f"{cents} {currency}"
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d} {currency}"
