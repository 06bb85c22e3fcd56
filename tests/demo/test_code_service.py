"""The ``code`` demo service, run as a real ``tooltune demo-server`` subprocess over stdio."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tooltune.demo import build_server
from tooltune.demo.code_sandbox import DEFAULT_COMMANDS, Sandbox, glob_regex, network_isolation
from tooltune.demo.code_service import PROJECT

from tests.demo.conftest import error, ok

pytestmark = pytest.mark.anyio
TOOLS = ["Read", "Write", "Edit", "Bash", "Grep", "Glob"]


def _stdio(data_dir: Path, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=str(Path(sys.executable).with_name("tooltune")),
        args=["demo-server", "--service", "code", "--data-dir", str(data_dir), *extra],
    )


async def test_every_tool_and_every_refusal_over_stdio(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read\n")
    build_server("code", tmp_path / "state")  # the working copy exists before the server starts
    work = tmp_path / "state" / "code"
    os.symlink(outside, work / "leak.txt")
    os.symlink(tmp_path, work / "up")

    with anyio.fail_after(240):
        async with Client(_stdio(tmp_path / "state")) as client:
            assert [t.name for t in (await client.list_tools()).tools] == TOOLS

            # Glob → Read → Edit → Bash (the project's own tests) → Grep, on the real files.
            found = await ok(client, "Glob", pattern="**/*.py", path="/workspace/src")
            assert "/workspace/src/ledger/money.py" in found["files"] and found["files"] == sorted(found["files"])
            assert (await ok(client, "Glob", pattern="tests/test_*.py"))["files"] == [
                "/workspace/tests/test_invoice.py", "/workspace/tests/test_money.py", "/workspace/tests/test_payments.py"]
            page = await ok(client, "Read", file_path="/workspace/src/ledger/money.py", offset=29, limit=3)
            assert page["content"].startswith("def parse_amount(text: str) -> int:")
            assert (page["start_line"], page["num_lines"], page["truncated"]) == (29, 3, True)
            whole = await ok(client, "Read", file_path="/workspace/src/ledger/money.py")
            assert whole["num_lines"] == whole["total_lines"] == (PROJECT / "src/ledger/money.py").read_text().count("\n")

            edit = await ok(client, "Edit", file_path="/workspace/src/ledger/money.py",
                            old_string='raise ValueError(f"not an amount: {text!r}")',
                            new_string='raise ValueError(f"not a price: {text!r}")')
            assert edit["replacements"] == 1
            assert 'not a price' in (work / "src/ledger/money.py").read_text()
            run = await ok(client, "Bash", command="python -m pytest -q tests/test_money.py", timeout=120)
            assert run["exit_code"] == 1 and "1 failed, 2 passed" in run["stdout"]  # the test pins the old message
            assert str(work) not in run["stdout"], "real paths are shown as /workspace"
            assert run["network_isolated"] is True

            grep = await ok(client, "Grep", pattern=r"not a price", path="/workspace/src", output_mode="content")
            assert grep["matches"] == [{"file_path": "/workspace/src/ledger/money.py", "line_number": 33,
                                        "line": '        raise ValueError(f"not a price: {text!r}")'}]
            counts = await ok(client, "Grep", pattern=r"^def test_", glob="*.py", output_mode="count")
            assert counts["counts"] == {"/workspace/tests/test_invoice.py": 2, "/workspace/tests/test_money.py": 3,
                                        "/workspace/tests/test_payments.py": 2}
            assert (await ok(client, "Grep", pattern="monthly_summary"))["files"] == [
                "/workspace/README.md", "/workspace/src/ledger/__init__.py", "/workspace/src/ledger/report.py"]

            written = await ok(client, "Write", file_path="/workspace/docs/notes.md", content="# Notes\nJPY has no cents\n")
            assert written == {"file_path": "/workspace/docs/notes.md", "bytes_written": 25, "created": True}
            piped = await ok(client, "Bash", command="cat /workspace/docs/notes.md | wc -l && ls src/ledger/*.py")
            assert piped["stdout"].split() == ["2", *(f"src/ledger/{n}.py" for n in
                                                     ("__init__", "invoice", "money", "payments", "report"))]

            # The mistakes the curated examples teach, refused with the fix.
            assert "relative path; give the absolute path, e.g. '/workspace/src/ledger/money.py'" in await error(
                client, "Read", file_path="src/ledger/money.py")
            assert "occurs 2 times in /workspace/src/ledger/invoice.py (lines 47, 52)" in await error(
                client, "Edit", file_path="/workspace/src/ledger/invoice.py", old_string="total_cents()", new_string="0")
            assert "escape special characters: 'Money\\\\('" in await error(client, "Grep", pattern="Money(")
            assert "patterns are relative to path" in await error(client, "Glob", pattern="/workspace/**/*.py")
            assert "old_string was not found" in await error(
                client, "Edit", file_path="/workspace/README.md", old_string="no such text", new_string="x")

            # Path escapes: outside absolute paths, '..', and symbolic links out of the sandbox.
            assert "outside the sandbox" in await error(client, "Read", file_path=str(outside))
            assert "outside the sandbox" in await error(client, "Write", file_path="/tmp/x.txt", content="x")
            assert "'..' is not allowed" in await error(client, "Read", file_path="/workspace/../secret.txt")
            assert "symbolic link" in await error(client, "Read", file_path="/workspace/leak.txt")
            assert "symbolic link" in await error(client, "Edit", file_path="/workspace/up/secret.txt", old_string="do", new_string="x")
            assert "/workspace/leak.txt" not in (await ok(client, "Glob", pattern="*.txt"))["files"]
            assert (await ok(client, "Grep", pattern="do not read"))["files"] == []
            assert outside.read_text() == "do not read\n"

            # Commands: the allow-list, shell syntax, path arguments, and the timeout.
            assert "command 'rm' is not allowed" in await error(client, "Bash", command="rm -rf src")
            assert "command '/bin/ls' is not allowed" in await error(client, "Bash", command="/bin/ls")
            assert "shell operator ';'" in await error(client, "Bash", command="ls; rm -rf src")
            assert "shell operator '>'" in await error(client, "Bash", command="echo x > README.md")
            assert "find -exec" in await error(client, "Bash", command="find . -exec rm {} +")
            sed = await ok(client, "Bash", command="sed -n '1e id' README.md")  # GNU sed runs programs with 'e'
            assert sed["exit_code"] == 1 and "disabled in sandbox mode" in sed["stderr"]
            assert "outside the sandbox" in await error(client, "Bash", command=f"cat {outside}")
            assert "leads outside the sandbox" in await error(client, "Bash", command="cat leak.txt")
            assert "leads outside the sandbox" in await error(client, "Bash", command="ls ../..")
            timed = await error(client, "Bash", command="python -c 'import time; time.sleep(30)'", timeout=1)
            assert "timed out after 1 s" in timed
            assert "less than or equal to 120" in await error(client, "Bash", command="ls", timeout=600)
            assert (work / "src").is_dir() and (work / "README.md").read_text().startswith("# ledger")


@pytest.mark.skipif(not network_isolation(), reason="unshare -rn (unprivileged user namespaces) is not available here")
async def test_bash_has_no_network(tmp_path: Path) -> None:
    probe = "python -c 'import socket; socket.create_connection((\"192.0.2.1\", 80), timeout=2)'"
    async with Client(build_server("code", tmp_path)) as client:
        result = await ok(client, "Bash", command=probe)
        # The namespace has no route anywhere (its loopback is its own: tests/security checks the host's is unreachable).
        assert result["exit_code"] == 1 and "Network is unreachable" in result["stderr"]
        env = await ok(client, "Bash", command="python -c 'import os; print(sorted(os.environ))'")
        assert not any("proxy" in name.lower() for name in eval(env["stdout"]))  # noqa: S307 - our own printout


async def test_working_copy_persists_and_reset_restores_the_project(tmp_path: Path) -> None:
    async with Client(build_server("code", tmp_path)) as client:
        await ok(client, "Write", file_path="/workspace/README.md", content="changed\n")
    async with Client(build_server("code", tmp_path)) as client:
        assert (await ok(client, "Read", file_path="/workspace/README.md"))["content"] == "changed\n"
    async with Client(build_server("code", tmp_path, reset=True)) as client:
        assert (await ok(client, "Read", file_path="/workspace/README.md"))["content"] == (PROJECT / "README.md").read_text()
    copied = sorted(p.relative_to(tmp_path / "code").as_posix() for p in (tmp_path / "code").rglob("*") if p.is_file())
    shipped = sorted(p.relative_to(PROJECT).as_posix() for p in PROJECT.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert copied == shipped


async def test_allow_list_can_be_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLTUNE_CODE_COMMANDS", "ls,wc")
    async with Client(build_server("code", tmp_path)) as client:
        assert (await ok(client, "Bash", command="ls"))["exit_code"] == 0
        assert "allowed programs: ls, wc" in await error(client, "Bash", command="cat README.md")
    assert {"python", "pytest", "grep", "cat"} <= DEFAULT_COMMANDS and "rm" not in DEFAULT_COMMANDS


def test_sandbox_paths_and_globs(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    assert box.resolve("/workspace/src/x.py") == tmp_path.resolve() / "src/x.py"
    assert box.resolve(str(tmp_path / "a.txt")) == tmp_path.resolve() / "a.txt"  # the real path is accepted too
    assert box.show(tmp_path.resolve() / "src/x.py") == "/workspace/src/x.py"
    assert glob_regex("**/*.py").match("a/b/c.py") and glob_regex("**/*.py").match("c.py")
    assert not glob_regex("*.py").match("a/c.py") and glob_regex("src/*/m?.py").match("src/x/m1.py")


async def test_every_curated_call_works_on_the_live_service(tmp_path: Path) -> None:
    # The curated file teaches real paths and unique old_strings: each call succeeds on a fresh copy.
    from tooltune.data.curated import load_curated
    from tooltune.data.examples import Behavior
    from tooltune.demo.code_service import build
    from tooltune.tools.catalog import Tool, ToolCatalog

    async with Client(build(tmp_path / "listing")) as client:
        listed = (await client.list_tools()).tools
    catalog = ToolCatalog(tools=[Tool.from_dict({"name": t.name, "description": t.description or "", "parameters": t.input_schema,
                                                 "service": "code"}) for t in listed])
    load = load_curated(PROJECT.parent / "curated" / "code.yaml", catalog)
    assert load.quarantine == [] and len(load.examples) >= 30
    calls = [(e, c) for e in load.examples if e.behavior is Behavior.CALLS for c in e.calls]
    assert {c.name for _, c in calls} == set(TOOLS)
    for n, (example, call) in enumerate(calls):
        # A loaded CI machine can take more than Bash's default 30 s for the project's tests.
        arguments = {"timeout": 120, **call.arguments} if call.name == "Bash" else call.arguments
        async with Client(build(tmp_path / str(n))) as client:
            await ok(client, call.name, **arguments)


async def test_code_chains_run_on_the_live_service(tmp_path: Path) -> None:
    # Every slot value of every code chain: Glob → Read → Edit and Grep → Read succeed, and the
    # references carry real results (the Edit lands in the file Glob found).
    import itertools

    from tooltune.data.sequences import ChainRunner
    from tooltune.demo.chains import CHAINS, CODE
    from tooltune.demo.code_service import build
    from tooltune.tools.catalog import Tool, ToolCatalog

    assert {c.id for c in CODE} <= {c.id for c in CHAINS}
    async with Client(build(tmp_path / "listing")) as client:
        listed = (await client.list_tools()).tools
    catalog = ToolCatalog(tools=[Tool.from_dict({"name": t.name, "description": t.description or "", "parameters": t.input_schema,
                                                 "annotations": {"read_only_hint": t.annotations.read_only_hint},
                                                 "service": "code"}) for t in listed])
    runs = 0
    async with ChainRunner(catalog, build_server, tmp_path / "pristine") as runner:
        for chain in CODE:
            for combo in itertools.product(*chain.slots.values()):
                execution = await runner.run(chain, dict(zip(chain.slots, combo)))
                assert execution.ok, f"{chain.id} {combo}: {execution.message}"
                runs += 1
                if chain.tools[-1] == "Edit":
                    found, edited = execution.results[0]["files"][0], execution.results[-1]
                    assert edited["file_path"] == found and edited["replacements"] >= 1
    assert runs > 50
    # Edits ran on a scratch copy; the pristine working copy is the shipped project.
    assert (tmp_path / "pristine" / "code" / "src/ledger/money.py").read_text() == (PROJECT / "src/ledger/money.py").read_text()


async def test_synthetic_paths_start_in_the_sandbox(tmp_path: Path) -> None:
    # The path descriptions say "starting with /workspace", so sampled paths do too.
    import random

    from tooltune.data.sampling import sampler_for
    from tooltune.tools.catalog import Tool

    async with Client(build_server("code", tmp_path)) as client:
        listed = (await client.list_tools()).tools
    rng = random.Random(0)
    paths = []
    for t in listed:
        sampler = sampler_for(Tool.from_dict({"name": t.name, "description": t.description or "", "parameters": t.input_schema}))
        for _ in range(20):
            arguments = sampler.sample(rng)
            paths += [arguments[k] for k in ("file_path", "path") if k in arguments]
    assert len(paths) > 60 and all(p.startswith("/workspace/") for p in paths)
    async with Client(build_server("files", tmp_path)) as client:  # "starting with '/'" names no root
        read_file = next(t for t in (await client.list_tools()).tools if t.name == "read_file")
    sampled = sampler_for(Tool.from_dict({"name": "read_file", "description": "", "parameters": read_file.input_schema})).sample(rng)
    assert not sampled["path"].startswith("/workspace")


def test_code_pipeline_config_loads_with_paths_from_its_folder() -> None:
    from tooltune.pipeline import PipelineConfig

    configs = Path(__file__).parents[2] / "configs"
    config = PipelineConfig.load(configs / "code-pipeline.yaml")
    assert config.work_dir == configs.parent / ".tooltune" / "code-run" / "pipeline"
    assert [p.name for p in config.data.curated] == ["code.yaml"] and all(p.is_file() for p in config.data.curated)
    assert "--service code" in config.services[0].mcp_stdio
    config.data.stage(catalog=Path("catalog.json"), output_dir=Path("out"))
    assert config.train.base_model == "pypi:smollm2-135m-instruct"
    assert config.train.stage(data_dir=Path("data"), output_dir=Path("out"), resume=False).max_length == 2048
    assert config.gates.critical_tools == ["Edit"]
