"""Prefix-shared training rows are exact: a row holding one copy of the tool listing and several
conversations gives the loss and the gradients of the same conversations trained one by one."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import build_tiny_tokenizer
from tests.train.conftest import TRAIN_DATA, save_tiny_model
from tooltune.data.examples import read_jsonl
from tooltune.formats.chat import BUILTIN_TEMPLATE, use_tool_listing
from tooltune.tools.catalog import ToolCatalog
from tooltune.train.dataset import IGNORE_INDEX, tokenize_conversation, tokenize_split
from tooltune.train.prefix_sharing import (
    PAD_SEGMENT,
    LayerMasks,
    PrefixSharedCollator,
    block_mask,
    mask_kind,
    shared_rows,
    sliding_window,
)

# PEFT 0.21 reads model.is_gradient_checkpointing, deprecated by transformers 5.23: noise, not ours.
PEFT_NOISE = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
CATALOG = ToolCatalog.load(TRAIN_DATA / "catalog.json")
REQUESTS = ["Charge cus_1 $5 for inv_7", "What is the weather in Paris?", "hi", "Refund pay_9 please, all of it now",
            "Weather in Rome and Madrid?", "Charge John fifty dollars for invoice INV-1001."]


def _conversations(tokenizer, requests=REQUESTS, tools=None):
    """Conversations offering the same tools (so they share a prefix), with one assistant call each,
    plus two offering other tools (packed whole or in their own group)."""
    tools = tools or [CATALOG.get("get_weather"), CATALOG.get("create_payment")]
    convs = []
    for i, text in enumerate(requests):
        messages = [{"role": "user", "content": text},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": f"C{i}"}}}]}]
        if i % 3 == 2:  # a two-turn one: tool result, then a final answer
            messages += [{"role": "tool", "content": '{"temp": 21}'}, {"role": "assistant", "content": "It is 21."}]
        convs.append(tokenize_conversation(tokenizer, messages, tools))
    alone = [CATALOG.get("get_weather")]
    for text in ("Weather in Oslo?", "weather in Lima"):
        convs.append(tokenize_conversation(tokenizer, [{"role": "user", "content": text},
                                                       {"role": "assistant", "content": "Sunny."}], alone))
    convs.append(tokenize_conversation(tokenizer, [{"role": "user", "content": "x"},
                                                   {"role": "assistant", "content": "y"}], [CATALOG.get("create_payment")]))
    return convs


def _summed_loss(model, input_ids, labels, **kwargs):
    """Summed next-token cross-entropy over the labelled tokens (the shift HF's loss uses)."""
    logits = model(input_ids=input_ids, use_cache=False, **kwargs).logits.float()
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX,
        reduction="sum")


def _loss_and_grads(model, compute):
    model.zero_grad()
    loss = compute()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


def _check_exact(model, tokenizer, convs, max_length, kind, *, windows="model", loss_rtol=1e-5, grad_rtol=1e-4):
    rows, stats = shared_rows(convs, max_length)
    assert stats.shared_conversations >= 4 and stats.tokens < stats.unshared_tokens
    assert sum(s > 0 for r in rows["segment_ids"] for s in set(r)) == len(convs)  # every conversation once
    labelled = sum(sum(t != IGNORE_INDEX for t in c.labels[1:]) for c in convs)
    windows = sliding_window(model) if windows == "model" else windows
    collate = PrefixSharedCollator(tokenizer.pad_token_id, kind, sliding_window=windows)

    def shared():
        batch = collate([{k: rows[k][i] for k in rows} for i in range(len(rows["input_ids"]))])
        return _summed_loss(model, batch["input_ids"], batch["labels"], position_ids=batch["position_ids"],
                            attention_mask=batch["attention_mask"]) / labelled

    def one_by_one():
        return sum(_summed_loss(model, torch.tensor([c.input_ids]), torch.tensor([c.labels])) for c in convs) / labelled

    loss_s, grads_s = _loss_and_grads(model, shared)
    loss_u, grads_u = _loss_and_grads(model, one_by_one)
    assert torch.isfinite(loss_s)
    assert abs(loss_s - loss_u) <= loss_rtol * abs(loss_u), (loss_s, loss_u)
    assert grads_s.keys() == grads_u.keys() and grads_u
    for name, g in grads_u.items():
        assert torch.linalg.norm(grads_s[name] - g) <= grad_rtol * torch.linalg.norm(g) + 1e-12, name
    return stats


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = save_tiny_model(tmp_path_factory.mktemp("tiny_chat"), BUILTIN_TEMPLATE)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def test_conversations_with_the_same_tools_share_their_listing_prefix(tiny_chat):
    _, tok = tiny_chat
    convs = _conversations(tok)
    text = convs[0].text
    prefix = tok.decode(convs[0].input_ids[:convs[0].prefix_len])
    assert prefix.endswith("<|im_end|>\n<|im_start|>") and "get_weather" in prefix and text.startswith(prefix)
    assert len({tuple(c.input_ids[:c.prefix_len]) for c in convs[:len(REQUESTS)]}) == 1
    assert not any(convs[0].assistant_mask[:convs[0].prefix_len])


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_shared_rows_give_the_loss_and_lora_gradients_of_conversations_one_by_one(tiny_chat, impl):
    from peft import LoraConfig, get_peft_model

    base, tok = tiny_chat
    base.config._attn_implementation = impl
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    try:
        kind, _ = mask_kind(model)
        assert kind == {"sdpa": "bool", "eager": "float"}[impl]
        convs = _conversations(tok)
        stats = _check_exact(model, tok, convs, max_length=max(len(c.input_ids) for c in convs) + 200, kind=kind)
        assert stats.rows < stats.conversations
    finally:
        model.unload()
        base.config._attn_implementation = "sdpa"


