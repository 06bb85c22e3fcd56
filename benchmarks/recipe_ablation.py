"""The recipe ablation: each lever trained and evaluated the same way, one table.

    .venv/bin/python benchmarks/recipe_ablation.py --levers benchmarks/recipe_levers.yaml \
        [--only NAME [--only NAME ...]] [--workdir .tooltune/ablation] [--table docs-table.md]

What is fixed for every lever (so that rows compare):

- **The reference recipe.** The levers file's ``recipe`` (``data`` and ``train`` overrides of
  ``configs/demo-pipeline.yaml``) pins the recipe its rows were measured against, so the rows stay
  reproducible when the demo adopts a lever; every lever and the evaluation build start from it.
- **The evaluation.** One data build made from the reference recipe's ``data`` section
  (its ``eval_data`` overrides, if any) is the evaluation set of every lever: its
  ``test_phrasing`` split (new phrasings of tools seen in training: calls, irrelevance, clarify)
  and its ``test_multistep`` split through the agent loop on the live demo server
  (``split_limits``), scored with the demo's ``eval`` settings. The base model is evaluated once.
- **What a lever may change:** the training data (``data`` overrides: the synthetic mix, the
  listing variants, the curated files, the number of examples, the seed) and the training
  settings (``train`` overrides) and the evaluation's decoding (``eval`` overrides, e.g.
  ``constrained``). A lever's training data is built on its own, then every train or val example
  whose request or phrasing template is in the fixed evaluation splits is removed (and counted),
  so no lever trains on what it is scored on.
- **The budget** is the lever's ``train.max_steps``; each row reports the training minutes it
  took, so levers that make a step cheaper (``lora.top_layers``) are compared at equal minutes by
  giving them more steps. Time only means something on a quiet machine: the first line names it.

Writes ``WORKDIR/<lever>/{data,train,eval}`` (each step skipped when already complete) and
prints one row per lever: minutes, overall exact on the evaluation, every category, the four
levels and the agent-loop chains.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

from tooltune.runtime.machine import machine_line
from tooltune.safeload import read_yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo-pipeline.yaml"
CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance", "clarify", "multi_step")
LEVELS = ("detection", "parsing", "tool", "parameters")


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build_data(data: dict[str, Any], catalog: Path, out: Path) -> Path:
    from tooltune.data.build import build_dataset
    from tooltune.data.config import build_config
    from tooltune.demo import build_server
    from tooltune.demo.chains import CHAINS

    if not (out / "report.json").is_file():
        files = {k: [str((DEMO.parent / p).resolve()) for p in data.get(k, [])]
                 for k in ("curated", "other_domain_tools", "logs", "corrections")}
        build_dataset(build_config({**data, **{k: v for k, v in files.items() if v}, "catalog": catalog, "output_dir": out}),
                      chains=CHAINS, server_factory=build_server)
    return out


def discover(workdir: Path, demo: dict[str, Any]) -> Path:
    from tooltune.tools.catalog import ToolCatalog
    from tooltune.tools.discover import discover as discover_source

    path = workdir / "catalog.json"
    if not path.is_file():
        catalog = ToolCatalog()
        for source in demo["services"]:
            source = {k: v.replace(".tooltune/demo-run", str(workdir / "demo-state")) if isinstance(v, str) else v
                      for k, v in source.items()}
            catalog = catalog.merge(discover_source(**source))
        catalog.save(path)
    return path


def drop_overlap(train_dir: Path, eval_dir: Path) -> int:
    """Remove from ``train_dir``'s train and val splits every example whose request, or whose
    phrasing template, is in the evaluation's ``test_phrasing`` / ``test_multistep`` splits; the
    number removed. Each build holds its own test phrasings out, but two builds of different sizes
    can disagree on a few (a parallel request the other build put in its test split)."""
    from tooltune.data.examples import read_jsonl, write_jsonl
    from tooltune.data.quality import normalize_text

    held = [e for s in ("test_phrasing", "test_multistep") for e in read_jsonl(eval_dir / f"{s}.jsonl")]
    templates = {e.meta["template_id"] for e in held if e.meta.get("template_id")
                 and not str(e.meta["template_id"]).startswith(("chitchat/", "unsupported/"))}
    texts = {normalize_text(e.user_text) for e in held}
    removed = 0
    for split in ("train", "val"):
        path = train_dir / f"{split}.jsonl"
        examples = list(read_jsonl(path))
        kept = [e for e in examples if normalize_text(e.user_text) not in texts and e.meta.get("template_id") not in templates]
        if len(kept) < len(examples):
            write_jsonl(kept, path)
            removed += len(examples) - len(kept)
    return removed


def train(lever_dir: Path, data_dir: Path, settings: dict[str, Any]) -> tuple[Path, float]:
    from tooltune.train import load_train_config, run_training

    out = lever_dir / "train"
    if not (out / "manifest.json").is_file():
        fields = {**settings, "data_dir": str(data_dir), "output_dir": str(out), "resume": out.exists()}
        run_training(load_train_config(None, [f"{k}={json.dumps(v)}" for k, v in fields.items()]))
    manifest = json.loads((out / "manifest.json").read_text())
    return out, manifest["wall_time_s"]


def evaluate(out: Path, model: str, adapter: Path | None, eval_dir: Path, settings: dict[str, Any]) -> dict[str, Any]:
    from tooltune.eval.runner import EvalConfig, run_eval

    if not (out / "metrics.json").is_file():
        run_eval(EvalConfig(model=model, adapter=adapter, data_dir=eval_dir, output_dir=out, **settings))
    return json.loads((out / "metrics.json").read_text())


def row(name: str, minutes: float | None, metrics: dict[str, Any], agent: dict[str, Any] | None) -> dict[str, Any]:
    def pct(rate: dict[str, Any] | None) -> str:
        return "-" if not rate or not rate.get("total") else f"{100 * rate['accuracy']:.1f} ({rate['total']})"

    out = {"lever": name, "minutes": "-" if minutes is None else f"{minutes:.1f}", "overall": pct(metrics["exact_match"])}
    out.update({c: pct(metrics["per_category"].get(c)) for c in CATEGORIES})
    out.update({lvl: pct(metrics["levels"].get(lvl)) for lvl in LEVELS})
    out["chains (agent)"] = pct(agent.get("sequence_exact")) if agent else "-"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levers", type=Path, default=ROOT / "benchmarks" / "recipe_levers.yaml")
    parser.add_argument("--only", action="append",
                        help="a lever's name as in the levers file (names hold commas); repeatable (default: all)")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".tooltune" / "ablation")
    parser.add_argument("--table", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args()
    print(machine_line(), flush=True)

    spec = read_yaml(args.levers)
    wanted = set(args.only) if args.only else None
    if wanted and wanted - set(spec["levers"]):
        parser.error(f"--only: no lever named {sorted(wanted - set(spec['levers']))}; the levers: {list(spec['levers'])}")
    demo = read_yaml(DEMO)  # raw: each lever's data overrides are resolved against it in build_data
    recipe = spec.get("recipe", {})
    demo = {**demo, "data": merged(demo["data"], recipe.get("data", {})), "train": merged(demo["train"], recipe.get("train", {}))}
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    catalog = discover(workdir, demo)
    eval_dir = build_data(merged(demo["data"], spec.get("eval_data", {})), catalog, workdir / "eval-data")
    eval_settings = merged({**demo["eval"], "limit": None}, spec.get("eval", {}))
    base = evaluate(workdir / "eval-base", demo["train"]["base_model"], None, eval_dir, eval_settings)
    rows = [row("base (no tuning)", None, base, _agent(workdir / "eval-base"))]

    for name, lever in spec["levers"].items():
        if wanted and name not in wanted:
            continue
        lever_dir = workdir / name
        data_dir = build_data(merged(demo["data"], lever.get("data", {})), catalog, lever_dir / "data")
        removed = drop_overlap(data_dir, eval_dir)
        if removed:
            print(f"{name}: removed {removed} training examples that share a request or template with the evaluation",
                  flush=True)
        started = time.perf_counter()
        # The budget of a lever is its step count: the demo's max_minutes would cut long levers
        # (2 epochs) to the demo's minutes on this machine, so it is lifted unless a lever sets it.
        run_dir, seconds = train(lever_dir, data_dir, merged({**demo["train"], "max_minutes": None}, lever.get("train", {})))
        metrics = evaluate(lever_dir / "eval", demo["train"]["base_model"], run_dir, eval_dir,
                           merged(eval_settings, lever.get("eval", {})))
        rows.append(row(name, seconds / 60, metrics, _agent(lever_dir / "eval")))
        print(json.dumps(rows[-1]), f"({time.perf_counter() - started:.0f} s)", flush=True)
    table = _markdown(rows)
    print("\n" + table)
    if args.table:
        args.table.write_text(table + "\n")


def _agent(eval_out: Path) -> dict[str, Any] | None:
    path = eval_out / "test_multistep" / "agent_metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _markdown(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
