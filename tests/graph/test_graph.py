"""The code graph: parse a fixture project, store it in the real embedded FalkorDB (a redis-server
subprocess with the FalkorDB module), read records back, and turn them into examples that validate
against the `code` service's catalog. The counts below are worked out by hand from
tests/graph/fixture_project (see the comments), not read back from the code under test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tooltune.data.curated import load_curated
from tooltune.errors import ConfigError, DataError
from tooltune.graph.examples import FromGraphConfig, build_from_graph_config, examples_from_graph, write_curated
from tooltune.graph.parse import parse_codebase
from tooltune.graph.store import open_store, write_graph
from tooltune.tools.catalog import ToolCatalog

FIXTURE = Path(__file__).parent / "fixture_project"
FIXTURE_CATALOG = Path(__file__).parents[1] / "fixtures" / "catalogs" / "code.json"
TOOLTUNE = str(Path(sys.executable).parent / "tooltune")

# 4 files; classes Model, Order, Registry, AuditedRegistry; functions format_cents, main;
# methods Model.key, Order.__init__/key/describe, Registry.__init__/register/deploy/_log,
# AuditedRegistry.deploy/log_total; parameters without self: 2+2+1+2+1+2+1+1.
# CONTAINS = 4 file→class + 2 file→function + 10 class→method + 12 function→parameter.
# CALLS: Order.describe→Order.key, →format_cents; Registry.deploy→_log; AuditedRegistry.deploy→
# Registry.deploy (super()); log_total→format_cents; main→Registry (re-exported by shop/__init__), →Order.
EXPECTED = {"CodeFile": 4, "Class": 4, "Function": 2, "Method": 10, "Parameter": 12,
            "CONTAINS": 28, "CALLS": 7, "INHERITS": 2}


@pytest.fixture(scope="module")
def code_catalog(tmp_path_factory) -> ToolCatalog:
    """The real `code` service's catalog, discovered from its MCP server, once the service exists;
    until then the fixture catalog written from the tool signatures in issue 14."""
    from tooltune.demo import SERVICES

    if "code" not in SERVICES:
        return ToolCatalog.load(FIXTURE_CATALOG)
    from tooltune.tools.discover import discover_mcp_stdio

    state = tmp_path_factory.mktemp("code-service")
    return discover_mcp_stdio(f"{TOOLTUNE} demo-server --service code --data-dir {state}", timeout=180)


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("graphdb")
    with open_store("fixture", data_dir=folder) as store:
        write_graph(store, parse_codebase(FIXTURE))
    return folder


def test_parse_counts_every_node_label_and_edge_type_of_the_fixture():
    code = parse_codebase(FIXTURE)
    assert code.counts() == EXPECTED
    assert code.skipped == []
    calls = {(e.src, e.dst) for e in code.edges if e.type == "CALLS"}
    assert ("shop.registry.AuditedRegistry.deploy", "shop.registry.Registry.deploy") in calls
    assert ("scripts.run.main", "shop.registry.Registry") in calls
    inherits = {(e.src, e.dst) for e in code.edges if e.type == "INHERITS"}
    assert inherits == {("shop.models.Order", "shop.models.Model"), ("shop.registry.AuditedRegistry", "shop.registry.Registry")}
    deploy = code.nodes["shop.registry.Registry.deploy"].props
    assert deploy["signature"] == "def deploy(self, key: str, *, dry_run: bool=False) -> bool"
    assert (deploy["path"], deploy["line"], deploy["end_line"], deploy["return_type"]) == ("shop/registry.py", 18, 28, "bool")
    dry_run = code.nodes["shop.registry.Registry.deploy(dry_run)"].props
    assert (dry_run["kind"], dry_run["annotation"], dry_run["default"]) == ("keyword_only", "bool", "False")
    assert "Deploy the model" not in deploy["code"] and "self._log(key)" in deploy["code"]


def test_parse_lists_files_with_syntax_errors_and_refuses_a_missing_folder(tmp_path):
    (tmp_path / "ok.py").write_text("def f():\n    return 1\n")
    (tmp_path / "broken.py").write_text("def f(:\n")
    code = parse_codebase(tmp_path)
    assert code.counts()["Function"] == 1
    assert len(code.skipped) == 1 and code.skipped[0].startswith("broken.py: SyntaxError")
    with pytest.raises(DataError, match="not a folder"):
        parse_codebase(tmp_path / "missing")


def test_embedded_falkordb_holds_the_fixture_graph_across_restarts(graph_dir):
    # A new server process over the same folder reads the saved graph.rdb back.
    with open_store("fixture", data_dir=graph_dir) as store:
        assert store.backend == "falkordb-embedded"
        assert store.counts() == EXPECTED
        rows = store.rows("MATCH (c:Class)-[:CONTAINS]->(m:Method) WHERE c.graph = $graph AND c.name = $name "
                          "RETURN m.name AS name ORDER BY name", name="Registry")
        assert [r["name"] for r in rows] == ["__init__", "_log", "deploy", "register"]
        callers = store.rows("MATCH (a)-[:CALLS]->(b:Function {name: 'format_cents'}) WHERE a.graph = $graph "
                             "RETURN a.qualname AS q ORDER BY q")
        assert [r["q"] for r in callers] == ["shop.models.Order.describe", "shop.registry.AuditedRegistry.log_total"]


def test_rebuilding_replaces_the_graph_and_a_second_opener_is_refused(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "a.py").write_text("class A:\n    def m(self, x: int) -> int:\n        return x\n")
    with open_store("p", data_dir=tmp_path / "db") as store:
        write_graph(store, parse_codebase(FIXTURE))
        assert write_graph(store, parse_codebase(tmp_path / "proj")) == {
            "CodeFile": 1, "Class": 1, "Function": 0, "Method": 1, "Parameter": 1, "CONTAINS": 3, "CALLS": 0, "INHERITS": 0}
        from tooltune.graph.embedded import GraphDatabaseError

        with pytest.raises(GraphDatabaseError, match="another tooltune process"):
            with open_store("p", data_dir=tmp_path / "db"):
                pass


def test_records_are_scored_filtered_and_capped(graph_dir):
    with open_store("fixture", data_dir=graph_dir) as store:
        result = examples_from_graph(store, FromGraphConfig(quality_threshold=0.5))
    # Registry.deploy: docstring 0.4 + fully typed 0.2 + both parameters named in the docstring 0.2, no example.
    assert result.scores["shop.registry.Registry.deploy"] == 0.8
    # Order: docstring + doctest example + has methods; 2 of its 3 methods fully annotated (describe is not).
    assert result.scores["shop.models.Order"] == pytest.approx(0.4 + 0.2 + 0.2 + 0.2 * 2 / 3, abs=1e-4)
    # AuditedRegistry.deploy: typed, but no docstring.
    assert result.scores["shop.registry.AuditedRegistry.deploy"] == 0.2
    assert result.read == 16  # 4 classes + 2 functions + 10 methods
    assert result.dropped == {"type": 0, "private": 3, "below_threshold": 5, "over_max_records": 0}
    assert result.kept[0] == "shop.models.Order"
    with open_store("fixture", data_dir=graph_dir) as store:
        capped = examples_from_graph(store, FromGraphConfig(types=["Function"], max_records=1, quality_threshold=0.0))
    assert capped.kept == ["shop.models.format_cents"]  # format_cents 0.8 beats main 0.2
    assert capped.dropped["type"] == 14 and capped.dropped["over_max_records"] == 1


def test_examples_are_grounded_in_real_names_and_validate_against_the_code_catalog(graph_dir, tmp_path, code_catalog):
    workdir = "/sandbox/project"
    with open_store("fixture", data_dir=graph_dir) as store:
        result = examples_from_graph(store, FromGraphConfig(augmentation_factor=3, workdir=workdir))
    curated = write_curated(result.entries, tmp_path / "code-graph.yaml")
    load = load_curated(curated, code_catalog)
    assert load.quarantine == []
    assert len(load.examples) == len(result.entries) > 0
    by_request = {e.user_text: e for e in load.examples}

    deploy = [e for e in load.examples if e.meta.get("scenario") == "graph read: shop.registry.Registry.deploy"]
    assert len(deploy) == 3 and len({e.user_text for e in deploy}) == 3  # augmented 3x, three wordings
    call = deploy[0].calls[0]
    assert call.name == "Read" and call.arguments == {"file_path": f"{workdir}/shop/registry.py", "offset": 18, "limit": 11}

    locate = [e for e in load.examples if e.meta.get("scenario") == "graph locate: shop.registry.Registry.deploy"]
    assert {e.calls[0].name for e in locate} == {"Grep"}
    assert locate[0].calls[0].arguments["pattern"] == r"def deploy\("  # ( escaped for the regex
    assert any("`Registry.deploy`" in e.user_text for e in locate)

    callers = next(e for e in load.examples if e.meta.get("scenario") == "graph callers: shop.models.format_cents")
    assert callers.calls[0].arguments["pattern"] == r"\bformat_cents\("
    assert callers.calls[0].arguments["output_mode"] == "files_with_matches"

    docstring = next(e for e in load.examples if e.meta.get("scenario") == "graph docstring: shop.models.format_cents")
    assert docstring.behavior.value == "no_call"
    assert docstring.answer.startswith("Format an amount in cents as text.")
    assert "def format_cents(amount: int, currency: str='USD') -> str:" in docstring.user_text
    assert "Format an amount" not in docstring.user_text  # the answer is not in the question
    assert len(by_request) == len(load.examples)  # no request asked twice
    assert set(result.intents) == {"locate", "read", "callers", "siblings", "summarize", "docstring"}


def test_config_errors_name_the_field_and_its_option():
    with pytest.raises(ConfigError) as err:
        build_from_graph_config({"types": ["Pattern"], "max_records": 0, "quality_threshold": 1.5, "augmentation_factor": 99})
    text = str(err.value)
    for expected in ("types (--types)", "max_records (--max-records)", "quality_threshold (--quality-threshold)",
                     "augmentation_factor (--augmentation-factor)"):
        assert expected in text
    with pytest.raises(ConfigError, match="not absolute"):
        from tooltune.graph.examples import curated_entries

        curated_entries([], "/x", FromGraphConfig(workdir="relative/dir"))


def test_cli_builds_the_graph_and_writes_examples_that_data_build_accepts(tmp_path, monkeypatch):
    # In-process (typer's runner): the same commands, without a Python start-up per call.
    from typer.testing import CliRunner

    from tooltune.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
        return result.output

    built = run("graph", "build", str(FIXTURE), "--graph-dir", "db")
    assert "falkordb-embedded" in built and "CALLS" in built
    out = run("data", "from-graph", "--graph-dir", "db", "--types", "Method,Function", "--max-records", "3",
              "--quality-threshold", "0.6", "--augmentation-factor", "2", "--catalog", str(FIXTURE_CATALOG), "-o", "graph.yaml")
    assert "3 kept" in out and "examples valid" in out and "quarantined" not in out
    entries = yaml.safe_load((tmp_path / "graph.yaml").read_text())["training_examples"]
    assert {e["scenario"].split(": ")[1] for e in entries} == {
        "shop.models.Model.key", "shop.models.format_cents", "shop.registry.Registry.deploy"}  # the 3 scoring 0.8
    bad = runner.invoke(app, ["data", "from-graph", "--graph-dir", "db", "--quality-threshold", "2", "-o", "x.yaml"])
    assert isinstance(bad.exception, ConfigError) and "quality_threshold (--quality-threshold)" in str(bad.exception)

    from tooltune.data.build import build_dataset
    from tooltune.data.config import DataConfig

    report = build_dataset(DataConfig(catalog=FIXTURE_CATALOG, curated=[tmp_path / "graph.yaml"], output_dir=tmp_path / "data",
                                      held_out_tools=[], semantic_dedup=False))
    assert report.invalid == 0 and report.sources == {"curated": len(entries)}


@pytest.mark.skipif(not os.environ.get("TOOLTUNE_TEST_NEO4J_URL"),
                    reason="Neo4j / Memgraph: set TOOLTUNE_TEST_NEO4J_URL=bolt://user:pass@host:7687 to run against a server")
def test_neo4j_backend_holds_the_same_graph():
    pytest.importorskip("neo4j", reason="pip install 'tooltune[neo4j]'")
    with open_store("tooltune_test_fixture", url=os.environ["TOOLTUNE_TEST_NEO4J_URL"]) as store:
        assert store.backend == "neo4j"
        assert write_graph(store, parse_codebase(FIXTURE)) == EXPECTED
        result = examples_from_graph(store, FromGraphConfig())
        assert "shop.registry.Registry.deploy" in result.kept
        store.rows("MATCH (n) WHERE n.graph = $graph DETACH DELETE n")


def test_a_falkordb_server_url_holds_the_same_graph(tmp_path):
    """The `redis://` backend against a real FalkorDB server on a loopback port."""
    import socket
    import time

    from tooltune.graph.embedded import binaries

    server, module = binaries()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([str(server), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp_path), "--save", "",
                             "--loadmodule", str(module)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the FalkorDB server did not start"
                time.sleep(0.05)
        with open_store("fixture", url=f"redis://127.0.0.1:{port}") as store:
            assert store.backend == "falkordb"
            assert write_graph(store, parse_codebase(FIXTURE)) == EXPECTED
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_unreachable_servers_and_unknown_schemes_are_clear_errors():
    from importlib.util import find_spec

    from tooltune.graph.embedded import GraphDatabaseError

    with pytest.raises(ConfigError, match="unknown scheme 'http'"):
        with open_store("x", url="http://localhost:7474"):
            pass
    with pytest.raises(GraphDatabaseError, match="cannot reach the FalkorDB server"):
        with open_store("x", url="redis://127.0.0.1:1"):
            pass
    expected = (GraphDatabaseError, "cannot connect") if find_spec("neo4j") else (ConfigError, r"tooltune\[neo4j\]")
    with pytest.raises(expected[0], match=expected[1]) as err:
        with open_store("x", url="bolt://neo4j:secret@127.0.0.1:1"):
            pass
    assert "secret" not in str(err.value)
