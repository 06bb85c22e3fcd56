"""Reading JSON or YAML documents (tool files, OpenAPI specs) with errors that carry file:line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tooltune.errors import DiscoveryError
from tooltune.safeload import load_yaml, loads_json

# tooltune's YAML loader leaves ``2024-01-01`` as a string: plain YAML would make it a ``date``,
# which a JSON Schema ``example`` or ``default`` cannot hold and the catalog could not be saved with.


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
        return loads_json(text)
    except json.JSONDecodeError as e:
        raise DiscoveryError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}.") from e


def _parse_yaml(text: str, path: Path) -> Any:
    try:
        return load_yaml(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise DiscoveryError(f"{where}: not valid YAML: {problem}. Fix the document at that line.") from e
    except yaml.YAMLError as e:
        raise DiscoveryError(f"{path}: not valid YAML: {e}.") from e
