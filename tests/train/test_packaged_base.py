"""The committed offline base model: it loads, its card records how it was built, and `builtin`
names it wherever a model is accepted."""

from __future__ import annotations

import json

import pytest

from tooltune.errors import TrainError
from tooltune.runtime import names
from tooltune.runtime.names import PACKAGED_BASE_DIR, resolve_model_name
from tooltune.train import base
from tooltune.train.base import BUILD_INFO, BaseBuildConfig, BaseBuildResult, reproduce_command
from tooltune.train.config import TrainConfig


def test_the_packaged_base_is_committed_with_its_card():
    path = names.default_base_model_path()
    info = json.loads((path / BUILD_INFO).read_text())
    config = BaseBuildConfig(**info["config"])
    result = BaseBuildResult(output_dir=path, **info["result"])
    card = (path / "README.md").read_text()
    # The card's command is the one that reproduces these weights (steps pinned, not minutes).
    assert f"--max-steps {result.steps}" in reproduce_command(config, result)
    assert reproduce_command(config, result) in card
    assert set(info["evaluation"]) == set(base.EVAL_SPLITS)
    for split, scores in info["evaluation"].items():
        assert f"| {split} |" in card and 0.0 <= scores["accuracy"] <= 1.0


def test_builtin_names_the_packaged_base_everywhere():
    assert resolve_model_name("builtin") == str(PACKAGED_BASE_DIR)
    assert resolve_model_name("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert TrainConfig(base_model="builtin").base_model == str(PACKAGED_BASE_DIR)


def test_builtin_without_weights_says_how_to_build_them(tmp_path, monkeypatch):
    monkeypatch.setattr(names, "PACKAGED_BASE_DIR", tmp_path / "base_model")
    with pytest.raises(TrainError, match="tooltune base build"):
        resolve_model_name("builtin")


def test_the_packaged_base_loads_and_generates_through_the_serving_path():
    from tooltune.runtime.model import load_model

    loaded = load_model("builtin", device="cpu")
    assert loaded.model.num_parameters() < 3_000_000
    assert loaded.call_format.name == "pythonic"
