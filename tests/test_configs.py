"""The example configs shipped in configs/ stay valid as the config models change."""

from pathlib import Path

from tooltune.train import load_train_config

CONFIGS = Path(__file__).parents[1] / "configs"


def test_train_lora_example_loads_and_takes_overrides():
    config = load_train_config(CONFIGS / "train-lora.yaml", ["lora.r=32", "max_steps=10"])
    assert (config.method, config.lora.r, config.max_steps) == ("lora", 32, 10)


def test_demo_pipeline_config_loads_with_paths_from_its_folder():
    from tooltune.pipeline import PipelineConfig

    config = PipelineConfig.load(CONFIGS / "demo-pipeline.yaml")
    assert config.work_dir == CONFIGS.parent / ".tooltune" / "demo-run" / "pipeline"
    curated = config.data.curated
    assert all(p.is_file() for p in curated)
    config.data.stage(catalog=Path("catalog.json"), output_dir=Path("out"))  # every data field is a DataConfig field
    config.train.stage(data_dir=Path("data"), output_dir=Path("out"), resume=False)  # as the pipeline builds it
    assert set(config.gates.critical_tools) <= {"create_payment", "refund_payment"} and config.gates.critical_min == 0.98


def test_no_shipped_config_names_the_removed_builtin_base():
    """`builtin` was the tests' tiny base inside the package; product configs name real models."""
    from tooltune.safeload import read_yaml

    def base_models(value):
        if isinstance(value, dict):
            yield from (v for k, v in value.items() if k == "base_model")
            yield from (m for v in value.values() for m in base_models(v))

    named = {path.name: list(base_models(read_yaml(path))) for path in CONFIGS.glob("*.yaml")}
    assert named["code-pipeline.yaml"] == ["pypi:smollm2-135m-instruct"]
    assert not [name for name, models in named.items() if "builtin" in models]


def test_smollm2_configs_name_the_real_base_and_lora():
    from tooltune.pipeline import PipelineConfig

    demo = PipelineConfig.load(CONFIGS / "demo-pipeline.yaml")
    lora = load_train_config(CONFIGS / "train-smollm2-lora.yaml", ["data_dir=data"])
    assert demo.train.base_model == "pypi:smollm2-135m-instruct" and demo.train.method == "lora"
    assert (lora.method, lora.tool_listing, lora.precision) == ("lora", "compact", "auto")
    assert (demo.train.precision, demo.eval.dtype) == ("auto", "auto")  # bf16 only where it is faster
    assert demo.eval.tool_listing == demo.train.tool_listing  # base and tuned see the same prompt bytes


def test_gemma_pipeline_config_differs_from_the_demo_only_in_model_and_places(monkeypatch):
    from tooltune.pipeline import PipelineConfig
    from tooltune.pipeline.config import section_fields

    # Loading checks that a pypi: base's package is installed; `make test` does not install Gemma's
    # wheels (`make gemma` does), and this test is about the file's contents, not the machine.
    monkeypatch.setattr("tooltune.runtime.pretrained.pypi_spec_problem", lambda spec: None)

    demo, gemma = (PipelineConfig.load(CONFIGS / name) for name in ("demo-pipeline.yaml", "gemma-pipeline.yaml"))
    assert gemma.train.base_model == "pypi:gemma3-270m"
    assert {**section_fields(gemma.train), "base_model": demo.train.base_model} == section_fields(demo.train)
    assert (gemma.data, gemma.eval, gemma.gates) == (demo.data, demo.eval, demo.gates)
    assert gemma.work_dir != demo.work_dir and gemma.name != demo.name
