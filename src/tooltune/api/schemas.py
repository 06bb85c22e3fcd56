"""Request and response bodies of the job API that are not registry records or stage configs.

Training jobs take :class:`~tooltune.train.config.TrainConfig` as is and data builds
:class:`~tooltune.data.config.DataConfig`: the same models the CLI and config files fill.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from tooltune.data.config import DataConfig
from tooltune.data.io import EXPORT_FORMATS, FORMATS
from tooltune.data.split import EVAL_SPLITS, SPLITS
from tooltune.registry import (
    ComparisonRecord,
    DatasetRecord,
    EvaluationRecord,
    GateConfig,
    GateDecision,
    JobRecord,
    ModelRecord,
)
from tooltune.runtime.settings import BatchSize, MaxNewTokens

ImportFormat = Literal[tuple(FORMATS)]  # type: ignore[valid-type]
ExportFormat = Literal[tuple(EXPORT_FORMATS)]  # type: ignore[valid-type]
Split = Literal[tuple(SPLITS)]  # type: ignore[valid-type]
EvalSplit = Literal[tuple(EVAL_SPLITS)]  # type: ignore[valid-type]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00]*$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the bad field or parameter, e.g. max_steps or lora.r.")
    message: str


class ErrorBody(BaseModel):
    """Every 4xx answer: what is wrong, and for validation errors each field named."""

    detail: str
    errors: list[FieldProblem] = Field(default_factory=list)
    decision: GateDecision | None = Field(None, description="A refused deploy: the gate decision with every check.")


class JobView(JobRecord):
    eta_s: float | None = Field(None, description="Seconds left at the pace so far (running jobs with a known total).")
    log: str | None = Field(None, description="The worker's log file.")


class BuildRequest(_Body):
    action: Literal["build"]
    config: DataConfig = Field(description="The DataConfig of `tooltune data build`; output_dir defaults to one under the API's work_dir.")
    version: Name | None = Field(None, description="Version name to register (default: the content hash).")


class ImportRequest(_Body):
    action: Literal["import"]
    format: ImportFormat = Field(description="Format of the source file.")
    source: str = Field(min_length=1, max_length=4096, description="File on the server to import (bfcl: a category name).")
    catalog: Path | None = Field(None, description="Catalog the examples name tools from (its hash is recorded).")
    quality: Literal["high", "medium", "low"] = "medium"
    version: Name | None = Field(None, description="Version name to register (default: the content hash).")


class ExportRequest(_Body):
    action: Literal["export"]
    dataset: Name = Field(description="Version of a registered dataset.")
    split: Split = "train"
    format: ExportFormat


DatasetRequest = Annotated[Union[BuildRequest, ImportRequest, ExportRequest], Field(discriminator="action")]


class ExportInfo(BaseModel):
    path: str
    written: int
    skipped: int


class DatasetResult(BaseModel):
    dataset: DatasetRecord | None = Field(None, description="The dataset built or imported (None for an export).")
    report: dict[str, Any] | None = Field(None, description="The build report, or the import's counts.")
    export: ExportInfo | None = None


class DeployRequest(_Body):
    services: list[Name] | None = Field(None, min_length=1, description="Deploy only for these services (default: every service).")
    force: bool = Field(False, description="Skip the gates; recorded in the history as forced.")
    notes: str = Field("", max_length=2000)


class RollbackRequest(_Body):
    service: Name | None = Field(None, description="Roll back this service's own pointer (default: every service's).")
    notes: str = Field("", max_length=2000)


class EvaluationRequest(_Body):
    model: Name = Field(description="Registered model: name@version, or name for its latest version.")
    dataset: Name = Field(description="Version of a registered dataset.")
    split: EvalSplit = "test_phrasing"
    limit: int | None = Field(None, gt=0, le=100_000, description="Evaluate at most this many examples.")
    # GenerationSettings' fields, capped so that one request body cannot ask the worker for unbounded work;
    # max_new_tokens has defaulted to 128 here since the API's first version (9808780), and still does.
    max_new_tokens: Annotated[MaxNewTokens, Field(le=4096)] = 128
    batch_size: Annotated[BatchSize, Field(le=256)] = 8
    baseline: Name | None = Field(
        None, description="Compare with this model (name@version); default: the deployed version of the same name, if any.")
    gates: GateConfig | None = Field(None, description="Gate thresholds (default: GateConfig's).")


class EvaluationResult(BaseModel):
    evaluation: EvaluationRecord
    output_dir: str
    comparison: ComparisonRecord | None = None
    decision: GateDecision | None = None
    notes: list[str] = Field(default_factory=list)


class CategoryBar(BaseModel):
    category: str
    base: float | None
    candidate: float | None


class FailingExample(BaseModel):
    id: str
    split: str | None
    category: str | None
    reason: str | None
    message: str | None
    request: str | None = Field(None, description="The last user message of the example.")
    expected: list[Any] = Field(default_factory=list)
    output: str | None = Field(None, description="The candidate's raw output.")
    base_correct: bool | None = None


class ComparisonView(BaseModel):
    comparison: ComparisonRecord
    base: ModelRecord | None = Field(description="The base's registry version; None for a base model outside the registry "
                                                  "(comparison.base names it).")
    candidate: ModelRecord
    base_evaluation: EvaluationRecord | None
    candidate_evaluation: EvaluationRecord | None
    per_category: list[CategoryBar]
    decision: GateDecision | None = Field(None, description="The candidate's latest gate decision.")
    latency: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="latency_ms_p50 / p95, tokens_per_s: base and candidate, when recorded.")
    failing: list[FailingExample] = Field(default_factory=list, description="Candidate's wrong answers, when its evaluation folder is here.")
    notes: list[str] = Field(default_factory=list)


class Stats(BaseModel):
    datasets: int
    jobs: dict[str, int] = Field(description="Jobs by status (of the latest 500).")
    models: int
    deployed: list[str] = Field(description="name@version live anywhere.")
    last_decision: GateDecision | None