def test_shared_rows_give_the_full_fine_tuning_gradients_too(tiny_chat):
    base, tok = tiny_chat
    for p in base.parameters():
        p.requires_grad_(True)
    convs = _conversations(tok)
    _check_exact(base, tok, convs, max_length=max(len(c.input_ids) for c in convs) + 200, kind="bool")


def _tiny_gemma3(tokenizer, impl):
    """A random Gemma 3 text model whose sliding layers see 16 positions: far less than the listing."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=16, layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=4096, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, attn_implementation=impl)
    torch.manual_seed(0)
    return Gemma3ForCausalLM(config)


@PEFT_NOISE
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_sliding_window_layers_see_the_window_they_see_alone(tiny_chat, impl):
    """Gemma 3 mixes full and sliding-window layers; a single block mask would show its sliding
    layers the whole listing (not exact: the one-by-one loss differs). One mask per layer type is."""
    from peft import LoraConfig, get_peft_model

    _, tok = tiny_chat
    model = get_peft_model(_tiny_gemma3(tok, impl),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    assert sliding_window(model) == (16, True)
    kind, _ = mask_kind(model)
    convs = _conversations(tok)
    assert min(c.prefix_len for c in convs[:len(REQUESTS)]) > 16
    max_length = max(len(c.input_ids) for c in convs) + 200
    _check_exact(model, tok, convs, max_length, kind)
    rows, _ = shared_rows(convs, max_length)
    batch = PrefixSharedCollator(tok.pad_token_id, kind, sliding_window=(16, True))(
        [{k: rows[k][0] for k in rows}])
    assert isinstance(batch["attention_mask"], LayerMasks)
    with pytest.raises(AssertionError):  # one mask for every layer, as before: not exact
        _check_exact(model, tok, convs, max_length, kind, windows=None)


def test_rows_respect_max_length_and_keep_every_conversation_once(tiny_chat):
    _, tok = tiny_chat
    convs = _conversations(tok)
    longest = max(len(c.input_ids) for c in convs)
    rows, stats = shared_rows(convs, longest + 10)
    assert all(len(r) <= longest + 10 for r in rows["input_ids"])
    trained = sorted(t for r in rows["labels"] for t in r if t != IGNORE_INDEX)
    assert trained == sorted(t for c in convs for t in c.labels if t != IGNORE_INDEX)
    for ids, pos, seg in zip(rows["input_ids"], rows["position_ids"], rows["segment_ids"], strict=True):
        for k in set(seg) - {0}:  # each conversation sits at the positions it has alone
            at = [i for i, s in enumerate(seg) if s == k]
            start = pos[at[0]]
            assert [pos[i] for i in at] == list(range(start, start + len(at)))
            assert any(ids[:len(c.input_ids)] == c.input_ids or
                       (ids[:c.prefix_len] == c.input_ids[:c.prefix_len] and [ids[i] for i in at] == c.input_ids[c.prefix_len:])
                       for c in convs)
    with pytest.raises(ValueError, match="does not fit"):
        shared_rows(convs, longest - 1)


def test_padding_rows_attend_only_to_themselves_and_count_no_tokens():
    seg = torch.tensor([[0, 0, 1, 1, 2], [0, 1, PAD_SEGMENT, PAD_SEGMENT, PAD_SEGMENT]])
    mask = block_mask(seg, "bool")[:, 0]
    assert mask[0, 4].tolist() == [True, True, False, False, True]  # conversation 2: prefix and itself
    assert mask[0, 3].tolist() == [True, True, True, True, False]
    assert mask[1, 3].tolist() == [False, False, False, True, False]
    additive = block_mask(seg, "float")[:, 0]
    assert additive[0, 4, 2] == torch.finfo(torch.float32).min and additive[0, 4, 0] == 0
    batch = PrefixSharedCollator(0, "bool")([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "position_ids": [0, 1, 2],
                                              "segment_ids": [0, 1, 1]},
                                             {"input_ids": [5], "labels": [-100], "position_ids": [0], "segment_ids": [1]}])
    assert batch["num_tokens"] == 4 and batch["labels"][1].tolist() == [-100, -100, -100]


def test_attention_without_custom_masks_is_named(tiny_chat):
    base, _ = tiny_chat
    base.config._attn_implementation = "flash_attention_2"
    try:
        kind, why = mask_kind(base)
    finally:
        base.config._attn_implementation = "sdpa"
    assert kind is None and "flash_attention_2" in why and "packed whole" in why


def test_a_prefix_the_tokenizer_merges_into_the_conversation_is_not_shared():
    from tooltune.train.dataset import _prefix_tokens

    tok = build_tiny_tokenizer()
    ids = tok("Charge John fifty dollars", add_special_tokens=False)["input_ids"]
    mask = [0] * len(ids)
    # "Charge Jo" alone ends in tokens that "Charge John" merges differently: never cut there.
    assert tok("Charge Jo", add_special_tokens=False)["input_ids"] != ids[:len(tok("Charge Jo")["input_ids"])]
    assert _prefix_tokens(tok, "Charge Jo", ids, mask) == 0
    assert _prefix_tokens(tok, "Charge", ids, mask) == len(tok("Charge", add_special_tokens=False)["input_ids"])
    assert _prefix_tokens(tok, "Charge", ids, [1] * len(ids)) == 0  # a trained token is never shared


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs the CPU build of torch")
def test_exact_on_smollm2(smollm2_dir):
    """The same check on the real SmolLM2-135M-Instruct with LoRA on every linear layer (fp32, sdpa)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    use_tool_listing(tok, "compact")
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    torch.manual_seed(0)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
    examples = list(read_jsonl(TRAIN_DATA / "train.jsonl"))
    convs, _ = tokenize_split(tok, examples, CATALOG)
    convs += _conversations(tok)
    _check_exact(model, tok, convs, max_length=1024, kind="bool")


