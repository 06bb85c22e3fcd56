"""Reading JSON or YAML documents (tool files, OpenAPI specs) with errors that carry file:line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tooltune.errors import DiscoveryError


class _StringTimestampLoader(yaml.SafeLoader):
    """SafeLoader that leaves ``2024-01-01`` as a string.

    Plain YAML would turn it into a ``date``, which a JSON Schema ``example`` or ``default``
    cannot hold and which the catalog could not be saved with.
    """


_StringTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_document(path: str | Path) -> Any:
    """Parse ``path`` as JSON (``.json``) or YAML (anything else; YAML also reads JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DiscoveryError(f"{path}: no such file. Check the path (relative paths start at {Path.cwd()}).") from e
    except (OSError, UnicodeDecodeError) as e:
        raise DiscoveryError(f"{path}: cannot read the file: {e}.") from e
    if path.suffix.lower() == ".json":
        return _parse_json(text, path)
    return _parse_yaml(text, path)


def _parse_json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DiscoveryError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}.") from e


def _parse_yaml(text: str, path: Path) -> Any:
    try:
        return yaml.load(text, Loader=_StringTimestampLoader)  # noqa: S506  # a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise DiscoveryError(f"{where}: not valid YAML: {problem}. Fix the document at that line.") from e
    except yaml.YAMLError as e:
        raise DiscoveryError(f"{path}: not valid YAML: {e}.") from e
