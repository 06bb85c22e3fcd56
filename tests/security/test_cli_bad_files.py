"""Every ``tooltune`` command, given hostile files: no traceback reaches the user.

The walk is complete by construction: :func:`test_every_command_is_walked` lists the commands of
the real typer app (every command module of ``tooltune.cli``) and fails when one has no bad-file
case below and no reason to have none. Each case runs with each kind of bad input
(alias bomb, deep nesting, 100k-digit number, binary, empty, missing, a folder); a command may
refuse it (exit code and ``TypeName: message``) or accept it, but may not raise anything else.
Servers are not started: reaching ``uvicorn.run``, ``MCPServer.run`` or a blocking scheduler means
the input was read and accepted."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.security.test_hostile_files import billion_laughs
from tooltune.cli import app
from tooltune.errors import TooltuneError

KINDS = {
    "bomb": billion_laughs().encode(),
    "deep": ("[" * 100_000 + "]" * 100_000).encode(),
    "bigint": ('{"n": ' + "1" * 100_000 + "}\n").encode(),
    "binary": b"\xff\xfe\x00\x81binary\x00" * 100,
    "empty": b"",
}
# Names commands look for inside a folder (a data dir, a run dir, a publisher's folder, a project).
DIR_FILES = ["train.jsonl", "val.jsonl", "test.jsonl", "holdout.jsonl", "quarantine.jsonl", "report.json", "catalog.json",
             "manifest.json", "metrics.json", "results.jsonl", "adapter_config.json", "config.json", "metadata.yaml",
             "tests.jsonl", "services.json", "tokenizer_config.json", "export.json", "module.py", "shop.sqlite"]

CASES: dict[str, list[str]] = {
    "train": ["train --config {bad}"],
    "compare": ["compare {baddir} {baddir}"],
    "serve": ["serve --model {baddir}", "serve --model {model} --adapter a={baddir}"],
    "chat": ["chat --model {model} --queries {bad} --mcp-stdio true"],
    "export": ["export {baddir} --to onnx -o {out}/x"],
    "publish": ["publish --service shop --data {baddir} --port 1 --key-file {bad}",
                "publish --service shop --data {baddir} --port 1 --key-file {secret}"],
    "collect": ["collect --services {bad} -o {out}/c"],
    "plan": ["plan --data {baddir} --requests-per-month 1000", "plan --data {good_data} --requests-per-month 1000 --prices {bad}",
             "plan --data {good_data} --requests-per-month 1000 --catalog {bad}"],
    "demo-server": ["demo-server --service shop --data-dir {baddir}", "demo-server --service code --data-dir {baddir}"],
    "tools discover": ["tools discover -o {out}/c.json --file {bad}", "tools discover -o {out}/c.json --openapi {bad}"],
    "tools merge": ["tools merge {bad} {bad} -o {out}/m.json"],
    "tools show": ["tools show {bad}"],
    "tools diff": ["tools diff {bad} {bad}"],
    "data build": ["data build -o {out}/d --catalog {bad}", "data build -o {out}/d --catalog {catalog} --curated {bad}",
                   "data build -o {out}/d --catalog {catalog} --logs {bad}",
                   "data build -o {out}/d --catalog {catalog} --corrections {bad}", "data build -o {out}/d --config {bad}"],
    "data report": ["data report {baddir}"],
    "data import": ["data import {bad} --format openai -o {out}/i.jsonl", "data import {bad} --format glaive -o {out}/i.jsonl",
                    "data import {bad} --format bfcl -o {out}/i.jsonl"],
    "data export": ["data export {bad} --format openai -o {out}/e.jsonl",
                    "data export {good_data}/train.jsonl --format openai -o {out}/e.jsonl --catalog {bad}"],
    "data migrate": ["data migrate {baddir} --catalog {bad} -o {out}/m", "data migrate {good_data} --catalog {bad} -o {out}/m"],
    "data from-graph": ["data from-graph -o {out}/g.yaml --catalog {bad} --graph-url redis://127.0.0.1:9"],
    "eval": ["eval --data {baddir} --model {model} --limit 1 -o {out}/e"],
    "eval bfcl": ["eval bfcl --category {bad} --model {model} --limit 1 -o {out}/b"],
    "eval score": ["eval score --data {baddir} --predictions {bad} --format hermes -o {out}/s",
                   "eval score --data {good_data} --predictions {bad} --format hermes -o {out}/s"],
    "pipeline run": ["pipeline run --config {bad}"],
    "pipeline schedule": ["pipeline schedule --config {bad}"],
    "models list": ["models list --db sqlite:///{bad}"],
    "models show": ["models show m@1.0.0 --db sqlite:///{bad}"],
    "models deploy": ["models deploy m@1.0.0 --gates {bad} --db sqlite:///{out}/r.db"],
    "models rollback": ["models rollback m --db sqlite:///{bad}"],
    "models diff": ["models diff m@1.0.0 m@1.0.1 --db sqlite:///{bad}"],
    "models history": ["models history m --db sqlite:///{bad}"],
    "models check": ["models check --config {bad} --db sqlite:///{out}/r.db", "models check --watch file:{bad} --db sqlite:///{out}/r.db"],
    "models catalog": ["models catalog m --db sqlite:///{bad} -o {out}/c.json"],
    "graph build": ["graph build {baddir} --graph-url redis://127.0.0.1:9"],
}
NO_FILE_INPUT = {
    "api": "reads no file at start: its registry URL and work folder are checked by the API tests",
    "status": "reads the registry named by a URL, covered by the models cases",
}


class _Served(Exception):
    """Raised instead of starting a server: the command got past reading its input."""


def _walk(command, prefix: tuple[str, ...] = ()):
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield " ".join(prefix)
        return
    if getattr(command, "invoke_without_command", False) and prefix:
        yield " ".join(prefix)
    for name, sub in subcommands.items():
        yield from _walk(sub, (*prefix, name))


def test_every_command_is_walked() -> None:
    commands = set(_walk(typer.main.get_command(app)))
    assert commands == set(CASES) | set(NO_FILE_INPUT), (
        f"new commands need a bad-file case: {sorted(commands - set(CASES) - set(NO_FILE_INPUT))}; "
        f"cases for commands that are gone: {sorted(set(CASES) | set(NO_FILE_INPUT) - commands)}")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_base_dir) -> dict[str, Path]:
    """Per kind: a bad file and a folder of bad files; plus a real catalog, data dir and model."""
    import shutil

    import tooltune.train.callbacks  # noqa: F401 - the training stack's import (seconds) is not a command's answer time

    root = tmp_path_factory.mktemp("bad-inputs")
    out: dict[str, Path] = {}
    for kind, content in KINDS.items():
        (root / f"{kind}.yaml").write_bytes(content)
        folder = root / f"{kind}-dir"
        folder.mkdir()
        for name in DIR_FILES:
            (folder / name).write_bytes(content)
        out[kind], out[f"{kind}-dir"] = root / f"{kind}.yaml", folder
    out["missing"], out["missing-dir"] = root / "missing.yaml", root / "missing-dir"
    out["folder"], out["folder-dir"] = root / "empty-folder", root / "empty-folder"
    out["folder"].mkdir()
    fixtures = Path(__file__).parents[1] / "fixtures"
    out["catalog"] = fixtures / "catalogs" / "shop.json"
    good = root / "good-data"
    good.mkdir()
    shutil.copy(out["catalog"], good / "catalog.json")
    for split in ("train", "val", "test"):
        (good / f"{split}.jsonl").write_text("")
    out["good_data"] = good
    out["secret"] = root / "secret.key"
    out["secret"].write_text("a-publisher-secret-of-at-least-32-bytes-long")
    out["model"] = tiny_base_dir
    return out


@pytest.fixture
def no_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from apscheduler.schedulers.blocking import BlockingScheduler
    from mcp.server.mcpserver import MCPServer

    def served(*args, **kwargs):
        raise _Served()

    monkeypatch.setattr(uvicorn, "run", served)
    monkeypatch.setattr(MCPServer, "run", served)
    monkeypatch.setattr(BlockingScheduler, "start", served)


@pytest.mark.parametrize("command", [case for cases in CASES.values() for case in cases])
def test_no_command_shows_a_traceback_for_a_bad_file(command: str, inputs: dict[str, Path], tmp_path: Path,
                                                    no_servers: None) -> None:
    import traceback

    failures = []
    for kind in ("bomb", "deep", "bigint", "binary", "empty", "missing", "folder"):
        args = shlex.split(command.format(bad=inputs[kind], baddir=inputs[f"{kind}-dir"], out=tmp_path / kind,
                                          catalog=inputs["catalog"], good_data=inputs["good_data"], secret=inputs["secret"],
                                          model=inputs["model"]))
        started = time.monotonic()
        result = CliRunner().invoke(app, args)
        error = result.exception
        if error is not None and not isinstance(error, (SystemExit, TooltuneError, _Served)):
            trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            failures.append(f"`tooltune {' '.join(args)}` ended in a traceback:\n{trace[-2000:]}")
        elif time.monotonic() - started > 60:  # a hang detector: real refusals take well under a second
            failures.append(f"`tooltune {' '.join(args)}` took {time.monotonic() - started:.0f} s to answer bad input")
    assert not failures, "\n\n".join(failures)