@pytest.fixture
def sharing_config(tmp_path):
    """A TrainConfig on the tiny model with the built-in template, where examples share prefixes."""
    from tooltune.train import TrainConfig

    base = save_tiny_model(tmp_path / "base")
    data = tmp_path / "data"
    data.mkdir()
    (data / "catalog.json").write_text((TRAIN_DATA / "catalog.json").read_text())
    lines = (TRAIN_DATA / "train.jsonl").read_text().splitlines()
    (data / "train.jsonl").write_text("\n".join(lines * 3) + "\n")  # repeats share their listing
    (data / "val.jsonl").write_text((TRAIN_DATA / "val.jsonl").read_text())

    def make(**overrides) -> TrainConfig:
        fields = dict(base_model=str(base), data_dir=data, output_dir=tmp_path / "run", max_steps=2, batch_size=2,
                      grad_accum=1, eval_steps=2, save_steps=2, logging_steps=1, learning_rate=1e-2,
                      gradient_checkpointing=False, packing=True, max_length=4096, early_stopping_patience=None)
        fields.update(overrides)
        return TrainConfig(**fields)

    return make


@PEFT_NOISE
def test_training_reads_shared_rows_and_records_what_they_saved(sharing_config):
    import json

    from tooltune.train import train

    result = train(sharing_config(), progress=False)
    manifest = json.loads(result.manifest_path.read_text())
    rows = manifest["data"]["rows"]
    assert rows["prefix_sharing"] is True and "sdpa" in rows["why"]
    assert rows["conversations"] == manifest["data"]["train"]["trained_examples"] == 24
    assert rows["rows"] < 24 and rows["tokens"] < rows["unshared_tokens"] and rows["saving"] > 1.5
    assert torch.isfinite(torch.tensor(result.metrics["train_loss"])) and "eval_loss" in result.metrics
    logged = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    tokens = [r["tokens_per_s"] for r in logged if "tokens_per_s" in r]
    assert tokens and all(t > 0 for t in tokens)  # real tokens counted, not attention-mask pairs


