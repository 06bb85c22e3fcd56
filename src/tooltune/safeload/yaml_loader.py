"""The one YAML loader: PyYAML's ``SafeLoader`` with a depth limit, an alias-expansion budget
and a cap on number length, and with dates left as the text written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tooltune.errors import DocumentError
from tooltune.safeload import limits
from tooltune.safeload.text import read_text


class YAMLLimitError(yaml.MarkedYAMLError):
    """The document broke a parsing limit; ``problem_mark`` is where."""


class SafeYAMLLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses what would blow up later, while the document is composed.

    PyYAML shares the node an alias points at, so composing a billion-laughs file is cheap; the
    cost comes later, in whatever walks the result (validation, ``json.dumps``, a deep copy).
    Each node's expanded size is therefore counted as it is composed (an alias adds the whole
    size of its anchor), and the total may not pass the budget in :mod:`tooltune.safeload.limits`.
    An alias to a node still being composed would make a cycle that no later walk survives, so it
    is refused too. Timestamps stay strings: ``2024-01-01`` in a query or an argument must stay
    the text the user typed; typed config fields parse it themselves."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._depth = 0
        self._own_nodes = 0
        self._expanded = 0
        self._sizes: dict[int, int] = {}

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # The scanner looks ahead over every open '[' for a possible simple key, in time
        # quadratic in the nesting: 100 KB of '[' took 5 s before the composer saw any of it.
        if self.flow_level >= limits.MAX_DEPTH:
            raise YAMLLimitError(None, None, f"nested deeper than {limits.MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise YAMLLimitError(None, None, f"alias *{event.anchor} is used inside its own anchor "
                                     "(a structure that contains itself)", event.start_mark)
            self._expanded += size
            budget = max(limits.ALIAS_BUDGET_MIN_NODES, limits.ALIAS_BUDGET_FACTOR * self._own_nodes)
            if self._expanded > budget:
                raise YAMLLimitError(None, None, f"aliases expand the document past {budget} nodes (anchors "
                                     "nested inside anchors multiply); write the repeated parts out, or use "
                                     "fewer aliases", event.start_mark)
            return node
        collection = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        if collection:
            self._depth += 1
            if self._depth > limits.MAX_DEPTH:
                raise YAMLLimitError(None, None, f"nested deeper than {limits.MAX_DEPTH} levels",
                                     self.peek_event().start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            if collection:
                self._depth -= 1
        self._own_nodes += 1
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in _children(node))
        return node


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _construct_number(kind: str):
    base = getattr(yaml.SafeLoader, f"construct_yaml_{kind}")

    def construct(loader: SafeYAMLLoader, node: yaml.ScalarNode) -> Any:
        if len(node.value) > limits.MAX_NUMBER_CHARS:
            raise YAMLLimitError(None, None, f"a number of {len(node.value)} characters; at most "
                                 f"{limits.MAX_NUMBER_CHARS} are read", node.start_mark)
        return base(loader, node)

    return construct


SafeYAMLLoader.add_constructor("tag:yaml.org,2002:int", _construct_number("int"))
SafeYAMLLoader.add_constructor("tag:yaml.org,2002:float", _construct_number("float"))
SafeYAMLLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str, loader: type[SafeYAMLLoader] = SafeYAMLLoader) -> Any:
    """``yaml.safe_load`` with the limits: raises ``yaml.YAMLError`` (a :class:`YAMLLimitError`
    for a broken limit), so callers that handle PyYAML's errors handle these too."""
    return yaml.load(text, Loader=loader)  # noqa: S506  # a SafeLoader subclass


def read_yaml(path: str | Path, loader: type[SafeYAMLLoader] = SafeYAMLLoader) -> Any:
    """Read and parse the YAML file ``path``; any failure raises :class:`DocumentError` naming
    ``file:line:column`` and what to fix."""
    path = Path(path)
    return parse_yaml(read_text(path), path, loader)


def parse_yaml(text: str, source: str | Path, loader: type[SafeYAMLLoader] = SafeYAMLLoader) -> Any:
    """:func:`load_yaml` whose errors are :class:`DocumentError` naming ``source:line:column``."""
    with _document_errors(source):
        return load_yaml(text, loader)


def parse_yaml_lines(text: str, source: str | Path) -> tuple[Any, dict[tuple[str, ...], int]]:
    """:func:`parse_yaml`, plus the 1-based line of every mapping key and sequence item, keyed by
    its path (``("train", "lora", "r")``; items by their index as text), so that an error found
    later, in validation, can name the line it comes from."""
    with _document_errors(source):
        loader = SafeYAMLLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    lines: dict[tuple[str, ...], int] = {}
    stack: list[tuple[Any, tuple[str, ...]]] = [(node, ())]
    while stack:  # the loader has bounded depth and alias expansion, so this walk is bounded too
        current, path = stack.pop()
        if isinstance(current, yaml.MappingNode):
            children = [((*path, str(key.value)), key, value) for key, value in current.value]
        elif isinstance(current, yaml.SequenceNode):
            children = [((*path, str(i)), item, item) for i, item in enumerate(current.value)]
        else:
            continue
        for here, marker, child in children:
            lines.setdefault(here, marker.start_mark.line + 1)
            stack.append((child, here))
    return data, lines


@contextmanager
def _document_errors(source: str | Path) -> Iterator[None]:
    try:
        yield
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise DocumentError(f"{where}: not valid YAML: {problem}. Fix the document at that line.") from e
    except yaml.YAMLError as e:
        raise DocumentError(f"{source}: not valid YAML: {e}.") from e
