"""Prefix caching on the real SmolLM2-135M-Instruct: same greedy outputs as uncached decoding, base and
adapter (slow: a few minutes on a CPU; run with ``pytest -m slow tests/eval/test_prefix_cache_smollm2.py``)."""

from __future__ import annotations

import pytest

from tests.eval.test_prefix_cache import _requests
from tooltune.runtime.generate import Generator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2_dir():
    from tooltune.errors import ConfigError
    from tooltune.runtime.pretrained import resolve_pypi_model

    pytest.importorskip("gguf")
    try:
        return resolve_pypi_model("pypi:smollm2-135m-instruct")
    except ConfigError as e:
        pytest.skip(f"SmolLM2 package not installed: {e}")


@pytest.mark.parametrize("with_adapter", [False, True], ids=["base", "adapter"])
def test_smollm2_cached_generation_gives_the_uncached_outputs(smollm2_dir, shop_catalog, tmp_path, with_adapter):
    import torch

    from tooltune.runtime.model import load_model
    from tooltune.formats.chat import use_tool_listing

    torch.set_num_threads(1)
    adapter = _gentle_lora(smollm2_dir, tmp_path / "lora") if with_adapter else None
    loaded = load_model(smollm2_dir, adapter, device="cpu", dtype="fp32", merge_adapter=False)
    use_tool_listing(loaded.tokenizer, "compact")  # the demo's listing
    requests = _requests(shop_catalog, 32, seed=7)
    cached = Generator(loaded, max_new_tokens=32, batch_size=8)
    outputs = [g.text for g in cached.generate(requests)]
    uncached = [g.text for g in Generator(loaded, max_new_tokens=32, batch_size=8, prefix_cache=False).generate(requests)]
    assert outputs == uncached
    assert len(set(outputs)) > 16
    assert cached.prefill_tokens < 0.6 * cached.prompt_tokens


def _gentle_lora(base, directory):
    """A random LoRA on q/k/v/o small enough that the model still writes varied text."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(5)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.mul_(0.05)
    model.save_pretrained(directory)
    return directory