@PEFT_NOISE
def test_training_a_sliding_window_model_on_shared_rows(sharing_config, tmp_path):
    """The per-layer-type masks go through TRL and PEFT to Gemma 3's layers (and TRL's token count)."""
    import json

    from tooltune.train import train

    tok = build_tiny_tokenizer()
    base = tmp_path / "gemma"
    _tiny_gemma3(tok, "sdpa").save_pretrained(base)
    tok.save_pretrained(base)
    result = train(sharing_config(base_model=str(base)), progress=False)
    rows = json.loads(result.manifest_path.read_text())["data"]["rows"]
    assert rows["prefix_sharing"] is True and rows["saving"] > 1.5
    assert torch.isfinite(torch.tensor(result.metrics["train_loss"])) and "eval_loss" in result.metrics


def test_layers_a_block_mask_cannot_express_fall_back_to_plain_packing(tiny_chat):
    _, tok = tiny_chat
    model = _tiny_gemma3(tok, "sdpa")
    model.config.layer_types = ["full_attention", "linear_attention"]
    kind, why = mask_kind(model)
    assert kind is None and "linear_attention" in why and "packed whole" in why


def test_a_layer_types_key_the_model_does_not_declare_is_not_read(tiny_chat):
    """A checkpoint's config.json can carry keys its model ignores (a Mistral checkpoint with
    layer_types): every layer of such a model slides, so it gets one windowed mask, not a dict."""
    base, _ = tiny_chat
    base.config.sliding_window, base.config.layer_types = 8, ["sliding_attention", "full_attention"]
    try:
        assert sliding_window(base) == (8, False) and mask_kind(base)[0] == "bool"
    finally:
        del base.config.sliding_window, base.config.layer_types


@PEFT_NOISE
def test_attention_that_cannot_take_the_mask_falls_back_to_plain_packing_and_says_why(sharing_config, monkeypatch, caplog):
    import json
    import logging

    from tooltune.train import prefix_sharing, train

    monkeypatch.setattr(prefix_sharing, "MASKABLE_ATTENTION", {})
    with caplog.at_level(logging.WARNING, logger="tooltune.train.sft"):
        result = train(sharing_config(), progress=False)
    assert any("prefix sharing off" in r.getMessage() and "sdpa" in r.getMessage() for r in caplog.records)
    rows = json.loads(result.manifest_path.read_text())["data"]["rows"]
    assert rows["prefix_sharing"] is False and "does not take a custom 4D attention mask" in rows["why"]


@PEFT_NOISE
def test_full_fine_tuning_trains_on_shared_rows(sharing_config):
    import json

    from tooltune.train import train

    result = train(sharing_config(method="full", max_steps=1, eval_steps=1, save_steps=1), progress=False)
    rows = json.loads(result.manifest_path.read_text())["data"]["rows"]
    assert rows["prefix_sharing"] is True and rows["rows"] < rows["conversations"]
    assert (result.run_dir / "model.safetensors").is_file()


def test_two_processes_train_on_shared_rows(sharing_config, tmp_path):
    """DDP (torchrun, two CPU processes over gloo): each rank reads shared rows, rank 0 writes the run."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.is_file():
        pytest.skip("torchrun is not installed next to this Python")
    config = sharing_config(max_steps=2)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "-m", "tooltune.train", "--config", str(path), "--no-progress"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((config.output_dir / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["training"]["global_step"] == 2
    assert manifest["data"]["rows"]["prefix_sharing"] is True
