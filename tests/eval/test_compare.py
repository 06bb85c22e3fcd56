"""Comparing two eval outputs: paired counts, McNemar, bootstrap, latency, and the report files."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from rich.console import Console

from tooltune.errors import DataError
from tooltune.eval.compare import bootstrap_ci, compare, mcnemar_exact
from tooltune.eval.report import comparison_table, write_report


def write_eval(directory, outcomes: dict[str, tuple[bool, str]], **metrics):
    """outcomes: id -> (correct, category)."""
    directory.mkdir(parents=True)
    lines = [{"id": i, "correct": ok, "reason": None if ok else "value_mismatch", "category": cat, "split": "test"}
             for i, (ok, cat) in outcomes.items()]
    (directory / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    correct = sum(ok for ok, _ in outcomes.values())
    (directory / "metrics.json").write_text(json.dumps({"exact_match": {"correct": correct, "total": len(outcomes),
                                                                        "accuracy": correct / len(outcomes)}, **metrics}))
    return directory


@pytest.fixture
def two_evals(tmp_path):
    # simple: A right on 0-9, B right on 0-17 (8 wins, 0 losses); irrelevance: 3 losses for B.
    a = {f"s{i}": (i < 10, "simple") for i in range(20)} | {f"r{i}": (True, "irrelevance") for i in range(5)}
    b = {f"s{i}": (i < 18, "simple") for i in range(20)} | {f"r{i}": (i >= 3, "irrelevance") for i in range(5)}
    a["only_a"] = (True, "simple")
    a_dir = write_eval(tmp_path / "base", a, latency_ms_p50=400.0, latency_ms_p95=900.0, tokens_per_s=50.0)
    b_dir = write_eval(tmp_path / "tuned", b)
    return a_dir, b_dir


def test_mcnemar_exact_matches_the_binomial_test():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(8, 0) == pytest.approx(2 / 2**8)
    assert mcnemar_exact(3, 3) == 1.0
    # two-sided binomial(n=10, p=.5), k<=2: 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact(2, 8) == pytest.approx(2 * 56 / 1024)
    assert mcnemar_exact(8, 2) == mcnemar_exact(2, 8)


def test_bootstrap_interval_contains_the_delta_and_is_degenerate_without_variance():
    rng = np.random.default_rng(0)
    a = np.array([True] * 50 + [False] * 50)
    b = np.array([True] * 80 + [False] * 20)
    low, high = bootstrap_ci(a, b, 2000, rng)
    assert low < 0.3 < high and low > 0.1
    assert bootstrap_ci(a, a, 100, rng) == (0.0, 0.0)


def test_compare_pairs_examples_and_counts_per_category(two_evals):
    c = compare(*two_evals)
    assert (c.label_a, c.label_b, c.only_a, c.only_b) == ("base", "tuned", 1, 0)
    overall = c.row("overall")
    assert (overall.n, overall.wins, overall.losses, overall.ties) == (25, 8, 3, 14)
    simple = c.row("simple", "category")
    assert (simple.accuracy_a, simple.accuracy_b, simple.wins, simple.losses) == (0.5, 0.9, 8, 0)
    assert simple.delta == pytest.approx(0.4)
    assert simple.p_value == pytest.approx(2 / 2**8) and simple.significant
    assert simple.ci_low <= 0.4 <= simple.ci_high
    irrelevance = c.row("irrelevance", "category")
    assert (irrelevance.losses, irrelevance.significant) == (3, False)
    assert [r.group for r in c.rows] == ["overall", "simple", "irrelevance", "test"]
    assert c.latency["latency_ms_p50"].a == 400.0 and c.latency["latency_ms_p50"].b is None
    assert c.latency["latency_ms_p50"].delta is None
    assert c.headline["exact_match"].b == pytest.approx(20 / 25)
    assert c.reasons["value_mismatch"].model_dump() == {"a": 10.0, "b": 5.0}


def test_compare_is_reproducible(two_evals):
    assert compare(*two_evals).model_dump() == compare(*two_evals).model_dump()


def test_compare_needs_results_and_shared_ids(tmp_path, two_evals):
    with pytest.raises(DataError, match="results.jsonl: not found"):
        compare(tmp_path / "nowhere", two_evals[1])
    other = write_eval(tmp_path / "other", {"x": (True, "simple")})
    with pytest.raises(DataError, match="share no example ids"):
        compare(two_evals[0], other)


def test_report_files_are_self_contained(tmp_path, two_evals):
    c = compare(*two_evals, labels=("base", "tuned <v2>"))
    path = write_report(c, tmp_path / "report")
    page = path.read_text()
    assert "tuned &lt;v2&gt;" in page and "<v2>" not in page
    assert "http://" not in page and "https://" not in page  # nothing fetched when opened
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 3
    assert all(base64.b64decode(img).startswith(b"\x89PNG") for img in images)
    assert "latency_ms_p95" in page
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["rows"][0]["group"] == "overall" and saved["only_a"] == 1


def test_comparison_table_lists_every_row(two_evals):
    console = Console(width=160, record=True)
    console.print(comparison_table(compare(*two_evals)))
    text = console.export_text()
    assert "simple" in text and "irrelevance" in text and "split: test" in text
    assert "+40.0" in text
