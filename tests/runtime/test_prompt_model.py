"""read_prompt_model: the one reader of prompt_model.json, for loading (load_model) and for
`tooltune plan` (ops.plan), with every problem named at once."""

from __future__ import annotations

import json

import pytest

from tooltune.errors import ConfigError
from tooltune.ops.plan import _prompt_context
from tooltune.runtime.model import PROMPT_MODEL_FILE, PromptModel, read_prompt_model

FEW_SHOT = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def write(directory, spec) -> None:
    directory.mkdir(exist_ok=True)
    (directory / PROMPT_MODEL_FILE).write_text(json.dumps(spec))


def test_a_directory_or_its_file_reads_the_same_and_a_base_beside_it_is_found(tmp_path):
    (tmp_path / "pm" / "base").mkdir(parents=True)
    write(tmp_path / "pm", {"kind": "prompt", "base_model": "base", "system": "Be brief.", "few_shot": FEW_SHOT})
    spec = read_prompt_model(tmp_path / "pm")
    assert spec == read_prompt_model(tmp_path / "pm" / PROMPT_MODEL_FILE)
    assert spec.base_model == str(tmp_path / "pm" / "base")  # stored next to the file
    assert spec.prefix() == [{"role": "system", "content": "Be brief."}, *FEW_SHOT]
    write(tmp_path / "hub", {"base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "few_shot": None})
    hub = read_prompt_model(tmp_path / "hub")  # kind defaults to prompt; system and few_shot may be left out
    assert hub.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and hub.system is None and hub.prefix() == []


def test_what_the_prompt_backend_writes_reads_back_unchanged(tmp_path):
    written = PromptModel(base_model="builtin", system="Rules.", few_shot=FEW_SHOT)
    (tmp_path / PROMPT_MODEL_FILE).write_text(written.model_dump_json(indent=2))
    assert read_prompt_model(tmp_path) == written


def test_every_problem_is_named_with_the_file(tmp_path):
    write(tmp_path / "bad", {"kind": "lora", "system": 3, "few_shot": [{"content": "no role"}]})
    with pytest.raises(ConfigError) as err:
        read_prompt_model(tmp_path / "bad")
    message = str(err.value)
    assert str(tmp_path / "bad" / PROMPT_MODEL_FILE) in message
    assert all(f"{field}:" in message for field in ("kind", "base_model", "system", "few_shot"))
    assert "objects with a role" in message
    write(tmp_path / "empty", {"base_model": ""})
    with pytest.raises(ConfigError, match="base_model: empty"):
        read_prompt_model(tmp_path / "empty")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / PROMPT_MODEL_FILE).write_text("[]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        read_prompt_model(tmp_path / "list")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / PROMPT_MODEL_FILE).write_text('{"base_model": ')
    with pytest.raises(ConfigError, match=r"prompt_model.json:1:\d+: not valid JSON"):
        read_prompt_model(tmp_path / "broken")


def test_plan_reads_prompt_models_through_the_same_reader(tmp_path):
    write(tmp_path / "pm", {"base_model": "builtin", "few_shot": FEW_SHOT})  # no system: accepted, as load_model does
    assert _prompt_context(tmp_path / "pm", [], 2) == FEW_SHOT
    write(tmp_path / "bad", {"kind": "lora"})
    with pytest.raises(ConfigError, match=r"--prompt-model .*bad: .*kind: .*base_model: "):
        _prompt_context(tmp_path / "bad", [], 2)
