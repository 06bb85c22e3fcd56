"""Write a :class:`~tooltune.graph.parse.CodeGraph` into a graph database and query it back.

One openCypher dialect for every backend: the embedded FalkorDB (default), a FalkorDB server
(``redis://host:port``), or Neo4j / Memgraph through the official ``neo4j`` driver
(``bolt://…``, ``neo4j://…``). Every node carries ``graph`` (the graph's name) and ``key``, so
several projects can share one Neo4j database and a rebuild replaces exactly one graph.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse, urlunparse

from tooltune.errors import ConfigError
from tooltune.graph.embedded import DEFAULT_GRAPH_DIR, GraphDatabaseError, embedded_falkordb
from tooltune.graph.parse import NODE_LABELS, CodeGraph

BATCH = 500
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
REDIS_SCHEMES = ("redis", "rediss", "falkor", "falkors", "unix")


class GraphStore:
    """Cypher over one backend; ``rows`` gives each result row as a dict keyed by the RETURN aliases."""

    def __init__(self, run: Any, backend: str, graph: str) -> None:
        self._run, self.backend, self.graph = run, backend, graph

    def rows(self, cypher: str, **params: Any) -> list[dict[str, Any]]:
        return self._run(cypher, {"graph": self.graph, **params})

    def counts(self) -> dict[str, int]:
        """Nodes per label and edges per type in this graph (labels and types absent count 0)."""
        out = {label: 0 for label in NODE_LABELS}
        for row in self.rows("MATCH (n) WHERE n.graph = $graph RETURN labels(n) AS labels, count(n) AS n"):
            for label in row["labels"]:
                out[label] = out.get(label, 0) + row["n"]
        for kind in ("CONTAINS", "CALLS", "INHERITS"):
            found = self.rows(f"MATCH (a)-[r:{kind}]->(b) WHERE a.graph = $graph RETURN count(r) AS n")
            out[kind] = found[0]["n"] if found else 0
        return out


@contextmanager
def open_store(graph: str = "code", *, url: str | None = None, data_dir: str | Path | None = None) -> Iterator[GraphStore]:
    """The graph database named by ``url`` (None: the embedded FalkorDB over ``data_dir``)."""
    if not graph or not graph.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"graph: {graph!r} is not a usable graph name; use letters, digits, - and _ (e.g. code).")
    if url is None:
        with embedded_falkordb(data_dir or DEFAULT_GRAPH_DIR) as client:
            yield _falkor_store(client, graph, "falkordb-embedded")
        return
    scheme = urlparse(url).scheme
    if scheme in BOLT_SCHEMES:
        with _neo4j(url) as run:
            yield GraphStore(run, "neo4j", graph)
        return
    if scheme in REDIS_SCHEMES:
        from falkordb import FalkorDB

        import redis

        try:
            client = FalkorDB.from_url(url)  # the client asks the server about its mode right away
            client.connection.ping()
        except redis.exceptions.RedisError as e:
            raise GraphDatabaseError(f"--graph-url {url}: cannot reach the FalkorDB server: {e}") from e
        try:
            yield _falkor_store(client, graph, "falkordb")
        finally:
            client.close()
        return
    raise ConfigError(f"--graph-url: unknown scheme {scheme!r} in {url!r}; use bolt://host:7687 (Neo4j, Memgraph), "
                      "redis://host:6379 (a FalkorDB server) or leave it out for the embedded database.")


def _falkor_store(client: Any, graph: str, backend: str) -> GraphStore:
    # One FalkorDB graph per database name; nodes still carry `graph` so the Cypher is shared.
    handle = client.select_graph(f"tooltune_{graph}")

    def run(cypher: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        import redis

        try:
            result = handle.query(cypher, params)
        except redis.exceptions.ResponseError as e:
            raise GraphDatabaseError(f"FalkorDB rejected the query: {e}\n{cypher}") from e
        names = [h[1] if isinstance(h, (list, tuple)) else h for h in result.header]
        return [dict(zip(names, row)) for row in result.result_set]

    return GraphStore(run, backend, graph)


@contextmanager
def _neo4j(url: str) -> Iterator[Any]:
    parsed = urlparse(url)
    auth = (parsed.username, parsed.password or "") if parsed.username else None
    # Credentials go to the driver as auth, never in the URL it logs and raises with, nor in ours.
    plain = urlunparse(parsed._replace(netloc=parsed.netloc.rpartition("@")[2]))
    try:
        import neo4j
    except ImportError:
        raise ConfigError(f"--graph-url {plain}: the Neo4j / Memgraph backend needs the neo4j driver: pip install 'tooltune[neo4j]'.") from None
    driver = neo4j.GraphDatabase.driver(plain, auth=auth)
    try:
        driver.verify_connectivity()
    except Exception as e:  # the driver raises several unrelated types for "cannot reach"
        driver.close()
        raise GraphDatabaseError(f"--graph-url {plain}: cannot connect: {e}") from e

    def run(cypher: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        records, _, _ = driver.execute_query(cypher, params)
        return [record.data() for record in records]

    try:
        yield run
    finally:
        driver.close()


def write_graph(store: GraphStore, code: CodeGraph) -> dict[str, int]:
    """Replace ``store``'s graph with ``code``; returns the counts read back from the database."""
    store.rows("MATCH (n) WHERE n.graph = $graph DETACH DELETE n")
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node in code.nodes.values():
        by_label[node.label].append({"key": node.key, "props": {**node.props, "root": code.root} if node.label == "CodeFile" else node.props})
    for label, rows in by_label.items():
        _index(store, label)
        for batch in _batches(rows):
            store.rows(f"UNWIND $rows AS r CREATE (n:{label}) SET n = r.props, n.key = r.key, n.graph = $graph", rows=batch)
    by_kind: dict[tuple[str, str, str], list[dict[str, str]]] = defaultdict(list)
    for edge in code.edges:
        by_kind[(edge.type, code.label_of(edge.src), code.label_of(edge.dst))].append({"src": edge.src, "dst": edge.dst})
    for (kind, src, dst), rows in by_kind.items():
        for batch in _batches(rows):
            store.rows(
                f"UNWIND $rows AS r MATCH (a:{src} {{key: r.src, graph: $graph}}), (b:{dst} {{key: r.dst, graph: $graph}}) "
                f"CREATE (a)-[:{kind}]->(b)", rows=batch)
    return store.counts()


def _index(store: GraphStore, label: str) -> None:
    # Edges are matched by key: without an index each MATCH scans every node of the label.
    if store.backend == "neo4j":
        store.rows(f"CREATE INDEX tooltune_{label.lower()}_key IF NOT EXISTS FOR (n:{label}) ON (n.key)")
        return
    existing = {(row["label"], prop) for row in store.rows("CALL db.indexes() YIELD label, properties RETURN label, properties")
                for prop in row["properties"]}
    if (label, "key") not in existing:
        store.rows(f"CREATE INDEX FOR (n:{label}) ON (n.key)")


def _batches(rows: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start:start + BATCH]
