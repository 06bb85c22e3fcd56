"""The package reads bottom-up as the pipeline: nothing imports from a room above it, no room
imports itself back through another, and the exceptions that exist today are listed with their
reason, so that the list can only shrink.

A room is a top-level package or module of ``src/tooltune`` (``tools``, ``runtime``, ``cli``, ...).
Every ``import tooltune.x`` and ``from tooltune.x import y`` counts, at module level and inside
functions (a lazy import still ties the two rooms together; it only hides the cycle until run
time), and under ``if TYPE_CHECKING`` too.

A test over :mod:`ast` and networkx (already installed with torch) rather than import-linter
(on PyPI, a new dev dependency plus its grimp graph builder): the graph is ~20 lines here, the
layer order, the exceptions with their reasons and the module-cycle list sit in one Python file,
and it runs in ``make test`` with the rest of the suite, no separate ``lint-imports`` step.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "tooltune"

# Bottom-up. A room may import from the rooms listed before it, never from those after it.
LAYERS = [
    "errors",     # the exception tree: every room raises from it
    "safeload",   # the one YAML loader and JSON reader with parsing limits: everything reads files through it
    "httpguard",  # what the HTTP servers refuse before any work; imports nothing of tooltune
    "tools",      # catalog, ToolCall, discovery, argument validation: what a tool and a call are
    "formats",    # render and parse calls; needs Tool and ToolCall
    "data",       # examples, synthesis, quality, splits, io
    "demo",       # demo MCP services; their call chains are data.sequences, and eval runs them live
    "runtime",    # model names, pypi: models, machine and precision, loading, generation
    "eval",       # score any runtime model on data (a base, an HF id, an export): it needs no training
    "train",      # train on data; the prompt backend scores with eval's matcher
    "export",     # write merged / GGUF / ONNX exports of a trained model
    "registry",   # versions, evaluations, gates; stores what train, eval and export produce
    "serve",      # the OpenAI-compatible server over runtime models and the registry
    "api",        # the job API and its worker, over train, eval and the registry
    "collect",    # the orchestrator that pulls publishers; only needs data and tools
    "publish",    # a service's publisher
    "graph",      # code knowledge graph and examples from it
    "ops",        # tooltune status / plan: report on everything below
    "pipeline",   # the whole loop: data → train → eval → gate → register
    "cli",        # the `tooltune` command: its app, console and command groups, a thin layer over all of the above
    "tooltune",   # the package's __init__: the public API re-exports names from the rooms below
]

# (importer module, imported module, reason): upward imports that exist today. A fix removes its
# entry; the test fails on an entry that no longer occurs.
KNOWN = [
]

# Import cycles between modules (strongly connected components of the module graph), as they are
# today; each set is one cycle to break. The test fails on a new cycle and on a listed one that is gone.
KNOWN_CYCLES: list[set[str]] = []


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The tooltune modules ``name`` imports anywhere in its body (``from pkg import mod`` → ``pkg.mod``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _room(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_every_room_has_a_place_in_the_layers():
    rooms = {_room(module) for module in _graph()}
    assert rooms == set(LAYERS), f"add new rooms to LAYERS where they belong: {sorted(rooms ^ set(LAYERS))}"


def test_nothing_imports_from_a_higher_room():
    rank = {room: i for i, room in enumerate(LAYERS)}
    upward = {(importer, imported) for importer, targets in _graph().items() for imported in targets
              if rank[_room(imported)] > rank[_room(importer)]}
    known = {(importer, imported) for importer, imported, _ in KNOWN}
    new = sorted(upward - known)
    assert not new, "imports from a higher room (move the shared piece down, or pass it in from the caller):\n" + \
        "\n".join(f"  {a} → {b}" for a, b in new)
    gone = sorted(known - upward)
    assert not gone, f"fixed: remove from KNOWN: {gone}"


def test_rooms_import_each_other_only_downward_besides_known():
    """No cycle between rooms once the KNOWN upward imports are set aside (a cycle needs an upward edge)."""
    known = {(importer, imported) for importer, imported, _ in KNOWN}
    rooms: dict[str, set[str]] = defaultdict(set)
    for importer, targets in _graph().items():
        for imported in targets:
            if (importer, imported) not in known and _room(imported) != _room(importer):
                rooms[_room(importer)].add(_room(imported))
    cycles = [cycle for cycle in _cycles(rooms) if len(cycle) > 1]
    assert not cycles, f"rooms that import each other: {cycles}"


def test_module_import_cycles_are_the_known_ones():
    cycles = [cycle for cycle in _cycles(_graph()) if len(cycle) > 1]
    new = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert not new, f"new import cycles between modules: {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in cycles]
    assert not gone, f"broken cycles: remove from KNOWN_CYCLES: {gone}"


def test_the_check_sees_lazy_relative_and_type_checking_imports(tmp_path):
    (tmp_path / "pkg").mkdir()
    source = ("from __future__ import annotations\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
              "    from tooltune.train import sft\n\ndef f():\n    import tooltune.eval.match\n    from . import b\n")
    (tmp_path / "pkg" / "a.py").write_text(source)
    modules = {"tooltune.x.a": Path(), "tooltune.x.b": Path(), "tooltune.train.sft": Path(), "tooltune.eval.match": Path()}
    found = _imports("tooltune.x.a", tmp_path / "pkg" / "a.py", modules)
    assert found == {"tooltune.train.sft", "tooltune.eval.match", "tooltune.x.b"}



def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components: each one of more than one node is an import cycle."""
    return list(nx.strongly_connected_components(nx.DiGraph([(a, b) for a, targets in graph.items() for b in targets])))
