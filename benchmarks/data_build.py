"""Time ``build_dataset`` on 100k synthetic examples: generate, check, score, exact-dedup, split,
contamination (exact), write. Prints examples/s per step and overall, and peak RSS.

    .venv/bin/python benchmarks/data_build.py [--n 100000] [--semantic-sample 2000] [--backend auto]

Near-duplicate work is **off** in the full run (MiniLM embeds about 50-150 texts/s on two CPU
cores, so 100k would take 10-30 min) and measured separately on the first ``--semantic-sample``
examples with ``--backend`` (auto: MiniLM when ``tooltune[embed]`` is installed, else the
lexical fallback). ``--semantic-sample 0`` skips it. Target: the full run under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from tooltune.data.build import build_dataset
from tooltune.data.config import DataConfig
from tooltune.data.examples import read_jsonl
from tooltune.data.quality import load_embedder, quality_score, semantic_dedup
from tooltune.demo import build_server
from tooltune.demo.chains import CHAINS
from tooltune.tools.catalog import ToolCatalog
from tooltune.runtime.machine import machine_line

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "tests" / "fixtures" / "catalogs" / "shop.json"
CURATED = ROOT / "src" / "tooltune" / "demo" / "curated" / "shop.yaml"


class StepTimer:
    """A ``progress`` callback that records when each build step starts, in wall and CPU time
    (CPU time is the steadier figure on a machine shared with other jobs)."""

    def __init__(self) -> None:
        self.starts: dict[str, tuple[float, float]] = {}

    def __call__(self, step: str, done: int, total: int | None) -> None:
        self.starts.setdefault(step, (time.perf_counter(), time.process_time()))

    def durations(self, end: tuple[float, float]) -> dict[str, tuple[float, float]]:
        steps = list(self.starts.items())
        out = {}
        for i, (name, (wall, cpu)) in enumerate(steps):
            next_wall, next_cpu = steps[i + 1][1] if i + 1 < len(steps) else end
            out[name] = (next_wall - wall, next_cpu - cpu)
        return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--semantic-sample", type=int, default=2000)
    parser.add_argument("--backend", default="auto", choices=["auto", "minilm", "lexical"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(machine_line(), flush=True)  # no model runs in the full build; MiniLM (if used) runs in fp32

    with tempfile.TemporaryDirectory() as out:
        config = DataConfig(catalog=CATALOG, curated=[CURATED], synthetic=args.n, seed=args.seed, output_dir=Path(out),
                            semantic_dedup=False, max_near_dup_contamination=None)
        timer = StepTimer()
        started, cpu_started = time.perf_counter(), time.process_time()
        report = build_dataset(config, progress=timer, chains=CHAINS, server_factory=build_server)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        total = report.records
        print(f"full build: {total} records in {seconds:.1f} s wall ({cpu:.1f} s CPU) = {total / seconds:,.0f} examples/s "
              f"({total / cpu:,.0f} per CPU-second); peak RSS {peak_rss_mb():,.0f} MB")
        print(f"  {'step':<16} {'wall s':>7} {'CPU s':>7}")
        for step, (wall, step_cpu) in timer.durations((started + seconds, cpu_started + cpu)).items():
            print(f"  {step:<16} {wall:7.2f} {step_cpu:7.2f}")
        print(f"  splits {report.split_sizes}")
        print(f"  dropped {report.dropped}; quarantine {report.quarantine}")
        sample = list(read_jsonl(Path(out) / "train.jsonl"))[: args.semantic_sample]

    if sample:
        catalog = ToolCatalog.load(CATALOG)
        t0 = time.perf_counter()
        embedder = load_embedder(args.backend)
        t1, c1 = time.perf_counter(), time.process_time()
        scores = {e.id: quality_score(e, catalog, problems=[]) for e in sample}
        kept, dropped = semantic_dedup(sample, scores, embedder)
        t2, c2 = time.perf_counter(), time.process_time()
        print(f"semantic dedup ({embedder.backend}) on {len(sample)} train examples: load {t1 - t0:.1f} s, "
              f"dedup {t2 - t1:.1f} s wall ({c2 - c1:.1f} s CPU) = {len(sample) / (t2 - t1):,.0f} examples/s; "
              f"{len(dropped)} near-duplicates; peak RSS {peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
