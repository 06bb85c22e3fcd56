"""Examples from the graph of the project the `code` service serves, executed on the live service
(a real `tooltune demo-server --service code` subprocess): each call finds what the graph says."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tooltune.data.curated import load_curated
from tooltune.graph.examples import FromGraphConfig, examples_from_graph, write_curated
from tooltune.graph.parse import parse_codebase
from tooltune.graph.store import open_store, write_graph

code_service = pytest.importorskip("tooltune.demo.code_service", reason="the code demo service is not in this checkout")
TOOLTUNE = str(Path(sys.executable).with_name("tooltune"))
WORKDIR = "/workspace"


def test_tool_calling_examples_from_the_graph_succeed_on_the_live_code_service(tmp_path):
    from tooltune.tools.discover import discover_mcp_stdio

    code = parse_codebase(code_service.PROJECT)
    with open_store("ledger", data_dir=tmp_path / "db") as store:
        write_graph(store, code)
        result = examples_from_graph(store, FromGraphConfig(workdir=WORKDIR, augmentation_factor=1, instructions=False))
    command = f"{TOOLTUNE} demo-server --service code --data-dir {tmp_path / 'state'}"
    catalog = discover_mcp_stdio(command, timeout=180)
    load = load_curated(write_curated(result.entries, tmp_path / "ledger.yaml"), catalog)
    assert load.quarantine == [] and len(load.examples) == len(result.entries) > 20

    params = StdioServerParameters(command=TOOLTUNE, args=["demo-server", "--service", "code", "--data-dir", str(tmp_path / "state")])
    checked: dict[str, int] = {}

    async def run_all() -> None:
        with anyio.fail_after(240):  # a loaded CI machine starts Python slowly
            await check_all()

    async def check_all() -> None:
        async with Client(params) as client:
            for example in load.examples:
                intent, qualname = example.meta["scenario"].removeprefix("graph ").split(": ")
                node = code.nodes[qualname].props
                call = example.calls[0]
                reply = await client.call_tool(call.name, call.arguments)
                assert not reply.is_error, f"{example.user_text!r}: {call.name}({call.arguments}) failed: {reply.content[0].text}"
                out = reply.structured_content
                where = f"{WORKDIR}/{node['path']}"
                if intent == "read":  # the lines the graph gave start at the definition
                    keyword = "class" if code.nodes[qualname].label == "Class" else "def"
                    assert out["content"].lstrip().startswith(f"{keyword} {node['name']}"), out["content"][:200]
                    assert out["num_lines"] == node["end_line"] - node["line"] + 1
                elif intent == "locate":  # the definition is among the matches, at its line
                    assert {"file_path": where, "line_number": node["line"]} in [
                        {"file_path": m["file_path"], "line_number": m["line_number"]} for m in out["matches"]]
                elif intent == "callers":  # every calling function's file is listed
                    callers = {f"{WORKDIR}/{code.nodes[e.src].props['path']}" for e in code.edges
                               if e.type == "CALLS" and e.dst == qualname}
                    assert callers <= set(out["files"]), (callers, out["files"])
                elif intent == "siblings":
                    assert where in out["files"]
                checked[intent] = checked.get(intent, 0) + 1

    anyio.run(run_all)
    assert set(checked) == {"locate", "read", "callers", "siblings"}
    assert sum(checked.values()) == len(load.examples)
