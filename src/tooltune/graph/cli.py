"""`tooltune` commands of this room, registered on the main app by :func:`register` (cli.py)."""

from __future__ import annotations

import typer


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add this room's commands to ``app`` (top level) or to one of ``groups`` (e.g. ``groups["data"]``)."""
