"""Fine-tune the tests' tiny base model on the shop demo and measure what it learns and forgets.

    .venv/bin/python benchmarks/base_finetune.py [--base DIR] [--minutes 2.5] [--examples 3000] [--threads 2]

1. **Data**: ``tooltune.data.build.build_dataset`` on the shop catalog
   (``tests/fixtures/catalogs/shop.json``) with the curated shop examples and ``--examples``
   synthetic ones; no tool is held out (the domain is what is new), held-out phrasings go to
   ``test_phrasing``.
2. **Fine-tune**: ``tooltune.train.train`` with ``method: full`` from ``--base`` (default: the
   tiny base committed in ``tests/fixtures/tiny_base/model``) for ``--minutes`` of training (a
   step count from timing a few steps, as its recipe does), packing, learning rate ``--lr``.
3. **Measure** greedy exact match (the recipe's ``score_splits``: tooltune's generation loop and
   scorer), before and after tuning:
   shop calls in *trained phrasings* (holdout: trained templates, new values), in *held-out
   phrasings* (test_phrasing), shop *irrelevance* (no_call turns of both), and *forgetting*:
   the base's own held-out phrasings, unseen tools and irrelevance, regenerated from the
   seed recorded in the base's ``build.json``.

Targets after tuning: >= 90% trained phrasings, >= 50% held-out phrasings, >= 80% irrelevance.
Results go to stdout as a table and, with ``--json PATH``, as JSON. The tiny base and its recipe
are test fixtures (tests/fixtures/tiny_base/README.md, where this benchmark's figures are), not
part of the package: the repository root goes on ``sys.path`` to import them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fixtures.tiny_base
CATALOG = ROOT / "tests" / "fixtures" / "catalogs" / "shop.json"
CURATED = ROOT / "src" / "tooltune" / "demo" / "curated" / "shop.yaml"
TARGETS = {"shop_trained_phrasings": 0.90, "shop_heldout_phrasings": 0.50, "shop_irrelevance": 0.80}


def shop_splits(out: Path, n: int, seed: int, per_split: int):
    """Build the shop dataset into ``out``; the eval sets by name."""
    from tooltune.data.build import build_dataset
    from tooltune.data.config import DataConfig
    from tooltune.data.examples import Behavior, read_jsonl
    from tooltune.demo import build_server
    from tooltune.demo.chains import CHAINS

    config = DataConfig(catalog=CATALOG, curated=[CURATED], synthetic=n, seed=seed, output_dir=out, zero_shot_fraction=0.0,
                        semantic_dedup=False, max_near_dup_contamination=None)
    report = build_dataset(config, chains=CHAINS, server_factory=build_server)
    split = {name: list(read_jsonl(out / f"{name}.jsonl")) for name in ("train", "holdout", "test_phrasing")}

    def first(examples, behavior):
        return sorted((e for e in examples if e.behavior is behavior), key=lambda e: e.id)[:per_split]

    sets = {
        "shop_trained_phrasings": first(split["holdout"], Behavior.CALLS),
        "shop_heldout_phrasings": first(split["test_phrasing"], Behavior.CALLS),
        "shop_irrelevance": first(split["holdout"] + split["test_phrasing"], Behavior.NO_CALL),
    }
    return sets, report


def base_splits(base_dir: Path, per_split: int):
    """The base's own eval sets, regenerated from its build.json (seed and corpus size)."""
    from tests.fixtures.tiny_base.recipe import BUILD_INFO, base_corpus

    info = json.loads((base_dir / BUILD_INFO).read_text())["config"]
    corpus = base_corpus(info["seed"], info["n_examples"], per_split)
    sets = {f"base_{name}": corpus.splits[name] for name in ("new_phrasing", "unseen_tools", "irrelevance")}
    return sets, corpus.catalog


