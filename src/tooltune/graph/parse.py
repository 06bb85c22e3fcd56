"""Parse a Python codebase with the stdlib ``ast`` into a code graph (nodes and edges, in memory).

Node labels and what they carry:

    CodeFile   path (relative, POSIX), module, docstring, lines
    Class      qualname (``module.Class``), name, path, line, end_line, docstring, bases
    Function   module-level functions: qualname, name, path, line, end_line, docstring,
               signature, return_type, is_async, decorators, code (the source without docstring)
    Method     functions defined in a class: the Function fields plus class_name
    Parameter  owner (qualname of its function), name, annotation, default, position, kind

Edges: ``CONTAINS`` (CodeFile → Class / Function, Class → Method / nested Class, Function /
Method → Parameter), ``CALLS`` (Function / Method → Function / Method / Class, resolved inside the
project only), ``INHERITS`` (Class → Class, bases defined in the project).

Calls are resolved statically and conservatively: ``name()`` to a function or class of the same
module or one imported with ``from … import``; ``self.m()`` / ``cls.m()`` to a method of the
enclosing class or an in-project base; ``Name.m()`` to a method of the project class ``Name``;
``mod.f()`` to a function of an imported project module. Anything else (library calls, calls on
arbitrary objects) is not an edge: a wrong edge would be worse than a missing one.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltune.errors import DataError

NODE_LABELS = ("CodeFile", "Class", "Function", "Method", "Parameter")
EDGE_TYPES = ("CONTAINS", "CALLS", "INHERITS")
MAX_CODE = 4000
SKIPPED_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", "build", "dist", ".tox", ".mypy_cache"}


@dataclass
class Node:
    label: str
    key: str
    """Unique within the graph: the path for files, the qualname for code, ``owner(param)`` for parameters."""
    props: dict[str, Any]


@dataclass
class Edge:
    type: str
    src: str
    dst: str


@dataclass
class CodeGraph:
    root: str
    """Absolute path of the parsed project (CodeFile paths are relative to it)."""
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Files that could not be parsed, with the reason (``path: SyntaxError …``)."""

    def counts(self) -> dict[str, int]:
        """Nodes per label and edges per type (every label and type present, zero included)."""
        out = {label: 0 for label in (*NODE_LABELS, *EDGE_TYPES)}
        for node in self.nodes.values():
            out[node.label] += 1
        for edge in self.edges:
            out[edge.type] += 1
        return out

    def label_of(self, key: str) -> str:
        return self.nodes[key].label


