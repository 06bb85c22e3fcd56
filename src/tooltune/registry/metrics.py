"""What the registry accepts from evaluation: the shape of ``metrics.json`` and of a comparison.

The registry does not import ``tooltune.eval``; it validates plain data shaped like this::

    {
      "suite_version": "bfcl-shop-3",          # identifies the test cases; gates compare like with like
      "split": "all",                           # which split(s) ``overall`` is measured on
      "overall": 0.912,                         # accuracy as a fraction in [0, 1]
      "examples": 500,
      "per_category": {"simple": 0.95, "parallel": 0.88, "irrelevance": 0.93, ...},
      "per_tool": {"create_payment": 0.99, ...},
      "per_split": {"test_phrasing": 0.93, "test_zero_shot": 0.71},
      "per_service": {"shop": {"overall": 0.93, "per_category": {...}, "per_tool": {...}}, ...}
    }

It also reads ``tooltune eval``'s own ``metrics.json`` as written: every accuracy may be a rate
object ``{"correct": 45, "total": 50, "accuracy": 0.9}`` (one with ``total`` 0 counts as not
measured and is left out); ``overall`` defaults to ``exact_match``; a ``per_tool`` entry
``{"calls": rate, "parameters": rate}`` counts its ``calls`` rate; ``n`` is the example count.
That file has no ``suite_version``: pass it (``EvalMetrics.load(dir, suite_version=...)``).
``split`` defaults to the only key of ``per_split``, else ``"all"``. Categories are the
BFCL-style names (simple, multiple, parallel, parallel_multiple, irrelevance, multi_step, clarify).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tooltune.errors import ConfigError

METRICS_FILE = "metrics.json"


def _accuracy(value: Any, where: str) -> float | None:
    """A fraction from a number or a rate object; None for a rate with nothing counted."""
    if isinstance(value, Mapping):
        if "calls" in value and isinstance(value["calls"], Mapping):  # tooltune eval's per_tool entry
            value = value["calls"]
        if "total" in value and value["total"] == 0:
            return None
        if value.get("accuracy") is not None:
            value = value["accuracy"]
        elif "correct" in value and "total" in value:
            value = value["correct"] / value["total"]
        else:
            raise ValueError(f"{where}: expected a number or an object with 'accuracy' (or 'correct' and 'total')")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected an accuracy number, got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: accuracy {value} is outside [0, 1]; give fractions (0.93), not percentages (93)")
    return float(value)


class Breakdown(BaseModel):
    """Accuracy overall, per category and per tool (for the whole suite or for one service)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    overall: float = Field(description="Accuracy over every example, as a fraction in [0, 1].")
    per_category: dict[str, float] = Field(default_factory=dict, description="Accuracy per BFCL-style category.")
    per_tool: dict[str, float] = Field(default_factory=dict, description="Accuracy of examples that call each tool.")

    @field_validator("overall", mode="before")
    @classmethod
    def _overall(cls, value: Any) -> float:
        accuracy = _accuracy(value, "overall")
        if accuracy is None:
            raise ValueError("overall: nothing was counted (total 0); evaluate at least one example")
        return accuracy

    @field_validator("per_category", "per_tool", mode="before")
    @classmethod
    def _breakdown(cls, value: Any, info: Any) -> dict[str, float]:
        return _rates(value, info.field_name)


