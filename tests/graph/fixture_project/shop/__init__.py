"""A tiny shop: the code-graph test fixture (tests/graph/test_graph.py counts its nodes and edges)."""

from shop.registry import Registry

__all__ = ["Registry"]
