"""The ``tooltune`` command: :data:`app` (the typer app) and :func:`main` (the console script).

The top of the layers: it imports every room below, and nothing below imports it.
"""

from tooltune.cli.app import app, main

__all__ = ["app", "main"]
