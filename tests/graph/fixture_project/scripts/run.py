import shop.registry as reg
from shop import Registry
from shop.models import Order


def main(argv: list[str] | None = None) -> int:
    registry = Registry()
    key = registry.register(Order("o1", 500))
    reg.Registry().deploy(key)
    return 0
