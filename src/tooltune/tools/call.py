"""A tool call: the name of a tool and its arguments.

It lives with the tools rather than with the formats: validation (:mod:`tooltune.tools.validate`)
checks a call against its tool, and every format renders and parses these same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCall:
    """One call: a tool name and its arguments. ``id`` is transport metadata, not compared."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}
