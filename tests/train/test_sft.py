"""The hf backend on a tiny random Llama: LoRA and full training change the right weights, the run
dir reloads to identical logits, qlora fails fast, a killed run resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from tooltune.errors import TrainError
from tooltune.train import train
from tooltune.train.sft import latest_checkpoint, packing_isolates_examples

# PEFT 0.21 reads model.is_gradient_checkpointing, deprecated by transformers 5.23: noise, not ours.
PEFT_LOAD_NOISE = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
PROBE = torch.tensor([[5, 17, 42, 99, 3, 250, 7, 11]])


def logits(model):
    model.eval()
    with torch.no_grad():
        return model(input_ids=PROBE).logits


def base_weights(tiny_base):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_base)


@PEFT_LOAD_NOISE
def test_lora_trains_the_adapter_only_and_reloads_to_identical_logits(quick_config, tiny_base):
    from peft import PeftModel

    result = train(quick_config(method="lora"), progress=False)
    run = result.run_dir
    assert result.global_step == 4 and result.method == "lora"
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "manifest.json", "metrics.jsonl"} <= {
        p.name for p in run.iterdir()}
    assert not (run / "model.safetensors").exists()  # an adapter run ships the adapter, not a copy of the base

    trained = result.trained_model
    lora_b = {n: p for n, p in trained.named_parameters() if "lora_B" in n}
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b.values()), "LoRA B starts at zero and must have moved"
    base = dict(base_weights(tiny_base).named_parameters())
    for name, param in trained.named_parameters():
        if "lora_" not in name:  # base weights: frozen and unchanged
            assert not param.requires_grad, name
            key = name.removeprefix("base_model.model.").replace(".base_layer", "")
            assert torch.equal(param, base[key]), f"base weight {key} changed"

    reloaded = PeftModel.from_pretrained(base_weights(tiny_base), run)
    assert torch.allclose(logits(reloaded), logits(trained), atol=1e-6)
    assert not torch.allclose(logits(reloaded), logits(base_weights(tiny_base)), atol=1e-4)

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["base_model"]["local"] and len(manifest["base_model"]["content_hash"]) == 16
    assert manifest["data"]["train"]["examples"] == 8 and manifest["data"]["val"]["examples"] == 3
    assert manifest["catalog"]["hash"] and manifest["data"]["hash"] and manifest["chat"]["call_format"] == "hermes"
    assert manifest["config"]["method"] == "lora" and manifest["training"]["global_step"] == 4
    assert manifest["metrics"]["eval_loss"] > 0 and manifest["wall_time_s"] > 0 and manifest["peak_rss_mb"] > 0
    assert manifest["git"] is None or len(manifest["git"]["commit"]) == 40
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in records if "eval_loss" in r] == [2, 4]
    assert all(r["tokens_per_s"] > 0 and r["lr"] >= 0 for r in records if "loss" in r)


def test_full_training_updates_every_weight_and_reloads(quick_config, tiny_base):
    from transformers import AutoModelForCausalLM

    result = train(quick_config(method="full", packing=True, early_stopping_patience=None), progress=False)
    assert (result.run_dir / "model.safetensors").is_file() and not (result.run_dir / "adapter_config.json").exists()
    trained = result.trained_model
    base = dict(base_weights(tiny_base).named_parameters())
    changed = [n for n, p in trained.named_parameters() if not torch.equal(p, base[n])]
    assert len(changed) == len(base), set(base) - set(changed)
    reloaded = AutoModelForCausalLM.from_pretrained(result.run_dir)
    assert torch.equal(logits(reloaded), logits(trained))


def test_trl_trains_on_our_labels_unchanged(quick_config, tiny_base):
    """TRL uses a pre-tokenized ``labels`` column as is: the collated batch masks exactly what we masked."""
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from tooltune.data.examples import read_jsonl
    from tooltune.tools.catalog import ToolCatalog
    from tooltune.train.dataset import build_dataset

    config = quick_config()
    tok = AutoTokenizer.from_pretrained(tiny_base)
    dataset, _ = build_dataset(tok, read_jsonl(config.data_dir / "train.jsonl"), ToolCatalog.load(config.catalog_path))
    args = SFTConfig(output_dir=str(config.output_dir), max_length=2048, report_to="none", bf16=False,
                     activation_checkpointing=False, dataloader_pin_memory=False)
    trainer = SFTTrainer(model=base_weights(tiny_base), args=args, train_dataset=dataset, processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    for row in range(2):
        ours = dataset[row]["labels"]
        assert batch["labels"][row, : len(ours)].tolist() == ours
        assert (batch["labels"][row, len(ours):] == -100).all()


def test_packed_examples_are_isolated_on_this_setup(tiny_base):
    """TRL's padding-free collator restarts position_ids per example and sends no attention mask;
    with use_cache=False (SFTTrainer sets it) transformers' sdpa/eager masks then stay block-diagonal."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model = base_weights(tiny_base)
    assert model.config._attn_implementation == "sdpa"
    first, second = [4, 8, 15, 16, 23, 42], [7, 3, 99, 250, 11]
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(
        [{"input_ids": first}, {"input_ids": second}])
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4]] and "attention_mask" not in batch
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        alone = model(input_ids=torch.tensor([second])).logits
    assert torch.allclose(packed[:, len(first):], alone, atol=1e-5)
    assert packing_isolates_examples(model)

    class DropsPositions(torch.nn.Module):  # an attention path that ignores position_ids leaks across examples
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def forward(self, input_ids, position_ids=None, use_cache=False):
            return self.inner(input_ids=input_ids, use_cache=False)

    assert not packing_isolates_examples(DropsPositions(model))