class EvalMetrics(Breakdown):
    """One evaluation of one model on one suite: what ``record_evaluation`` and the gates take."""

    suite_version: str = Field("unversioned", min_length=1, description="Version of the eval suite (test cases).")
    split: str = Field("all", min_length=1, description="Split(s) ``overall`` is measured on ('all': every evaluated split).")
    examples: int | None = Field(None, ge=0, description="Number of examples evaluated.")
    per_split: dict[str, float] = Field(default_factory=dict, description="Accuracy per split, e.g. test_zero_shot.")
    per_service: dict[str, Breakdown] = Field(default_factory=dict, description="The same breakdown per service.")

    @field_validator("per_split", mode="before")
    @classmethod
    def _splits(cls, value: Any) -> dict[str, float]:
        return _rates(value, "per_split")

    @model_validator(mode="before")
    @classmethod
    def _eval_report_shape(cls, data: Any) -> Any:
        # Fill the fields tooltune eval's metrics.json names differently (see the module docstring).
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "overall" not in data and "exact_match" in data:
            data["overall"] = data["exact_match"]
        if "examples" not in data and isinstance(data.get("n"), int):
            data["examples"] = data["n"]
        if "split" not in data:
            splits = data.get("per_split")
            data["split"] = next(iter(splits)) if isinstance(splits, Mapping) and len(splits) == 1 else "all"
        return data

    @classmethod
    def coerce(cls, value: EvalMetrics | Mapping[str, Any], *, where: str = "metrics") -> EvalMetrics:
        """Validate a dict (or pass an ``EvalMetrics`` through); errors name every bad field."""
        if isinstance(value, EvalMetrics):
            return value
        try:
            return cls.model_validate(value)
        except ValidationError as e:
            raise ConfigError(f"{where}: invalid evaluation metrics: {_problems(e)}") from e

    @classmethod
    def load(cls, path: str | Path, **fields: Any) -> EvalMetrics:
        """Read an eval output directory's ``metrics.json`` (or that file itself); ``fields``
        (e.g. ``suite_version=``, ``split=``) fill or override what the file says."""
        path = Path(path)
        if path.is_dir():
            path = path / METRICS_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"{path}: not found; point at an eval output directory that has {METRICS_FILE}.") from e
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object of metrics, got {type(data).__name__}.")
        return cls.coerce({**data, **fields}, where=str(path))


class ComparisonResult(BaseModel):
    """Base vs candidate on the same suite: per-example wins/losses/ties and metric deltas.

    Also reads ``tooltune eval``'s comparison (``rows`` of kind overall/category/split): the
    overall row gives wins/losses/ties, every other row a ``kind:group`` delta."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    suite_version: str = Field("unversioned", min_length=1, description="Version of the eval suite both ran.")
    wins: int = Field(ge=0, description="Examples the candidate got right and the base got wrong.")
    losses: int = Field(ge=0, description="Examples the base got right and the candidate got wrong.")
    ties: int = Field(ge=0, description="Examples both got right or both got wrong.")
    deltas: dict[str, Any] = Field(default_factory=dict, description="Candidate minus base, per metric (free-form).")

    @model_validator(mode="before")
    @classmethod
    def _eval_compare_shape(cls, data: Any) -> Any:
        # tooltune eval's comparison keeps wins/losses/ties per row; the "overall" row is the total.
        if not isinstance(data, Mapping) or "wins" in data or not isinstance(data.get("rows"), list):
            return data
        rows = [r for r in data["rows"] if isinstance(r, Mapping)]
        overall = next((r for r in rows if r.get("kind") == "overall"), None)
        if overall is None:
            return data
        deltas = {f"{r.get('kind')}:{r.get('group')}": r.get("delta") for r in rows if r.get("kind") != "overall"}
        deltas["overall"] = overall.get("delta")
        return {**data, "wins": overall.get("wins"), "losses": overall.get("losses"), "ties": overall.get("ties"),
                "deltas": {**deltas, **dict(data.get("deltas") or {})}}

    @classmethod
    def coerce(cls, value: ComparisonResult | Mapping[str, Any], *, where: str = "comparison") -> ComparisonResult:
        if isinstance(value, ComparisonResult):
            return value
        try:
            return cls.model_validate(value)
        except ValidationError as e:
            raise ConfigError(f"{where}: invalid comparison: {_problems(e)}") from e


def _rates(value: Any, field: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{field}: expected an object of name → accuracy")
    rates = {str(k): _accuracy(v, f"{field}.{k}") for k, v in value.items()}
    return {k: v for k, v in rates.items() if v is not None}


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in item['loc']) or '(root)'}: {item['msg'].removeprefix('Value error, ')}"
        for item in error.errors()
    )
