"""Read YAML or JSON data files and remember where each value came from.

Data errors must say where to look (``shop.yaml:42: …``). YAML files are parsed with a
``SafeLoader`` subclass that records the line of every mapping key and sequence item; JSON's
parser keeps no positions, so JSON files are located by JSON pointer instead
(``shop.json#/training_examples/3/correct_parameters/amount``, the convention the OpenAPI
reader uses too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tooltune.errors import DataError
from tooltune.safeload import SafeYAMLLoader, load_yaml, loads_json


class LinedDict(dict):
    """A YAML mapping that knows its own line and the line of each key (1-based)."""

    line: int = 0
    lines: dict[Any, int]


class LinedList(list):
    """A YAML sequence that knows its own line and the line of each item (1-based)."""

    line: int = 0
    lines: list[int]


class _LineLoader(SafeYAMLLoader):
    """tooltune's YAML loader (limits, dates left as text) building :class:`LinedDict`/:class:`LinedList`."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode):
    data = LinedDict()
    data.line = node.start_mark.line + 1
    yield data  # yielded first so that recursive (anchored) structures resolve, as SafeLoader does
    data.update(loader.construct_mapping(node))
    data.lines = {loader.construct_object(key, deep=True): key.start_mark.line + 1 for key, _ in node.value}


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode):
    data = LinedList()
    data.line = node.start_mark.line + 1
    yield data
    data.extend(loader.construct_sequence(node))
    data.lines = [item.start_mark.line + 1 for item in node.value]


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


class Located:
    """A parsed document plus the means to name the place of any value in it."""

    def __init__(self, path: Path, data: Any, *, is_json: bool):
        self.path = path
        self.data = data
        self.is_json = is_json

    def where(self, *keys: str | int) -> str:
        """``file:line`` of the deepest of ``keys`` found (YAML), or ``file#/json/pointer`` (JSON)."""
        if self.is_json:
            pointer = "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in keys)
            return f"{self.path}#{pointer}"
        line, node = getattr(self.data, "line", 1), self.data
        for key in keys:
            line = _line_of(node, key) or line
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                break
        return f"{self.path}:{line}"


def _line_of(node: Any, key: str | int) -> int | None:
    lines = getattr(node, "lines", None)
    if isinstance(lines, dict):
        return lines.get(key)
    if isinstance(lines, list) and isinstance(key, int) and 0 <= key < len(lines):
        return lines[key]
    return None


def load_located(path: str | Path) -> Located:
    """Parse ``path`` as JSON (``.json``) or YAML (anything else); a syntax error raises
    :class:`DataError` naming file, line and column."""
    path = Path(path)
    text = read_text(path)
    if path.suffix.lower() == ".json":
        try:
            return Located(path, loads_json(text), is_json=True)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}. Fix the syntax at that position.") from e
    return Located(path, parse_yaml(text, path), is_json=False)


def parse_yaml(text: str, path: Path) -> Any:
    try:
        return load_yaml(text, _LineLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise DataError(f"{where}: not valid YAML: {problem}. Fix the syntax at that line.") from e
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not valid YAML: {e}.") from e


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DataError(f"{path}: no such file. Check the path (relative paths start at {Path.cwd()}).") from e
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the file: {e}.") from e
