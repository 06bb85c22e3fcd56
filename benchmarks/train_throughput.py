"""Training throughput: tooltune's ``hf`` backend vs a plain TRL ``SFTTrainer``, same model, data, machine.

    .venv/bin/python benchmarks/train_throughput.py [--steps 14] [--batch-size 8] [--rounds 1]
        [--sides trl,trl-2048,tooltune] [--workdir DIR]
    .venv/bin/python benchmarks/train_throughput.py --model pypi:smollm2-135m-instruct [--method lora|full]
        [--steps 6] [--batch-size 4] [--warmup 1] [--sides trl,tooltune-fp32,tooltune]

With ``--model`` (a real pretrained model; any ``base_model`` spec, resolved by
``tooltune.runtime.names.resolve_model_name`` to a local HF directory with the model's own tokenizer)
both sides train that model with ``--method`` (default lora: r=16, alpha=32, all-linear, dropout 0
on both sides) on the same 400 conversations; see "Real model" below. Without it, the toy setup:

Setup (built once, in a temp dir or ``--workdir``): 400 synthetic shop examples
(``tooltune.data.synth``, no multi-step; 250-1750 tokens, median ~800, ~5% of them assistant
tokens), a byte-level BPE tokenizer trained on them whose chat template is tooltune's built-in
tool template, and a random-init Llama (hidden 256, 6 layers, ~5.8M params). Both sides render
conversations with that same template.

Each run is its own subprocess (so peak RSS is separate): full fine-tuning, ``--steps``
optimizer steps of ``--batch-size`` conversations, fp32 on CPU, torch's default threads. The
first line printed names the machine (CPU model, cores, torch threads); each side's row, its precision.

- ``trl``: ``SFTTrainer`` on a conversational dataset (``messages`` + ``tools`` columns, as TRL
  documents), ``SFTConfig`` defaults except ``output_dir``, ``max_steps``,
  ``per_device_train_batch_size`` and ``bf16=False`` (TRL's default ``bf16=True`` refuses to run
  on a CPU-only machine). Its default ``max_length=1024`` cuts ~27% of these conversations, and
  with them the assistant turn at their end;
- ``trl-2048``: the same with ``max_length=2048`` (tooltune's), so both train on whole conversations;
- ``tooltune``: ``tooltune.train.train`` with its defaults (``method: full``; no packing, so
  length-grouped batches; gradient checkpointing on, as in TRL);
- ``tooltune-no-ckpt``, ``tooltune-packed``: the same with ``gradient_checkpointing: false`` or
  ``packing: true``; ``tooltune-random``: the same with random (not length-grouped) batches.

tokens/s counts real (non-padding) input tokens (TRL's ``num_tokens``) over the steps after the
first ``--warmup`` (model loading, tokenization and saving excluded), per wall second and per
CPU second of the process (all threads; steadier than wall time when other jobs share the
cores); ``wall_s`` is the whole subprocess. With ``--rounds`` > 1 the sides alternate and the median is reported: the machine is
shared, so single runs vary by up to 1.5x.

Real model (``--model``). SmolLM2's own chat template renders neither ``tools`` nor assistant
``tool_calls``, so both sides render with tooltune's built-in ChatML template (what tooltune uses for
such models): the TRL side's tokenizer gets it as its ``chat_template`` (JSON-Schema tool listing,
i.e. ``tool_listing: schema``); nothing else of the model's files changes. Sides:

- ``trl``: ``SFTTrainer(model=<dir>, peft_config=LoraConfig(...))`` (TRL loads the model itself, fp32
  by default) on the conversational dataset; ``SFTConfig`` defaults except ``output_dir``,
  ``max_steps``, ``per_device_train_batch_size=--batch-size``, ``bf16=False`` (TRL's default
  ``bf16=True`` refuses to start on a CPU-only machine unless ``use_cpu=True``), ``report_to``,
  ``disable_tqdm``. So: every token trained, ``max_length`` 1024 (longer conversations cut),
  padded batches in random order, gradient checkpointing on, fp32;
- ``trl-bf16``: the same plus ``use_cpu=True``, which lets TRL's default ``bf16=True`` run (autocast);
- ``tooltune``: ``tooltune.train.train`` with the demo's settings (configs/train-smollm2-lora.yaml):
  ``tool_listing: compact``, ``packing: true`` (padding-free rows of up to ``max_length: 1024``),
  ``gradient_checkpointing: false``, ``precision: auto`` (bf16 autocast where this CPU runs it faster,
  e.g. AMX-BF16 on Sapphire Rapids, fp32 elsewhere; the table's ``prec`` column says which),
  ``batch_size: 1``, ``grad_accum: --batch-size``, plus what every tooltune run has (assistant-only
  labels and the LM head scored only on them);
- ``tooltune-fp32``: the same with ``precision: fp32``, so the bf16 lever is measured apart.

The compact listing makes each conversation fewer tokens, so tokens/s alone flatters neither side
fairly: examples/s (conversations trained per wall second) is the same-data figure, and both are
reported. A step is ``--batch-size`` conversations for TRL and ``--batch-size`` packed rows (several
conversations each) for tooltune.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tooltune.runtime.machine import machine_line

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "tests" / "fixtures" / "catalogs" / "shop.json"
SIDES = ("trl", "trl-2048", "trl-bf16", "tooltune", "tooltune-fp32", "tooltune-random", "tooltune-no-ckpt",
         "tooltune-packed", "tooltune-shared-fp32")
LEVERS = {  # what each side does differently, printed under the table (real-model sides)
    "trl": "TRL defaults: all tokens trained, cut at 1024, padded random batches, grad ckpt, fp32, schema listing",
    "trl-bf16": "TRL defaults + use_cpu=True so its default bf16=True runs (autocast)",
    "tooltune-packed": "compact listing, packing (padding-free rows of --max-length, one copy of the listing per "
                       "conversation: before prefix sharing), no grad ckpt, assistant-only loss + compact LM head, "
                       "precision auto",
    "tooltune-fp32": "tooltune-packed in fp32",
    "tooltune": "tooltune-packed + prefix sharing (one copy of the listing per row, block 4D mask)",
    "tooltune-shared-fp32": "tooltune in fp32",
}


def build_workdir(workdir: Path, n: int, real_model: bool = False) -> None:
    """Synthetic data in tooltune's split layout and TRL's conversational JSONL, and (for the toy
    setup, not with a real model) a tokenizer and a random-init model."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from tooltune.data.examples import write_jsonl
    from tooltune.data.io import openai as openai_jsonl
    from tooltune.data.synth import SynthConfig, generate
    from tooltune.formats.chat import BUILTIN_TEMPLATE, render_chat
    from tooltune.tools.catalog import ToolCatalog

    catalog = ToolCatalog.load(CATALOG)
    examples = generate(catalog, SynthConfig(n=n, seed=0, execute_multistep=False)).examples
    data = workdir / "data"
    data.mkdir(parents=True)
    write_jsonl(examples, data / "train.jsonl")
    catalog.save(data / "catalog.json")
    exported = openai_jsonl.write(examples, workdir / "openai.jsonl", catalog)
    assert exported.written == len(examples), exported.skipped[:1]
    # TRL's documented conversational format: tools as a JSON string column (Arrow would coerce a list of schemas).
    with (workdir / "trl.jsonl").open("w") as out:
        for line in (workdir / "openai.jsonl").read_text().splitlines():
            record = json.loads(line)
            out.write(json.dumps({"messages": record["messages"], "tools": json.dumps(record["tools"])}) + "\n")
    if real_model:
        return

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bootstrap = _bpe(special, ["<|im_start|>system\nYou can call these tools"], 300)
    texts = [render_chat(bootstrap, e.messages, e.offered_tools(catalog)) for e in examples]
    tokenizer = _bpe(special, texts, 4096)
    tokenizer.chat_template = BUILTIN_TEMPLATE
    tokenizer.save_pretrained(workdir / "model")
    config = LlamaConfig(hidden_size=256, intermediate_size=688, num_hidden_layers=6, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=len(tokenizer), max_position_embeddings=4096,
                         bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    AutoModelForCausalLM.from_config(config).save_pretrained(workdir / "model")


def _bpe(special: list[str], texts: list[str], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=special,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>"])


class _Meter:
    """Trainer callback: time, cumulative real tokens and examples at the end of every optimizer step."""

    def __init__(self) -> None:
        self.trainer = None
        self.examples = 0
        self.marks: list[tuple[float, float, int, int]] = []

    def attach(self, trainer) -> None:
        """Record steps of ``trainer`` and count the conversations in every micro-batch it trains on."""
        self.trainer = trainer
        trainer.add_callback(self())
        training_step = trainer.training_step

        def counting_step(model, inputs, *args, **kwargs):
            # Padded batches have a 2D attention mask (one row per conversation); packed rows (padding-free,
            # or prefix-shared with a 4D mask) restart their position_ids at every conversation but the first
            # of a row. Packed sides run one row per micro-batch, so no padding is counted.
            mask = inputs.get("attention_mask")
            if mask is not None and mask.dim() == 2:
                self.examples += inputs["input_ids"].shape[0]
            else:
                pos = inputs["position_ids"]
                self.examples += pos.shape[0] + int((pos[:, 1:] <= pos[:, :-1]).sum())
            return training_step(model, inputs, *args, **kwargs)

        trainer.training_step = counting_step

    def __call__(self):  # a TrainerCallback instance, built lazily so the parent never imports transformers
        from transformers import TrainerCallback

        meter = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                meter.marks.append((time.perf_counter(), time.process_time(), int(meter.trainer._total_train_tokens),
                                    meter.examples))

        return Callback()

    def rates(self, warmup: int) -> dict[str, float]:
        """tokens per wall second and per CPU second (all threads), examples per wall second, seconds per step."""
        (t0, c0, n0, e0), (t1, c1, n1, e1) = self.marks[warmup - 1], self.marks[-1]
        return {"tokens_per_s": round((n1 - n0) / (t1 - t0), 1), "tokens_per_cpu_s": round((n1 - n0) / (c1 - c0), 1),
                "examples_per_s": round((e1 - e0) / (t1 - t0), 3), "step_s": round((t1 - t0) / (len(self.marks) - warmup), 3),
                "tokens_per_example": round((n1 - n0) / max(e1 - e0, 1), 1)}


def worker(side: str, workdir: Path, steps: int, batch_size: int, warmup: int, model: str | None = None,
           method: str = "full", max_length: int = 2048) -> dict:
    started = time.perf_counter()
    import torch

    meter = _Meter()
    out = Path(tempfile.mkdtemp(prefix=f"{side}-", dir=workdir))
    if side.startswith("trl"):
        facts = _trl_side(side, workdir, out, steps, batch_size, meter, model, method)
    else:
        facts = _tooltune_side(side, workdir, out, steps, batch_size, meter, model, method, max_length)
    return {"side": side, **meter.rates(warmup), "steps": steps, "tokens": meter.marks[-1][2],
            "examples": meter.marks[-1][3], **facts, "wall_s": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "torch_threads": torch.get_num_threads()}


def _trl_side(side: str, workdir: Path, out: Path, steps: int, batch_size: int, meter: _Meter, model: str | None,
              method: str) -> dict:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    dataset = load_dataset("json", data_files=str(workdir / "trl.jsonl"), split="train")
    # trl-2048: TRL's max_length (1024) cuts ~1 in 5 of these conversations, tool call included; 2048 is
    # tooltune's max_length, so both then train on the same whole conversations.
    extra: dict = {"max_length": 2048} if side == "trl-2048" else {}
    if side == "trl-bf16":
        extra["use_cpu"] = True  # lets TRL's default bf16=True run on a CPU (autocast)
    else:
        extra["bf16"] = False  # TRL's default bf16=True refuses to start on a CPU-only machine
    peft_config = None
    if model is None:
        model_arg, tokenizer = AutoModelForCausalLM.from_pretrained(workdir / "model"), AutoTokenizer.from_pretrained(workdir / "model")
    else:
        from peft import LoraConfig

        from tooltune.formats.chat import BUILTIN_TEMPLATE

        model_arg, tokenizer = model, AutoTokenizer.from_pretrained(model)
        # The model's own template drops tools and tool calls; render with tooltune's (schema listing), as tooltune does.
        tokenizer.chat_template = BUILTIN_TEMPLATE
        if method == "lora":
            peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                     task_type="CAUSAL_LM")
    args = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch_size,
                     report_to="none", disable_tqdm=True, **extra)
    trainer = SFTTrainer(model=model_arg, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    meter.attach(trainer)
    trainer.train()
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    return {"conversations": len(lengths), "cut": sum(n >= args.max_length for n in lengths),
            "mean_tokens": round(statistics.mean(lengths)), "precision": "bf16" if args.bf16 else "fp32"}


def _tooltune_side(side: str, workdir: Path, out: Path, steps: int, batch_size: int, meter: _Meter,
                   model: str | None, method: str, max_length: int = 2048) -> dict:
    from tooltune.train import TrainConfig, sft
    from tooltune.runtime.precision import precision_for

    build = sft._build_trainer

    def with_meter(*args, **kwargs):
        trainer, log, bar = build(*args, **kwargs)
        meter.attach(trainer)
        return trainer, log, bar

    sft._build_trainer = with_meter
    if side == "tooltune-random":  # batches as before length grouping: random, padded to the longest
        sft_args = sft._sft_args

        def random_batches(*a, **k):
            args = sft_args(*a, **k)
            args.train_sampling_strategy = "random"
            return args

        sft._sft_args = random_batches
    common = {"data_dir": workdir / "data", "output_dir": out, "max_steps": steps, "early_stopping_patience": None,
              "save_steps": 10_000}
    if model is None:
        # fp32 like the TRL side: the toy sides measure packing, batching and checkpointing, not precision.
        config = TrainConfig(base_model=str(workdir / "model"), method="full", batch_size=batch_size, grad_accum=1,
                             packing=side == "tooltune-packed", gradient_checkpointing=side != "tooltune-no-ckpt",
                             precision="fp32", **common)
    else:  # the demo's settings (configs/demo-pipeline.yaml); a step is batch_size packed rows
        config = TrainConfig(base_model=model, method=method, lora={"r": 16, "alpha": 32, "dropout": 0.0},
                             tool_listing="compact", packing=True, max_length=max_length, gradient_checkpointing=False,
                             prefix_sharing=side in ("tooltune", "tooltune-shared-fp32"),
                             precision="fp32" if side.endswith("fp32") else "auto", batch_size=1,
                             grad_accum=batch_size, **common)
    result = sft.train(config, progress=False)
    data = json.loads(result.manifest_path.read_text())["data"]["train"]
    return {"conversations": data["trained_examples"], "cut": data["skipped_too_long"],
            "mean_tokens": round(data["tokens"] / max(data["trained_examples"], 1)),
            "precision": precision_for(config.precision, config.base_model)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a real model spec (e.g. pypi:smollm2-135m-instruct) instead of the toy model")
    parser.add_argument("--method", choices=("lora", "full"), help="with --model; default lora")
    parser.add_argument("--steps", type=int, help="optimizer steps per side (default 14; 6 with --model)")
    parser.add_argument("--warmup", type=int, help="steps left out of the rates (default 4; 1 with --model)")
    parser.add_argument("--batch-size", type=int, help="conversations (TRL) / rows per step (default 8; 4 with --model)")
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=2048,
                        help="row length of the packed tooltune sides with --model (default 2048, the demo's)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--sides", help=f"comma-separated, from {','.join(SIDES)} (default trl,trl-2048,tooltune; "
                                        "trl,tooltune-fp32,tooltune with --model)")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help="reuse (or create) the data/model here instead of a temp dir")
    args = parser.parse_args()
    real = args.model is not None
    for name, toy, with_model in (("steps", 14, 6), ("warmup", 4, 1), ("batch_size", 8, 4), ("method", "full", "lora"),
                                  ("sides", "trl,trl-2048,tooltune", "trl,tooltune-packed,tooltune")):
        if getattr(args, name) is None:
            setattr(args, name, with_model if real else toy)

    if args.worker:
        print(json.dumps(worker(args.worker, args.workdir, args.steps, args.batch_size, args.warmup, args.model,
                                args.method, args.max_length)))
        return
    print(machine_line(), flush=True)  # each side's precision is in its row
    if real:
        from tooltune.runtime.names import resolve_model_name

        model_dir = resolve_model_name(args.model)  # resolved (and cached) once, before the timed sides
        print(f"model: {args.model} -> {model_dir}, method {args.method}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="train-throughput-") as tmp:
        workdir = args.workdir or Path(tmp)
        t = time.perf_counter()
        if not (workdir / "data").is_dir():
            build_workdir(workdir, args.examples, real_model=real)
        print(f"setup: {args.examples} examples{'' if real else ', tokenizer, model'} in {time.perf_counter() - t:.1f}s",
              file=sys.stderr)
        runs: dict[str, list[dict]] = {}
        for _ in range(args.rounds):
            for side in args.sides.split(","):
                cmd = [sys.executable, __file__, "--worker", side, "--workdir", str(workdir), "--steps",
                       str(args.steps), "--batch-size", str(args.batch_size), "--warmup", str(args.warmup),
                       "--method", args.method, "--max-length", str(args.max_length),
                       *(["--model", model_dir] if real else [])]
                proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
                if proc.returncode:
                    sys.exit(f"{side} failed:\n{proc.stderr[-4000:]}")
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                print(json.dumps(result), flush=True)
                runs.setdefault(side, []).append(result)
    _table(runs, real)


def _table(runs: dict[str, list[dict]], real: bool) -> None:
    keys = ("tokens_per_s", "tokens_per_cpu_s", "examples_per_s", "step_s", "wall_s", "peak_rss_mb")
    median = {side: {k: statistics.median(r[k] for r in rs) for k in keys} for side, rs in runs.items()}
    base = median.get("trl")

    def ratio(m: dict, key: str) -> str:
        return f"{m[key] / base[key]:.2f}x" if base else "-"

    print(f"\n{'side':16} {'prec':>4} {'tokens/s':>9} {'tok/cpu-s':>9} {'examples/s':>10} {'s/step':>7} {'wall s':>7} "
          f"{'peak RSS MB':>11} {'tok/s vs trl':>12} {'ex/s vs trl':>11} {'RSS vs trl':>10}")
    for side, m in median.items():
        print(f"{side:16} {runs[side][-1]['precision']:>4} {m['tokens_per_s']:>9.0f} {m['tokens_per_cpu_s']:>9.0f} {m['examples_per_s']:>10.3f} "
              f"{m['step_s']:>7.2f} {m['wall_s']:>7.1f} {m['peak_rss_mb']:>11.0f} {ratio(m, 'tokens_per_s'):>12} "
              f"{ratio(m, 'examples_per_s'):>11} {ratio(m, 'peak_rss_mb'):>10}")
    if real:
        print()
        for side, rs in runs.items():
            r = rs[-1]
            print(f"{side:16} {LEVERS.get(side, '')}; {r['conversations']} conversations, mean {r['mean_tokens']} "
                  f"tokens, {r['cut']} {'cut at max_length' if side.startswith('trl') else 'skipped (too long)'}")


if __name__ == "__main__":
    main()