def parse_codebase(root: str | Path) -> CodeGraph:
    """The code graph of every ``*.py`` file under ``root`` (virtualenvs, caches and build folders
    skipped). Files with syntax errors are listed in ``skipped`` rather than stopping the parse."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder. Give the root of a Python project (e.g. the repository checkout).")
    graph = CodeGraph(root=str(root))
    prefix = _package_prefix(root)
    modules: list[_Module] = []
    for path in sorted(_python_files(root)):
        rel = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        except (SyntaxError, UnicodeDecodeError, ValueError) as e:
            graph.skipped.append(f"{rel}: {type(e).__name__}: {e}")
            continue
        modules.append(_collect(graph, rel, tree, prefix))
    by_name = {m.name: m for m in modules}
    for module in modules:
        _link(graph, module, by_name)
    return graph


def _python_files(root: Path):
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if not any(p in SKIPPED_DIRS or p.endswith(".egg-info") for p in parts[:-1]):
            yield path


def _package_prefix(root: Path) -> list[str]:
    """The dotted package ``root`` itself is part of (``src/tooltune`` → ``["tooltune"]``), so that
    absolute imports inside it resolve when only the package folder is parsed."""
    names: list[str] = []
    folder = root
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        names.insert(0, folder.name)
        folder = folder.parent
    return names


def module_name(rel: str, prefix: list[str] | None = None) -> str:
    """``src/pkg/mod.py`` → ``pkg.mod`` (a leading ``src/`` layout folder dropped, ``__init__`` → the
    package); ``prefix`` is the package the parsed root itself belongs to."""
    parts = [*(prefix or []), *rel.removesuffix(".py").split("/")]
    if parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


@dataclass
class _Module:
    name: str
    path: str
    tree: ast.Module
    defs: dict[str, str] = field(default_factory=dict)
    """Top-level name → qualname of a class or function defined here."""
    imports: dict[str, str] = field(default_factory=dict)
    """Local name → dotted target (``from a.b import c as d`` gives ``d → a.b.c``)."""


def _collect(graph: CodeGraph, rel: str, tree: ast.Module, prefix: list[str]) -> _Module:
    module = _Module(module_name(rel, prefix), rel, tree)
    graph.nodes[rel] = Node("CodeFile", rel, {
        "path": rel, "module": module.name, "docstring": ast.get_docstring(tree) or "",
        "lines": max((getattr(n, "end_lineno", 0) or 0 for n in tree.body), default=0),
    })
    package = module.name if rel.endswith("__init__.py") else module.name.rpartition(".")[0]
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            base = _absolute_import(stmt, package)
            for alias in stmt.names:
                module.imports[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                module.imports[alias.asname or alias.name.partition(".")[0]] = alias.name if alias.asname else alias.name.partition(".")[0]
        elif isinstance(stmt, ast.ClassDef):
            module.defs[stmt.name] = _add_class(graph, stmt, module, rel, parent_key=rel, prefix=module.name)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            module.defs[stmt.name] = _add_function(graph, stmt, rel, parent_key=rel, prefix=module.name, class_name=None)
    return module


def _absolute_import(stmt: ast.ImportFrom, package: str) -> str:
    if not stmt.level:
        return stmt.module or ""
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (stmt.level - 1)] if stmt.level > 1 else parts
    return ".".join([*base, *([stmt.module] if stmt.module else [])])


def _add_class(graph: CodeGraph, node: ast.ClassDef, module: _Module, rel: str, *, parent_key: str, prefix: str) -> str:
    qualname = f"{prefix}.{node.name}"
    graph.nodes[qualname] = Node("Class", qualname, {
        "qualname": qualname, "name": node.name, "path": rel, "line": node.lineno, "end_line": node.end_lineno,
        "docstring": ast.get_docstring(node) or "", "bases": [ast.unparse(b) for b in node.bases],
    })
    graph.edges.append(Edge("CONTAINS", parent_key, qualname))
    for stmt in node.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _add_function(graph, stmt, rel, parent_key=qualname, prefix=qualname, class_name=node.name)
        elif isinstance(stmt, ast.ClassDef):
            _add_class(graph, stmt, module, rel, parent_key=qualname, prefix=qualname)
    return qualname


def _add_function(graph: CodeGraph, node: ast.FunctionDef | ast.AsyncFunctionDef, rel: str, *,
                  parent_key: str, prefix: str, class_name: str | None) -> str:
    qualname = f"{prefix}.{node.name}"
    props: dict[str, Any] = {
        "qualname": qualname, "name": node.name, "path": rel, "line": node.lineno, "end_line": node.end_lineno,
        "docstring": ast.get_docstring(node) or "", "signature": _signature(node),
        "return_type": ast.unparse(node.returns) if node.returns else "",
        "is_async": isinstance(node, ast.AsyncFunctionDef), "decorators": [ast.unparse(d) for d in node.decorator_list],
        "code": _code_without_docstring(node),
    }
    if class_name is not None:
        props["class_name"] = class_name
    graph.nodes[qualname] = Node("Method" if class_name else "Function", qualname, props)
    graph.edges.append(Edge("CONTAINS", parent_key, qualname))
    for param in _parameters(node, qualname, is_method=class_name is not None):
        graph.nodes[param.key] = param
        graph.edges.append(Edge("CONTAINS", qualname, param.key))
    return qualname


def _code_without_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The function re-printed without its docstring (what an instruction example shows), capped
    at ``MAX_CODE`` characters so one huge function cannot bloat the graph."""
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    bare = type(node)(**{**{f: getattr(node, f) for f in node._fields}, "body": body or [ast.Expr(ast.Constant(...))]})
    text = ast.unparse(ast.fix_missing_locations(bare))
    return text if len(text) <= MAX_CODE else text[:MAX_CODE] + "\n    ..."


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef, owner: str, *, is_method: bool) -> list[Node]:
    """Parameter nodes in declaration order; a method's ``self`` / ``cls`` is not a parameter a
    caller passes, so it is left out (static methods keep their first argument)."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: dict[str, ast.expr] = dict(zip([a.arg for a in positional][len(positional) - len(args.defaults):], args.defaults))
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    entries: list[tuple[ast.arg, str]] = [(a, "positional_only") for a in args.posonlyargs]
    entries += [(a, "positional_or_keyword") for a in args.args]
    if args.vararg:
        entries.append((args.vararg, "var_positional"))
    entries += [(a, "keyword_only") for a in args.kwonlyargs]
    if args.kwarg:
        entries.append((args.kwarg, "var_keyword"))
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if is_method and not static and entries and entries[0][1] != "var_positional" and entries[0][0].arg in ("self", "cls"):
        entries = entries[1:]
    out = []
    for position, (arg, kind) in enumerate(entries):
        out.append(Node("Parameter", f"{owner}({arg.arg})", {
            "owner": owner, "name": arg.arg, "position": position, "kind": kind,
            "annotation": ast.unparse(arg.annotation) if arg.annotation else "",
            "default": ast.unparse(defaults[arg.arg]) if arg.arg in defaults else "",
        }))
    return out


def _link(graph: CodeGraph, module: _Module, modules: dict[str, _Module]) -> None:
    """INHERITS and CALLS edges of one module, resolved against every parsed module."""
    resolve = _Resolver(graph, module, modules)
    for cls_node, cls_key in _classes(module.tree, module.name):
        for base in cls_node.bases:
            target = resolve.name(ast.unparse(base))
            if target and graph.nodes[target].label == "Class":
                graph.edges.append(Edge("INHERITS", cls_key, target))
    seen: set[tuple[str, str]] = set()
    for func, key, class_key in _functions(module.tree, module.name):
        for call in (n for n in ast.walk(func) if isinstance(n, ast.Call)):
            target = resolve.call(call.func, class_key)
            if target and target != key and (key, target) not in seen:
                seen.add((key, target))
                graph.edges.append(Edge("CALLS", key, target))


def _classes(tree: ast.AST, prefix: str):
    for stmt in getattr(tree, "body", []):
        if isinstance(stmt, ast.ClassDef):
            key = f"{prefix}.{stmt.name}"
            yield stmt, key
            yield from _classes(stmt, key)


def _functions(tree: ast.AST, prefix: str, class_key: str | None = None):
    """(function node, qualname, enclosing class qualname) for every graph function and method;
    calls inside nested helper functions count for the function that defines them."""
    for stmt in getattr(tree, "body", []):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield stmt, f"{prefix}.{stmt.name}", class_key
        elif isinstance(stmt, ast.ClassDef):
            yield from _functions(stmt, f"{prefix}.{stmt.name}", f"{prefix}.{stmt.name}")


class _Resolver:
    def __init__(self, graph: CodeGraph, module: _Module, modules: dict[str, _Module]) -> None:
        self.graph, self.module, self.modules = graph, module, modules

    def name(self, dotted: str) -> str | None:
        """The graph key a (possibly dotted) name in this module refers to, or None."""
        head, _, rest = dotted.partition(".")
        if head in self.module.defs:
            target = self.module.defs[head]
        elif head in self.module.imports:
            target = self._imported(self.module.imports[head])
        else:
            return None
        if target is None:
            return None
        for part in rest.split(".") if rest else []:
            target = self._member(target, part)
            if target is None:
                return None
        return target

    def _imported(self, dotted: str) -> str | None:
        if dotted in self.graph.nodes:
            return dotted
        if dotted in self.modules:
            return "module:" + dotted
        # A name re-exported by a package __init__ (``from pkg import f`` where pkg/__init__ imports f).
        package, _, name = dotted.rpartition(".")
        if package in self.modules and name in self.modules[package].imports:
            return self._imported(self.modules[package].imports[name]) if self.modules[package].imports[name] != dotted else None
        return None

    def _member(self, target: str, part: str) -> str | None:
        if target.startswith("module:"):
            mod = self.modules[target.removeprefix("module:")]
            if part in mod.defs:
                return mod.defs[part]
            return self._imported(f"{mod.name}.{part}") if f"{mod.name}.{part}" in self.graph.nodes else None
        if self.graph.nodes[target].label == "Class":
            return self._method(target, part)
        return None

    def _method(self, class_key: str, name: str, depth: int = 0) -> str | None:
        """``name`` defined on ``class_key`` or, failing that, on an in-project base (MRO order)."""
        own = f"{class_key}.{name}"
        if own in self.graph.nodes and self.graph.nodes[own].label in ("Method", "Class"):
            return own
        if depth > 20:
            return None
        return self._base_method(class_key, name, depth)

    def _base_method(self, class_key: str, name: str, depth: int = 0) -> str | None:
        owner_module = self.modules.get(_module_of(class_key, self.modules))
        for base in self.graph.nodes[class_key].props["bases"]:
            base_key = _Resolver(self.graph, owner_module, self.modules).name(base) if owner_module else None
            if base_key and base_key in self.graph.nodes and self.graph.nodes[base_key].label == "Class":
                found = self._method(base_key, name, depth + 1)
                if found:
                    return found
        return None

    def call(self, func: ast.expr, class_key: str | None) -> str | None:
        if isinstance(func, ast.Name):
            target = self.name(func.id)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("self", "cls"):
            target = self._method(class_key, func.attr) if class_key else None
        elif isinstance(func, ast.Attribute) and _is_super(func.value):
            target = self._base_method(class_key, func.attr) if class_key else None
        elif isinstance(func, ast.Attribute):
            try:
                target = self.name(ast.unparse(func))
            except (ValueError, TypeError):
                return None
        else:
            return None
        if target is None or target.startswith("module:"):
            return None
        return target if self.graph.nodes[target].label in ("Function", "Method", "Class") else None


def _is_super(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _module_of(qualname: str, modules: dict[str, _Module]) -> str:
    """The longest module name that prefixes ``qualname``."""
    parts = qualname.split(".")
    for i in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return ""
