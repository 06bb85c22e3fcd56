"""Where models are registered and deployed."""

from shop.models import Model, Order, format_cents


class Registry:
    """Keeps models and deploys them."""

    def __init__(self):
        self.items = {}

    def register(self, model: Model) -> str:
        """Store ``model`` under its key and return the key."""
        key = model.key()
        self.items[key] = model
        return key

    def deploy(self, key: str, *, dry_run: bool = False) -> bool:
        """Deploy the model stored under ``key``.

        Args:
            key: the key returned by register.
            dry_run: check without deploying.
        """
        if key not in self.items:
            return False
        self._log(key)
        return not dry_run

    def _log(self, key):
        print(key)


class AuditedRegistry(Registry):
    """A registry that records each deployment."""

    def deploy(self, key: str, *, dry_run: bool = False) -> bool:
        self.audit = key
        return super().deploy(key, dry_run=dry_run)

    def log_total(self, order: Order) -> str:
        return format_cents(order.total_cents)