def evaluate(model, tokenizer, sets, catalogs):
    from tests.fixtures.tiny_base.recipe import score_splits

    scores = {}
    for name, examples in sets.items():
        scores.update(score_splits(model, tokenizer, {name: examples}, catalogs[name]))
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=None, help="Base model dir (default: the tests' tiny base).")
    parser.add_argument("--minutes", type=float, default=2.5, help="Training-time budget.")
    parser.add_argument("--max-steps", type=int, default=None, help="Train this many steps instead of --minutes.")
    parser.add_argument("--examples", type=int, default=3000, help="Synthetic shop examples.")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rows", type=int, default=8, help="Packed rows per optimizer step.")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--per-split", type=int, default=200, help="Examples per evaluation set.")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.fixtures.tiny_base.recipe import TINY_BASE_DIR, steps_for_minutes
    from tooltune.tools.catalog import ToolCatalog
    from tooltune.train import TrainConfig, train
    from tooltune.runtime.machine import describe_machine, machine_line
    from tooltune.runtime.precision import precision_for

    if args.threads:
        torch.set_num_threads(args.threads)
    base_dir = args.base or TINY_BASE_DIR
    precision = precision_for("auto", base_dir)  # what training below resolves precision: auto to
    print(machine_line(precision), flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tooltune-base-ft-") as tmp:
        work = Path(tmp)
        shop_sets, report = shop_splits(work / "data", args.examples, args.seed, args.per_split)
        base_sets, base_catalog = base_splits(base_dir, args.per_split)
        shop_catalog = ToolCatalog.load(CATALOG)
        catalogs = {**{k: shop_catalog for k in shop_sets}, **{k: base_catalog for k in base_sets}}
        sets = {**shop_sets, **base_sets}
        print(f"shop data: {report.split_sizes} in {report.seconds:.1f} s; eval sets "
              f"{ {k: len(v) for k, v in sets.items()} }", flush=True)

        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        base_model = AutoModelForCausalLM.from_pretrained(base_dir)
        before = evaluate(base_model, tokenizer, sets, catalogs)
        steps = args.max_steps or steps_for_minutes(base_model, args.minutes, rows=args.rows, length=args.max_length)
        del base_model

        config = TrainConfig(
            base_model=str(base_dir), method="full", data_dir=work / "data", output_dir=work / "run", packing=True,
            max_length=args.max_length, learning_rate=args.lr, max_steps=steps, batch_size=1, grad_accum=args.rows,
            warmup_ratio=0.05, gradient_checkpointing=False, seed=args.seed, eval_steps=max(1, steps // 5),
            early_stopping_patience=None, save_steps=steps, save_total_limit=1, logging_steps=max(1, steps // 20),
        )
        run = train(config, progress=True)
        after = evaluate(run.trained_model, tokenizer, sets, catalogs)
        manifest = json.loads(run.manifest_path.read_text())
        metrics = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]

    rates = [m["tokens_per_s"] for m in metrics if m.get("tokens_per_s")]
    result = {
        "machine": describe_machine().model_dump(), "precision": precision,
        "base": str(base_dir), "steps": run.global_step, "train_seconds": run.metrics.get("train_runtime"),
        "tokens_per_s": sum(rates) / len(rates) if rates else None, "train_loss": run.metrics.get("train_loss"),
        "eval_loss": run.metrics.get("eval_loss"), "train_examples": manifest["data"]["train"]["trained_examples"],
        "skipped_too_long": manifest["data"]["train"]["skipped_too_long"],
        "before": {k: v.accuracy for k, v in before.items()}, "after": {k: v.accuracy for k, v in after.items()},
        "failures_after": {k: v.reasons for k, v in after.items()}, "wall_s": time.perf_counter() - started,
    }
    print(f"\nfine-tuned {result['steps']} steps in {result['train_seconds']:.0f} s "
          f"({result['tokens_per_s'] or 0:,.0f} tokens/s), {result['train_examples']} examples "
          f"({result['skipped_too_long']} too long); train loss {result['train_loss']:.3f}, val loss {result['eval_loss']:.3f}")
    print(f"{'set':<26} {'before':>7} {'after':>7}  target")
    for name in sets:
        target = TARGETS.get(name)
        verdict = "" if target is None else f">= {target:.0%} {'met' if after[name].accuracy >= target else 'MISSED'}"
        print(f"{name:<26} {before[name].accuracy:7.1%} {after[name].accuracy:7.1%}  {verdict}")
    for name in sets:
        if after[name].samples:
            print(f"  {name} failures {after[name].reasons}; e.g. {json.dumps(after[name].samples[0], ensure_ascii=False)[:300]}")
    print(f"wall {result['wall_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
