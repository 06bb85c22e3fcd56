"""100,000 random strings through every raw parser (benchmarks/parse_fuzz.py); none may raise."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "parse_fuzz.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("parse_fuzz", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_100k_random_strings_never_raise():
    fuzz = load_benchmark()
    results = fuzz.run(n=100_000, seed=0)
    raised = {name: stats.examples for name, stats in results.items() if stats.exceptions}
    assert not raised, fuzz.report(results, 100_000)
    for stats in results.values():
        assert sum(stats.kinds.values()) == 100_000
