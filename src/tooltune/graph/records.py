"""Code records read back from the graph database, and their quality score.

A record is one Function, Method or Class with what the graph knows about it (docstring,
signature, parameters, callers, methods). :func:`score` rates how much a training example built
from it can teach, from four signals of equal standing in the docs (docs/code-graph.md):

    docstring   0.4   the record has a docstring
    types       0.2   share of parameters and the return value that are annotated
                      (a class: share of its methods that are fully annotated)
    parameters  0.2   the docstring names every parameter (a function without parameters
                      passes; a class passes when it has methods)
    examples    0.2   the docstring shows usage (a ``>>>`` doctest or an "Example" section)
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tooltune.graph.store import GraphStore

WEIGHTS = {"docstring": 0.4, "types": 0.2, "parameters": 0.2, "examples": 0.2}
CODE_TYPES = ("Function", "Method", "Class")


@dataclass
class Param:
    name: str
    annotation: str = ""
    default: str = ""


@dataclass
class CodeRecord:
    kind: str
    """Function, Method or Class."""
    qualname: str
    name: str
    path: str
    line: int
    end_line: int
    docstring: str = ""
    signature: str = ""
    return_type: str = ""
    class_name: str = ""
    code: str = ""
    bases: list[str] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    """A class's method signatures, in source order."""
    typed_methods: int = 0
    callers: list[str] = field(default_factory=list)
    score: float = 0.0
    signals: dict[str, float] = field(default_factory=dict)

    @property
    def display(self) -> str:
        """How a user names it: ``Registry.deploy``, ``format_cents``, ``Registry``."""
        return f"{self.class_name}.{self.name}" if self.kind == "Method" else self.name


def read_records(store: GraphStore, types: list[str]) -> tuple[str, list[CodeRecord]]:
    """``(project root, records of the given types)``, sorted by qualname, each scored."""
    root_rows = store.rows("MATCH (f:CodeFile) WHERE f.graph = $graph RETURN f.root AS root LIMIT 1")
    root = root_rows[0]["root"] if root_rows else ""
    params: dict[str, list[tuple[int, Param]]] = defaultdict(list)
    for row in store.rows("MATCH (p:Parameter) WHERE p.graph = $graph "
                          "RETURN p.owner AS owner, p.name AS name, p.annotation AS annotation, p.default AS d, p.position AS pos"):
        params[row["owner"]].append((row["pos"], Param(row["name"], row["annotation"] or "", row["d"] or "")))
    callers: dict[str, list[str]] = defaultdict(list)
    for row in store.rows("MATCH (a)-[:CALLS]->(b) WHERE a.graph = $graph RETURN a.key AS src, b.key AS dst"):
        callers[row["dst"]].append(row["src"])
    methods: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in store.rows("MATCH (c:Class)-[:CONTAINS]->(m:Method) WHERE c.graph = $graph "
                          "RETURN c.key AS cls, m.key AS key, m.signature AS signature, m.line AS line"):
        methods[row["cls"]].append(row)
    records = []
    for kind in CODE_TYPES:
        if kind not in types:
            continue
        for row in store.rows(
            f"MATCH (n:{kind}) WHERE n.graph = $graph RETURN n.key AS key, n.name AS name, n.path AS path, "
            "n.line AS line, n.end_line AS end_line, n.docstring AS docstring, n.signature AS signature, "
            "n.return_type AS return_type, n.class_name AS class_name, n.code AS code, n.bases AS bases"
        ):
            record = CodeRecord(
                kind=kind, qualname=row["key"], name=row["name"], path=row["path"], line=row["line"],
                end_line=row["end_line"], docstring=row["docstring"] or "", signature=row["signature"] or "",
                return_type=row["return_type"] or "", class_name=row["class_name"] or "", code=row["code"] or "",
                bases=list(row["bases"] or []), params=[p for _, p in sorted(params.get(row["key"], []), key=lambda t: t[0])],
                callers=sorted(callers.get(row["key"], [])),
            )
            if kind == "Class":
                own = sorted(methods.get(row["key"], []), key=lambda m: m["line"])
                record.methods = [m["signature"] for m in own]
                record.typed_methods = sum(_fully_typed([p for _, p in params.get(m["key"], [])], m["signature"]) for m in own)
            records.append(score(record))
    return root, sorted(records, key=lambda r: r.qualname)


def score(record: CodeRecord) -> CodeRecord:
    """Fill ``record.signals`` and ``record.score`` (0–1, weights in :data:`WEIGHTS`)."""
    doc = record.docstring
    if record.kind == "Class":
        types = record.typed_methods / len(record.methods) if record.methods else 0.0
        documented = 1.0 if record.methods else 0.0
    else:
        slots = len(record.params) + 1
        types = (sum(1 for p in record.params if p.annotation) + (1 if record.return_type else 0)) / slots
        documented = 1.0 if doc and all(re.search(rf"\b{re.escape(p.name)}\b", doc) for p in record.params) else 0.0
    record.signals = {
        "docstring": 1.0 if doc.strip() else 0.0,
        "types": types,
        "parameters": documented,
        "examples": 1.0 if (">>>" in doc or re.search(r"^\s*Examples?\b", doc, re.M | re.I)) else 0.0,
    }
    record.score = round(sum(WEIGHTS[k] * v for k, v in record.signals.items()), 4)
    return record


def _fully_typed(params: list[Param], signature: str) -> bool:
    return all(p.annotation for p in params) and " -> " in signature
