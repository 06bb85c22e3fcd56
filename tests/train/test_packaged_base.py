"""The committed tiny test base (tests/fixtures/tiny_base/model): it loads, its card records how it
was built; and `builtin`, the name tooltune 0.1.0 gave it inside the package, is refused with what
to name instead wherever a model is accepted."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.tiny_base import recipe as base
from tests.fixtures.tiny_base.recipe import BUILD_INFO, BaseBuildConfig, BaseBuildResult, reproduce_command
from tooltune.errors import ConfigError
from tooltune.runtime.names import resolve_model_name
from tooltune.runtime.pretrained import portable_model_name
from tooltune.train.config import TrainConfig


def test_the_tiny_base_is_committed_with_its_card(tiny_base_dir):
    info = json.loads((tiny_base_dir / BUILD_INFO).read_text())
    config = BaseBuildConfig(**info["config"])
    result = BaseBuildResult(output_dir=tiny_base_dir, **info["result"])
    card = (tiny_base_dir / "README.md").read_text()
    # The card's command is the one that reproduces these weights (steps pinned, not minutes).
    assert f"--max-steps {result.steps}" in reproduce_command(config, result)
    assert reproduce_command(config, result) in card
    assert set(info["evaluation"]) == set(base.EVAL_SPLITS)
    for split, scores in info["evaluation"].items():
        assert f"| {split} |" in card and 0.0 <= scores["accuracy"] <= 1.0


def test_builtin_is_refused_everywhere_with_what_to_name_instead(tmp_path, monkeypatch):
    from tooltune.runtime.model import load_model

    assert resolve_model_name("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    for load in (lambda: resolve_model_name("builtin"), lambda: TrainConfig(base_model="builtin"),
                 lambda: load_model("builtin", device="cpu")):
        with pytest.raises(ConfigError, match=r"^model 'builtin': `builtin` was tooltune's packaged test base, removed "
                                              r".*pypi:smollm2-135m-instruct"):
            load()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "builtin").mkdir()  # a folder of one's own with that name is a directory like any other
    assert resolve_model_name("builtin") == "builtin"


def test_a_registry_row_written_with_the_packaged_base_reads_as_builtin_and_fails_clearly():
    """Registries of tooltune 0.1.0 stored the packaged folder, or `builtin` (migration 0003 turned
    the one into the other): both still read as `builtin`, whose resolution says what to do."""
    stored = portable_model_name("/venv/lib/python3.11/site-packages/tooltune/base_model")
    assert stored == "builtin" and portable_model_name("builtin") == "builtin"
    with pytest.raises(ConfigError, match="register it again"):
        resolve_model_name(stored)


def test_the_tiny_base_loads_and_generates_through_the_serving_path(tiny_base_dir):
    from tooltune.runtime.model import load_model

    loaded = load_model(tiny_base_dir, device="cpu")
    assert loaded.model.num_parameters() < 3_000_000
    assert loaded.call_format.name == "pythonic"
