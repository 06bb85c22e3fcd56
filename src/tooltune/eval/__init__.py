"""Evaluation: BFCL-style matching, metrics, offline scoring, and comparison reports.

- :mod:`~tooltune.eval.match`: one output against one example → ``MatchResult`` with a ``Reason``.
- :mod:`~tooltune.eval.metrics`: per-example results → ``Metrics``.
- :mod:`~tooltune.eval.score`: predictions made elsewhere → ``results.jsonl`` + ``metrics.json``.
- :mod:`~tooltune.eval.compare` / :mod:`~tooltune.eval.report`: two eval outputs → table,
  ``report.json``, ``report.html``.

The report module (matplotlib) is not imported here; import it where a report is written.
"""

from tooltune.eval.compare import Comparison, compare
from tooltune.eval.match import MatchResult, Reason, match
from tooltune.eval.metrics import ExampleResult, Failure, Metrics, compute_metrics
from tooltune.eval.score import ScoreResult, run_score, score_predictions

__all__ = [
    "Comparison", "ExampleResult", "Failure", "MatchResult", "Metrics", "Reason", "ScoreResult",
    "compare", "compute_metrics", "match", "run_score", "score_predictions",
]
