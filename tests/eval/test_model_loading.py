"""load_model: base dirs, LoRA and full-weights run dirs, prompt-only model dirs, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tooltune.errors import ConfigError
from tooltune.runtime.model import load_model

USER = [{"role": "user", "content": "Charge John fifty dollars for invoice INV-1001."}]


def _logits(loaded, text: str = "What is the weather in Paris?") -> torch.Tensor:
    ids = loaded.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return loaded.model(ids).logits


@pytest.fixture(scope="module")
def lora_run(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA run dir as `tooltune train` writes it: adapter (random, non-zero B) + tokenizer."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False, task_type="CAUSAL_LM"))
    run = tmp_path_factory.mktemp("lora_run")
    peft_model.save_pretrained(run)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(run)
    return run


def test_base_model_is_ready_for_batched_generation(tiny_loaded):
    tok = tiny_loaded.tokenizer
    assert tiny_loaded.kind == "base"
    assert tok.padding_side == "left" and tok.pad_token is not None
    assert tiny_loaded.call_format.name == "hermes"  # the tiny tokenizer has no template: built-in one
    assert tok.convert_tokens_to_ids("<|im_end|>") in tiny_loaded.stop_token_ids
    assert not tiny_loaded.model.training
    prompt = tiny_loaded.render(USER, None)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_lora_run_dir_loads_alone_or_as_adapter_and_changes_the_model(tiny_model_dir, tiny_loaded, lora_run):
    alone = load_model(lora_run)
    on_base = load_model(tiny_model_dir, adapter=lora_run)
    unmerged = load_model(tiny_model_dir, adapter=lora_run, merge_adapter=False)
    assert alone.kind == on_base.kind == "adapter"
    assert alone.base_model == str(tiny_model_dir)  # read from adapter_config.json
    assert torch.allclose(_logits(alone), _logits(on_base))
    assert torch.allclose(_logits(alone), _logits(unmerged), atol=1e-5)
    assert not torch.allclose(_logits(alone), _logits(tiny_loaded), atol=1e-4)


def test_full_weights_run_dir_replaces_the_base(tiny_model_dir, tmp_path):
    from tests.train.conftest import save_tiny_model

    torch.manual_seed(7)
    full_run = save_tiny_model(tmp_path / "full")  # config.json + weights + tokenizer, other weights
    loaded = load_model(tiny_model_dir, adapter=full_run)
    assert loaded.kind == "full"
    assert torch.allclose(_logits(loaded), _logits(load_model(full_run)))


def test_prompt_only_model_prepends_its_system_prompt_and_few_shot(tiny_model_dir, tmp_path):
    few_shot = [
        {"role": "user", "content": "FEWSHOT-USER pay invoice INV-7"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "create_payment", "arguments": '{"amount": 700}'}}]},
        {"role": "tool", "content": '{"payment_id": "pay_0007"}'},
        {"role": "assistant", "content": "FEWSHOT-ANSWER paid."},
    ]
    (tmp_path / "prompt_model.json").write_text(json.dumps(
        {"kind": "prompt", "base_model": str(tiny_model_dir), "system": "SYSTEM-RULES amounts in cents.", "few_shot": few_shot}))
    loaded = load_model(tmp_path)
    assert loaded.kind == "prompt" and loaded.base_model == str(tiny_model_dir)

    prompt = loaded.render([{"role": "system", "content": "EXAMPLE-SYSTEM"}, *USER], None)
    order = [prompt.index(marker) for marker in
             ("SYSTEM-RULES", "EXAMPLE-SYSTEM", "FEWSHOT-USER", '"amount": 700', "pay_0007", "FEWSHOT-ANSWER", "Charge John")]
    assert order == sorted(order)
    assert prompt.count("<|im_start|>system") == 1  # the example's system prompt is merged, not repeated
    assert loaded.describe()["prompt_prefix_messages"] == 5


def test_bad_model_inputs_name_the_problem(tiny_model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="neither adapter_config.json"):
        load_model(tiny_model_dir, adapter=tmp_path / "empty")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "prompt_model.json").write_text(json.dumps({"kind": "lora", "few_shot": "nope"}))
    with pytest.raises(ConfigError) as err:
        load_model(tmp_path / "p")
    assert "kind" in str(err.value) and "base_model" in str(err.value) and "few_shot" in str(err.value)
    with pytest.raises(ConfigError, match="cannot load"):
        load_model(tmp_path / "empty")
