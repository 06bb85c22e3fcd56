"""TrainConfig: YAML + --set overrides into one typed object; every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tooltune.errors import ConfigError
from tooltune.train import TrainConfig, load_train_config
from tooltune.train.config import config_fields_markdown

DOCS = Path(__file__).parents[2] / "docs" / "training.md"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides_fill_the_same_typed_object(tmp_path):
    path = write(tmp_path, "base_model: ./models/tiny\nmethod: full\nlora:\n  r: 8\nmax_steps: 100\npacking: false\n")
    config = load_train_config(path, ["lora.alpha=64", "packing=true", "max_steps=null", "learning_rate=3e-5",
                                      "lora.target_modules=[q_proj, v_proj]", "output_dir=runs/x"])
    assert config == TrainConfig(
        base_model="./models/tiny", method="full", lora={"r": 8, "alpha": 64, "target_modules": ["q_proj", "v_proj"]},
        packing=True, max_steps=None, learning_rate=3e-5, output_dir=Path("runs/x"),
    )
    assert config.effective_learning_rate == 3e-5
    assert TrainConfig(method="full").effective_learning_rate < TrainConfig(method="lora").effective_learning_rate


def test_overrides_alone_and_defaults():
    config = load_train_config(None, ["data_dir=data/shop"])
    assert config.catalog_path == Path("data/shop/catalog.json")
    assert config.lora.target_modules == "all-linear" and config.method == "lora" and config.backend == "hf"


def test_every_problem_is_reported_at_once_with_its_field_path(tmp_path):
    path = write(tmp_path, "method: lorra\nlora:\n  r: 0\n  rank: 4\nbatchsize: 8\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(path, ["epochs=lots", "packing"])
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}: 6 problems:"
    body = "\n".join(lines[1:])
    assert "--set 'packing': expected key=value" in body
    assert "method: Input should be 'lora', 'qlora' or 'full' (got 'lorra')" in body
    assert "lora.r: Input should be greater than 0 (got 0)" in body
    assert "lora.rank: unknown field; known fields: r, alpha, dropout, target_modules, top_layers." in body
    assert "batchsize: unknown field; did you mean 'batch_size'?" in body
    assert "epochs: Input should be a valid number" in body and "[from --set epochs=lots]" in body


def test_cross_field_problem_names_the_field_and_the_fix():
    with pytest.raises(ConfigError, match=r"save_steps: not a multiple of eval_steps \(20\).*Set save_steps to 40 "
                                          r"or early_stopping_patience to null\. \(got 30\)"):
        load_train_config(None, ["eval_steps=20", "save_steps=30"])
    assert load_train_config(None, ["eval_steps=20", "save_steps=30", "early_stopping_patience=null"]).save_steps == 30


def test_unreadable_yaml_names_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.yaml:2:4: not valid YAML"):
        load_train_config(write(tmp_path, "method: lora\n  r: 4\n"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_train_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="missing.yaml: no such file"):
        load_train_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="--set lora.r: lora is 'x', not a section"):
        load_train_config(None, ["lora=x", "lora.r=3"])


def test_docs_list_every_field_exactly_as_the_model_describes_it():
    assert config_fields_markdown() in DOCS.read_text(), "regenerate the table in docs/training.md"


def test_a_pypi_base_is_checked_while_validating_and_resolved_when_a_backend_runs(monkeypatch, tmp_path):
    """Validation stays cheap (the job API parses request bodies with TrainConfig): a pypi: spec
    is checked by name and package, never hashed or dequantized until ``resolved``."""
    from tooltune.runtime import pretrained

    monkeypatch.setitem(pretrained.PACKAGED_MODELS, "fake", pretrained.PackagedModel(
        module="json", gguf="fake.gguf", install="pip install fake-gguf", license="none"))
    resolved = []
    monkeypatch.setattr(pretrained, "resolve_pypi_model", lambda spec: resolved.append(spec) or tmp_path / "fake")
    config = TrainConfig(base_model="pypi:fake")
    assert config.base_model == "pypi:fake" and resolved == []
    assert config.resolved().base_model == str(tmp_path / "fake") and resolved == ["pypi:fake"]
    with pytest.raises(ConfigError, match=r"base_model: 'pypi:nope' is not a packaged model; known: .*pypi:fake"):
        load_train_config(None, ["base_model=pypi:nope"])
    monkeypatch.setitem(pretrained.PACKAGED_MODELS, "ghost", pretrained.PackagedModel(
        module="tooltune_no_such_module", gguf="x.gguf", install="pip install ghost-gguf", license="none"))
    with pytest.raises(ConfigError, match=r"base_model: pypi:ghost needs its package installed: pip install ghost-gguf"):
        load_train_config(None, ["base_model=pypi:ghost"])
    assert resolved == ["pypi:fake"]
