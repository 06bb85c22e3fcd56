"""The generated `vllm serve` command (vLLM itself cannot run on these CPUs)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from tooltune.errors import ConfigError
from tooltune.serve.settings import ServeSettings
from tooltune.serve.vllm import vllm_plan


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_command_for_a_base_with_two_lora_adapters(hermes_base, loras, tmp_path):
    from transformers import AutoTokenizer

    from tooltune.formats.chat import chat_setup

    settings = ServeSettings(model=str(hermes_base), adapters=loras, port=9001)
    plan = vllm_plan(settings, tmp_path / "out")
    argv = plan.argv
    assert argv[:3] == ["vllm", "serve", str(hermes_base)]
    assert _flag(argv, "--tool-call-parser") == "hermes" and "--enable-auto-tool-choice" in argv
    assert _flag(argv, "--port") == "9001" and _flag(argv, "--served-model-name") == "base"
    # One --lora-modules entry per adapter; the rank covers the largest adapter (20 → 32).
    assert "--enable-lora" in argv and _flag(argv, "--max-lora-rank") == "32" and _flag(argv, "--max-loras") == "2"
    start = argv.index("--lora-modules") + 1
    assert argv[start:start + 2] == [f"a={loras['a'].resolve()}", f"b={loras['b'].resolve()}"]
    # The template file is the one tooltune renders with in training and evaluation.
    template = _flag(argv, "--chat-template")
    expected = chat_setup(AutoTokenizer.from_pretrained(hermes_base)).template
    assert open(template).read() == expected
    script = plan.script.read_text()
    assert script.startswith("#!/bin/sh") and plan.command in script
    assert any("<tool_call>" in note for note in plan.notes)  # the tiny vocabulary has no such token


def test_parser_follows_the_models_call_format(tmp_path, tiny_base_dir):
    plan = vllm_plan(ServeSettings(model=str(tiny_base_dir)), tmp_path)  # the tiny test base writes pythonic calls
    assert _flag(plan.argv, "--tool-call-parser") == "pythonic"
    assert "--enable-lora" not in plan.argv and plan.max_lora_rank is None


def test_formats_without_a_vllm_parser_and_full_runs_are_refused(hermes_base, tmp_path):
    glaive = tmp_path / "glaive"
    shutil.copytree(hermes_base, glaive)
    config = json.loads((glaive / "tokenizer_config.json").read_text())
    config["chat_template"] = ("{% for m in messages %}{{ m.content }}{% for tc in m.tool_calls or [] %}<functioncall> "
                               "{{ {'name': tc.function.name, 'arguments': tc.function.arguments} | tojson }}"
                               "{% endfor %}{% endfor %}{# tools #}")
    (glaive / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="'glaive' format, which no built-in vLLM parser reads"):
        vllm_plan(ServeSettings(model=str(glaive)), tmp_path / "a")
    with pytest.raises(ConfigError, match="not a LoRA run"):
        vllm_plan(ServeSettings(model=str(hermes_base), adapters={"full": hermes_base}), tmp_path / "b")


def test_cli_dry_run_prints_the_command(hermes_base, loras, tmp_path):
    from tooltune.cli import app

    result = CliRunner().invoke(app, ["serve", "--engine", "vllm", "--dry-run", "--model", str(hermes_base),
                                      "--adapter", f"shop={loras['a']}", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"--lora-modules shop={loras['a'].resolve()}" in result.output
    assert (tmp_path / "chat_template.jinja").is_file() and (tmp_path / "vllm-serve.sh").is_file()
