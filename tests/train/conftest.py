"""Training fixtures: a tiny random Llama + the tiny tokenizer on disk, built in about a second."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES, build_tiny_tokenizer

TRAIN_DATA = FIXTURES / "train"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    # The test machine's few cores are shared: torch's default thread pool makes a tiny model's
    # step ~10x slower through contention than a single thread.
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def save_tiny_model(directory: Path, chat_template: str | None = None) -> Path:
    from transformers import AutoModelForCausalLM, LlamaConfig

    tokenizer = build_tiny_tokenizer(chat_template)
    config = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        vocab_size=len(tokenizer), max_position_embeddings=4096, bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """Directory of a random-weight 2-layer Llama (hidden 32) with the tiny tokenizer (no chat template)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture
def quick_config(tiny_base, tmp_path):
    """Factory: a TrainConfig that trains the tiny model on the fixture data in a few seconds."""
    from tooltune.train import TrainConfig

    def make(**overrides) -> TrainConfig:
        fields = dict(
            base_model=str(tiny_base), data_dir=TRAIN_DATA, output_dir=tmp_path / "run", max_steps=4, batch_size=2,
            grad_accum=1, eval_steps=2, save_steps=2, logging_steps=1, learning_rate=1e-2,
            gradient_checkpointing=False,
        )
        fields.update(overrides)
        return TrainConfig(**fields)

    return make
