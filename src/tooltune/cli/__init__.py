"""The ``tooltune`` command: :data:`app` (the typer app) and :func:`main` (the console script).

The top of the layers: it imports every room below, and nothing below imports it.
"""

# ``tooltune.cli.app`` is the typer app from here on, not its module (``from tooltune.cli import app``
# has always meant the app); reach the module's other names with ``from tooltune.cli.app import ...``.
from tooltune.cli.app import app, main

__all__ = ["app", "main"]