def test_qlora_without_cuda_fails_before_loading_anything(quick_config, monkeypatch, tmp_path):
    import transformers

    def forbidden(*args, **kwargs):
        raise AssertionError("weights or tokenizer were loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", forbidden)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", forbidden)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = quick_config(method="qlora", base_model=str(tmp_path / "not-a-model"))
    with pytest.raises(TrainError, match=r"method: qlora .* needs a CUDA GPU .*Use method: lora"):
        train(config, progress=False)
    assert not config.output_dir.exists()


def test_a_used_run_dir_needs_resume_and_missing_data_is_named(quick_config, tmp_path):
    config = quick_config()
    config.output_dir.mkdir()
    (config.output_dir / "manifest.json").write_text("{}")
    with pytest.raises(TrainError, match=r"already holds a run \(manifest\.json\)\. Set resume: true"):
        train(config, progress=False)
    with pytest.raises(TrainError, match=r"nowhere/train\.jsonl: not found"):
        train(quick_config(data_dir=tmp_path / "nowhere", output_dir=tmp_path / "other"), progress=False)


RUNNER = textwrap.dedent("""
    import sys, time
    import torch, trl
    torch.set_num_threads(1)
    step = trl.SFTTrainer.training_step
    def slow_step(self, *args, **kwargs):  # slow enough to be killed mid-run
        time.sleep(0.4)
        return step(self, *args, **kwargs)
    trl.SFTTrainer.training_step = slow_step
    from tooltune.train import load_train_config, train
    train(load_train_config(sys.argv[1]), progress=False)
""")


def test_resume_after_sigkill_continues_from_the_last_checkpoint(quick_config, tmp_path):
    config = quick_config(max_steps=10, early_stopping_patience=None)
    path = tmp_path / "train.yaml"
    path.write_text(json.dumps(config.model_dump(mode="json")))  # JSON is YAML
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(path)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while latest_checkpoint(config.output_dir) is None:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    killed_at = int(latest_checkpoint(config.output_dir).name.removeprefix("checkpoint-"))
    assert 2 <= killed_at < 10 and not (config.output_dir / "manifest.json").exists()

    result = train(config.model_copy(update={"resume": True}), progress=False)
    assert result.resumed_from_step == killed_at and result.global_step == 10
    records = [json.loads(line) for line in (config.output_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 11))  # continued: no step trained twice
    manifest = json.loads((config.output_dir / "manifest.json").read_text())
    assert manifest["training"]["resumed_from_step"] == killed_at


def test_early_stopping_keeps_the_best_checkpoint(quick_config):
    from transformers import AutoModelForCausalLM

    # A learning rate this high makes val loss rise within a few steps.
    config = quick_config(method="full", learning_rate=0.5, max_steps=30, eval_steps=1, save_steps=1,
                          early_stopping_patience=1, save_total_limit=1, warmup_ratio=0.0)
    result = train(config, progress=True)
    assert result.stopped_early and result.global_step < 30
    evals = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r["eval_loss"] for r in evals if "eval_loss" in r}
    best_step = min(evals, key=evals.get)
    assert result.best_checkpoint == f"checkpoints/checkpoint-{best_step}" and best_step < result.global_step
    assert result.metrics["eval_loss"] == pytest.approx(evals[best_step], rel=1e-5)  # the saved model is the best
    best = AutoModelForCausalLM.from_pretrained(result.run_dir / result.best_checkpoint)
    assert torch.equal(logits(AutoModelForCausalLM.from_pretrained(result.run_dir)), logits(best))


@PEFT_LOAD_NOISE
def test_lora_on_the_top_layers_only_adapts_those_layers(quick_config, tiny_base):
    result = train(quick_config(lora={"top_layers": 1}, max_steps=1, eval_steps=1, save_steps=1), progress=False)
    adapted = {name.split(".layers.")[1].split(".")[0] for name, _ in result.trained_model.named_parameters()
               if "lora_" in name}
    assert adapted == {"1"}  # the tiny base has layers 0 and 1
    with pytest.raises(TrainError, match=r"lora.top_layers: 3 is more than the model's 2 layers"):
        train(quick_config(lora={"top_layers": 3}, output_dir=quick_config().output_dir.parent / "other"), progress=False)
