"""Shared by the adversarial suite: a fresh working copy of the ``code`` service, and the rule that
the OS confinement tests run wherever bubblewrap is installed (and must, under CI).

``.ci/run`` installs bubblewrap and sets ``TOOLTUNE_REQUIRE_SANDBOX=1``, so on CI a missing or
broken bubblewrap fails these tests instead of skipping them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tooltune.demo.code_sandbox import Sandbox
from tooltune.demo.code_service import build


def _sandbox_available() -> str | None:
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    from tooltune.demo.code_confine import confinement
    from tooltune.demo.tooling import ToolError

    try:
        confinement()
    except ToolError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def confined() -> None:
    """Skip (or, under CI, fail) when the OS confinement cannot run on this machine."""
    why = _sandbox_available()
    if why is not None:
        if os.environ.get("TOOLTUNE_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"the code sandbox must run here (TOOLTUNE_REQUIRE_SANDBOX=1): {why}")
        pytest.skip(why)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A fresh working copy ``tmp_path/state/code`` with a secret next to it (outside)."""
    build(tmp_path / "state")
    (tmp_path / "secret.txt").write_text("TOP-SECRET-CONTENT\n")
    return tmp_path / "state" / "code"


@pytest.fixture
def box(work: Path, confined: None) -> Sandbox:
    return Sandbox(work)


@pytest.fixture(scope="session")
def serve_app(tmp_path_factory):
    """An in-process ``tooltune serve`` app over the tests' 1.25M-parameter tiny base with its own
    template removed (so it writes hermes calls, the format with a decoding grammar), keeping the
    base's real 1,024-token context."""
    import json

    from tests.fixtures.tiny_base.recipe import TINY_BASE_DIR
    from tooltune.serve.app import create_app
    from tooltune.serve.settings import ServeSettings

    target = tmp_path_factory.mktemp("security-base") / "model"
    shutil.copytree(TINY_BASE_DIR, target)
    (target / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((target / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (target / "tokenizer_config.json").write_text(json.dumps(config))
    return create_app(ServeSettings(model=str(target), max_new_tokens=24, max_body_bytes=1 << 20))


@pytest.fixture
def serve_client(serve_app):
    from fastapi.testclient import TestClient

    return TestClient(serve_app, base_url="http://127.0.0.1")
