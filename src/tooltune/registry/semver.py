"""Model versions: the tool catalog's change rating decides which part of the version moves.

- first model under a name: **1.0.0** (a registered model is deployable, so it starts at a
  release version rather than 0.x);
- a **breaking** catalog change (tool removed, parameter renamed/retyped/now required): major;
- a **minor** change (tool or optional parameter added, enum values added): minor;
- wording-only (**patch**) changes, or **none** (same catalog, new data or training config): patch.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from tooltune.errors import RegistryError
from tooltune.tools.catalog import ToolCatalog
from tooltune.tools.diff import CatalogDiff, Rating, diff

_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


class Version(NamedTuple):
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip())
        if not match:
            raise RegistryError(f"version {text!r} is not MAJOR.MINOR.PATCH (for example 1.4.0).")
        return cls(*(int(part) for part in match.groups()))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


FIRST = Version(1, 0, 0)


def bump(previous: Version | str | None, rating: Rating) -> Version:
    """The version after ``previous`` for a catalog change of ``rating`` (``FIRST`` when none)."""
    if previous is None:
        return FIRST
    prev = Version.parse(previous) if isinstance(previous, str) else previous
    if rating is Rating.BREAKING:
        return Version(prev.major + 1, 0, 0)
    if rating is Rating.MINOR:
        return Version(prev.major, prev.minor + 1, 0)
    return Version(prev.major, prev.minor, prev.patch + 1)


def next_version(previous: Version | str | None, old: ToolCatalog | None, new: ToolCatalog) -> tuple[Version, CatalogDiff]:
    """Rate the catalog change from the previous model's catalog to ``new`` and bump accordingly."""
    change = diff(old, new) if old is not None else CatalogDiff([])
    return bump(previous, change.rating), change
