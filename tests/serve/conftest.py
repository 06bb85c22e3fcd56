"""Serving fixtures: the tiny test base under tooltune's hermes template, random LoRA runs on it,
the real shop catalog, and a real `tooltune serve` process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, stop_process

TOOLTUNE = str(Path(sys.executable).parent / "tooltune")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def hermes_base(tmp_path_factory) -> Path:
    """The tests' 1.25M-parameter tiny base with its own (pythonic) chat template removed, so it
    renders with tooltune's built-in template and writes hermes calls, the format that has a
    decoding grammar (tool_choice required / named)."""
    return make_hermes_base(tmp_path_factory.mktemp("hermes-base") / "model")


def make_hermes_base(target: Path) -> Path:
    """A copy of the tiny test base at ``target`` without its chat template (see ``hermes_base``)."""
    from tests.fixtures.tiny_base.recipe import TINY_BASE_DIR

    shutil.copytree(TINY_BASE_DIR, target)
    (target / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((target / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (target / "tokenizer_config.json").write_text(json.dumps(config))
    # The built-in template lists tools as JSON Schema, about 3x the base's compact signatures: the
    # shop's tools no longer fit its 1,024 positions, and serve refuses prompts over the context.
    # RoPE has no table to outgrow, so the copy may declare more.
    model_config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**model_config, "max_position_embeddings": 4096}))
    return target


def make_lora(base: Path, directory: Path, *, seed: int, r: int = 8) -> Path:
    """A LoRA run on ``base`` with random (non-zero) weights, so it changes the outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=r, lora_alpha=4 * r, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(directory)
    adapter_config = json.loads((directory / "adapter_config.json").read_text())
    adapter_config["base_model_name_or_path"] = str(base)
    (directory / "adapter_config.json").write_text(json.dumps(adapter_config))
    return directory


@pytest.fixture(scope="session")
def loras(hermes_base, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loras")
    return {"a": make_lora(hermes_base, root / "a", seed=1), "b": make_lora(hermes_base, root / "b", seed=2, r=20)}


@pytest.fixture(scope="session")
def shop_command(tmp_path_factory) -> str:
    state = tmp_path_factory.mktemp("shop-state")
    return f"{TOOLTUNE} demo-server --service shop --data-dir {state} --reset"


@pytest.fixture(scope="session")
def shop_tools(shop_command) -> list:
    """The shop's tools, discovered from the real MCP server subprocess."""
    from tooltune.tools.discover import discover

    return list(discover(mcp_stdio=shop_command))


def start_server(args: list[str], log: Path, timeout: float = 240) -> tuple[subprocess.Popen, str]:
    """Start `tooltune serve ARGS` on a free loopback port; wait until /health answers."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = log.open("w")
    process = subprocess.Popen([TOOLTUNE, "serve", *args, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
                               stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tooltune serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"tooltune serve did not come up in {timeout} s:\n{log.read_text()[-3000:]}")


def stop_server(process: subprocess.Popen) -> None:
    stop_process(process, timeout=20)


@pytest.fixture(scope="session")
def routed_registry(tmp_path_factory, hermes_base, loras, shop_catalog_dict) -> str:
    """A real SQLite registry: shop-assistant 1.0.0 (adapter a) live everywhere, then 1.1.0
    (adapter b) whose gate passed for service shop and failed for calendar, so the partial
    decision deployed it to shop only and calendar kept 1.0.0."""
    from tooltune.registry import GateConfig, Outcome, Registry
    from tooltune.tools.catalog import ToolCatalog

    path = tmp_path_factory.mktemp("registry") / "registry.db"
    catalog = ToolCatalog.from_dict(shop_catalog_dict)

    def metrics(overall: float, shop: float, calendar: float) -> dict:
        return {"suite_version": "suite-1", "split": "all", "overall": overall, "examples": 200,
                "per_category": {"simple": 0.9, "irrelevance": 0.95}, "per_tool": {"create_payment": 0.9}, "per_split": {"test_phrasing": 0.9},
                "per_service": {"shop": {"overall": shop, "per_category": {"simple": shop}},
                                "calendar": {"overall": calendar, "per_category": {"simple": calendar}}}}

    with Registry(f"sqlite:///{path}") as registry:
        old = registry.register_model("shop-assistant", kind="adapter", base_model=str(hermes_base),
                                      artifact_path=str(loras["a"]), catalog=catalog, config={"run": "a"},
                                      evaluation=metrics(0.90, 0.90, 0.90))
        registry.deploy("shop-assistant", old.version, actor="test")
        new = registry.register_model("shop-assistant", kind="adapter", base_model=str(hermes_base),
                                      artifact_path=str(loras["b"]), catalog=catalog, config={"run": "b"},
                                      evaluation=metrics(0.93, 0.97, 0.85))
        # One of two services failing is 50%: allow a partial deployment up to that share (the
        # default, 20%, would block).
        decision = registry.check_gates("shop-assistant", new.version, GateConfig(partial_below=0.6), actor="test")
        assert decision.outcome is Outcome.PARTIAL and decision.deploy_services == ["shop"], decision.summary()
        registry.apply_decision(decision, actor="test")
        assert registry.deployed("shop-assistant", "calendar").version == old.version
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def server_log_dir(tmp_path_factory) -> Path:
    """Where the `server` fixture's production logs go."""
    return tmp_path_factory.mktemp("serve-production-log")


@pytest.fixture(scope="session")
def server(tmp_path_factory, hermes_base, loras, routed_registry, server_log_dir):
    """A real `tooltune serve` process: the hermes base, adapters a and b, the routed registry."""
    logs = tmp_path_factory.mktemp("serve-log")
    process, url = start_server(["--model", str(hermes_base), "--adapter", f"a={loras['a']}", "--adapter",
                                 f"b={loras['b']}", "--registry", routed_registry, "--max-new-tokens", "128",
                                 "--log-dir", str(server_log_dir)], logs / "serve.log")
    yield url
    stop_server(process)
