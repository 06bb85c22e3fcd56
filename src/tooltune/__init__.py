"""tooltune: make language models call your own tools reliably."""

__version__ = "0.1.0"
