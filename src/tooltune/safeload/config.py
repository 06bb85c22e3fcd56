"""The one way a YAML config becomes a typed object, and the one shape of its errors.

Every config file (``pipeline.yaml``, a ``DataConfig`` or ``TrainConfig`` file, ``services.yaml``,
the price table, a publication's ``metadata.yaml``) is read by :func:`read_config_file` — the
limited YAML loader, keeping the line of every key — and validated into its pydantic model by
:func:`validate_config`; :func:`load_config` does both. Every problem is reported at once, in one
:class:`~tooltune.errors.ConfigError` of this shape::

    configs/demo-pipeline.yaml: 2 problems:
      configs/demo-pipeline.yaml:63: eval.max_new_tokns: unknown field; did you mean 'eval.max_new_tokens'?
      configs/demo-pipeline.yaml:41: train.learning_rate: Input should be greater than 0 (got -1)

the file and line where known, the field path (pydantic's ``loc``), what is wrong and, where it
can tell, what to write instead. A value given outside the file (``--set``, a CLI option) is
named by where it came from instead of a line.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from tooltune.errors import ConfigError, DocumentError
from tooltune.safeload.text import read_text
from tooltune.safeload.yaml_loader import parse_yaml_lines

M = TypeVar("M", bound=BaseModel)
Lines = Mapping[tuple[str, ...], int]


class ConfigFile(NamedTuple):
    """A config file's top-level mapping and the line of each key (paths as in :func:`parse_yaml_lines`)."""

    path: Path
    data: dict[str, Any]
    lines: Lines


def read_config_file(path: str | Path) -> ConfigFile:
    """Read the YAML mapping at ``path`` (an empty file is an empty mapping); a missing,
    unreadable or malformed file, or one that is not a mapping, raises :class:`ConfigError`."""
    path = Path(path)
    try:
        data, lines = parse_yaml_lines(read_text(path), path)
    except DocumentError as e:
        raise ConfigError(str(e)) from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of field: value at the top level, got {type(data).__name__}.")
    return ConfigFile(path, data, lines)


def load_config(model: type[M], path: str | Path, *,
                prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> M:
    """Read the YAML file ``path`` into ``model``; ``prepare`` reshapes the mapping first (a
    ``defaults:`` block, a wrapping key). Raises :class:`ConfigError` listing every problem."""
    file = read_config_file(path)
    data = prepare(file.data) if prepare is not None else file.data
    return validate_config(model, data, source=file.path, lines=file.lines)


def validate_config(model: type[M], data: Any, *, source: str | Path, lines: Lines | None = None,
                    origins: Mapping[tuple[str, ...], str] | None = None, problems: Sequence[str] = ()) -> M:
    """``model.model_validate(data)``, or one :class:`ConfigError` listing every problem.

    ``source`` names the file (or, without one, the config: ``"data config"``); ``lines`` gives
    the line of each key in it; ``origins`` names where a value given outside the file came from
    (``{("epochs",): "from --set epochs=lots"}``), shown after its problem instead of a line;
    ``problems`` found before validation (an unreadable ``--set``) are listed first."""
    found = list(problems)
    try:
        config = model.model_validate(data)
    except ValidationError as e:
        found += [_describe(model, err, source, lines or {}, origins or {}) for err in e.errors()]
    if found:
        noun = "problem" if len(found) == 1 else "problems"
        raise ConfigError(f"{source}: {len(found)} {noun}:\n" + "\n".join(f"  {p}" for p in found))
    return config


def _describe(model: type[BaseModel], err: Any, source: str | Path, lines: Lines,
              origins: Mapping[tuple[str, ...], str]) -> str:
    loc = tuple(str(part) for part in err["loc"])
    field = ".".join(loc) or "(config)"
    origin = _deepest(origins, loc)
    line = None if origin is not None else _deepest(lines, loc)
    where = f"{source}:{line}: " if line is not None else ""
    if err["type"] == "extra_forbidden":
        known = _fields_at(model, err["loc"][:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = (f"; did you mean {'.'.join((*loc[:-1], close[0]))!r}?" if close else
                f"; known fields: {', '.join(known)}." if known else "")
        return f"{where}{field}: unknown field{hint}{_from(origin)}"
    if err["type"] == "missing":
        what = (_description(model, err["loc"]) or "").rstrip(".")
        return f"{where}{field}: required; add it{f' ({what})' if what else ''}.{_from(origin)}"
    message = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    shown = loc and not isinstance(value, (dict, BaseModel)) and not _is_secret(model, err["loc"])
    got = f" (got {_short(value)})" if shown else ""
    return f"{where}{field}: {message}{got}{_from(origin)}"


def _from(origin: str | None) -> str:
    return f" [{origin}]" if origin else ""


def _deepest(found: Mapping[tuple[str, ...], Any], loc: tuple[str, ...]) -> Any:
    for end in range(len(loc), 0, -1):
        if loc[:end] in found:
            return found[loc[:end]]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- what the model says about a field path: its fields, description, type ---------------------


def _annotation_at(model: type[BaseModel], loc: Sequence[Any]) -> Any:
    """The annotation of the field at ``loc`` (through nested models, lists and dicts); None when unknown."""
    kind: Any = model
    for part in loc:
        kind = next((found for option in _options(kind) if (found := _step(option, part)) is not None), None)
        if kind is None:
            return None
    return kind


def _step(option: Any, part: Any) -> Any:
    if isinstance(option, type) and issubclass(option, BaseModel):
        info = option.model_fields.get(str(part))
        return info.annotation if info is not None else None
    origin, args = typing.get_origin(option), typing.get_args(option)
    if origin in (list, tuple, set, frozenset, Sequence) and args and isinstance(part, int):
        return args[0]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


def _options(kind: Any) -> list[Any]:
    """``X | Y | None`` and ``Annotated[X, ...]`` as the types they allow."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return [o for arg in typing.get_args(kind) for o in _options(arg)]
    if origin is typing.Annotated:
        return _options(typing.get_args(kind)[0])
    return [kind]


def _fields_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    kind = model if not loc else _annotation_at(model, loc)
    for option in _options(kind):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return list(option.model_fields)
    return []


def _description(model: type[BaseModel], loc: Sequence[Any]) -> str | None:
    if not loc:
        return None
    for option in _options(model if len(loc) == 1 else _annotation_at(model, loc[:-1])):
        if isinstance(option, type) and issubclass(option, BaseModel) and str(loc[-1]) in option.model_fields:
            return option.model_fields[str(loc[-1])].description
    return None


def _is_secret(model: type[BaseModel], loc: Sequence[Any]) -> bool:
    return SecretStr in _options(_annotation_at(model, loc))
