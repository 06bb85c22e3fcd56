"""Data models of the shop."""


class Model:
    """Base of every stored model."""

    def key(self) -> str:
        """The storage key."""
        return type(self).__name__.lower()


class Order(Model):
    """A customer's order.

    Example:
        >>> Order("o1", 500).total_cents
        500
    """

    def __init__(self, order_id: str, total_cents: int) -> None:
        self.order_id = order_id
        self.total_cents = total_cents

    def key(self) -> str:
        return f"order:{self.order_id}"

    def describe(self):
        return self.key() + format_cents(self.total_cents)


def format_cents(amount: int, currency: str = "USD") -> str:
    """Format an amount in cents as text.

    Args:
        amount: the amount in cents.
        currency: ISO currency code.
    """
    return f"{amount / 100:.2f} {currency}"
