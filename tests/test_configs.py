"""The example configs shipped in configs/ stay valid as the config models change."""

from pathlib import Path

from tooltune.train import load_train_config

CONFIGS = Path(__file__).parents[1] / "configs"


def test_train_lora_example_loads_and_takes_overrides():
    config = load_train_config(CONFIGS / "train-lora.yaml", ["lora.r=32", "max_steps=10"])
    assert (config.method, config.lora.r, config.max_steps) == ("lora", 32, 10)
