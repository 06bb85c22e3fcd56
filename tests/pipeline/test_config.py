"""pipeline.yaml: the data, train and eval sections are typed and checked when the file is read,
before any step runs; each step's cache key hashes exactly what the file sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tooltune.errors import ConfigError
from tooltune.pipeline import PipelineConfig
from tooltune.pipeline.config import section_fields
from tooltune.pipeline.run import _with_resolved_base
from tooltune.safeload import read_yaml

CONFIGS = Path(__file__).parents[2] / "configs"
SHIPPED = sorted(CONFIGS.glob("*pipeline.yaml"))


def demo_with(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """configs/demo-pipeline.yaml with text replaced, written to ``tmp_path``."""
    text = (CONFIGS / "demo-pipeline.yaml").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def problem_lines(info: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [line.strip() for line in str(info.value).splitlines()[1:]]


def test_a_typo_in_any_section_fails_at_load_naming_file_line_section_and_field(tmp_path):
    path = demo_with(tmp_path, ("max_new_tokens: 160", "max_new_tokns: 160"), ("  synthetic: 3000", "  synthetic: -5"),
                     ("  method: lora", "  method: lorra"))
    with pytest.raises(ConfigError) as info:
        PipelineConfig.load(path)
    lines = path.read_text().splitlines()
    number = {word: next(i for i, line in enumerate(lines, 1) if word in line) for word in ("synthetic: -5", "lorra", "tokns")}
    assert str(info.value).splitlines()[0] == f"{path}: 3 problems:"
    assert problem_lines(info) == [
        f"{path}:{number['synthetic: -5']}: data.synthetic: Input should be greater than or equal to 0 (got -5)",
        f"{path}:{number['lorra']}: train.method: Input should be 'lora', 'qlora' or 'full' (got 'lorra')",
        f"{path}:{number['tokns']}: eval.max_new_tokns: unknown field; did you mean 'eval.max_new_tokens'?",
    ]


def test_fields_the_pipeline_fills_in_are_refused_with_what_fills_them(tmp_path):
    path = demo_with(tmp_path, ("  seed: 0\n  # One tool", "  seed: 0\n  output_dir: mine\n  # One tool"),
                     ("  max_steps: 150", "  max_steps: 150\n  resume: true"), ("  limit: 40", "  limit: 40\n  model: other"))
    with pytest.raises(ConfigError) as info:
        PipelineConfig.load(path)
    found = problem_lines(info)
    assert [line.split(": ")[1] for line in found] == ["data.output_dir", "train.resume", "eval.model"]
    assert "set by the pipeline (the step's own folder under work_dir); remove it" in found[0]
    assert "set by the pipeline (train.base_model)" in found[2]


def test_train_base_model_is_required_before_anything_runs(tmp_path):
    path = demo_with(tmp_path, ("  base_model: pypi:smollm2-135m-instruct\n", ""))
    with pytest.raises(ConfigError, match=r"train\.base_model: required; add it \(The model to fine-tune"):
        PipelineConfig.load(path)


def test_a_pypi_base_is_resolved_when_the_run_starts_not_when_the_file_is_read():
    config = PipelineConfig.load(CONFIGS / "demo-pipeline.yaml")
    assert config.train.base_model == "pypi:smollm2-135m-instruct"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_each_section_hashes_what_the_file_says_so_cache_keys_are_unchanged(path, monkeypatch):
    """The step keys once hashed each section's YAML mapping (train's base_model resolved when the
    run started); the typed sections give the same values, data files resolved from the file's
    folder as before, so no cached step re-runs. (A stand-in resolver: the real one would load
    every shipped base model.)"""
    monkeypatch.setattr("tooltune.runtime.names.resolve_model_name",
                        lambda name: name if name.startswith("/resolved/") else f"/resolved/{name}")
    # Reading checks that a pypi: base's package is installed; `make test` does not install
    # Gemma's wheels (`make gemma` does), and this test is about the values, not the machine.
    monkeypatch.setattr("tooltune.runtime.pretrained.pypi_spec_problem", lambda spec: None)
    raw = read_yaml(path)
    config = _with_resolved_base(PipelineConfig.load(path))
    assert section_fields(config.train) == {**raw["train"], "base_model": f"/resolved/{raw['train']['base_model']}"}
    assert section_fields(config.eval) == raw["eval"]
    data = {**raw["data"], **{key: [str(CONFIGS.parent / Path(p).relative_to("..")) for p in raw["data"][key]]
                              for key in ("curated", "other_domain_tools") if key in raw["data"]}}
    assert section_fields(config.data) == data


def test_each_step_gets_its_stage_config_with_the_fields_the_file_set(tmp_path):
    path = demo_with(tmp_path, ("  limit: 40", "  limit: 40\n  splits: [holdout]"))
    config = PipelineConfig.load(path)
    stage = config.eval.stage(model="m", adapter=None, data_dir=tmp_path, output_dir=tmp_path / "out")
    assert (stage.model, stage.limit, stage.max_new_tokens, stage.split_limits) == ("m", 40, 160, {"test_multistep": 20})
    assert "splits" in stage.model_fields_set  # an explicitly named split that is missing is an error, not skipped
    data = config.data.stage(catalog=tmp_path / "catalog.json", output_dir=tmp_path / "data")
    assert data.synth is not None and data.synth.mix.no_call == 0.15 and data.synth.other_domains == 0.4 and data.held_out_tools == ["get_customer_by_name"]
