"""Model registry: versions, evaluations, deployment gates, deploy and rollback.

``Registry`` is the library API behind ``tooltune models …`` (its training jobs: ``Registry.jobs``,
a ``JobQueue``); ``evaluate_gates`` is a pure function the pipeline can call on two metric sets.
"""

from tooltune.registry.db import Registry, parse_ref
from tooltune.registry.engine import default_url, upgrade
from tooltune.registry.gates import Check, CheckName, GateConfig, GateDecision, Outcome, evaluate_gates
from tooltune.registry.jobs import JobQueue
from tooltune.registry.metrics import Breakdown, ComparisonResult, EvalMetrics
from tooltune.registry.records import (
    ComparisonRecord,
    DatasetRecord,
    DeploymentRecord,
    DriftRecord,
    EvaluationRecord,
    JobRecord,
    ModelDiff,
    ModelRecord,
    Serving,
)
from tooltune.registry.semver import Version, bump, next_version
from tooltune.registry.tables import Action, JobStatus, ModelKind, ModelStatus

__all__ = [
    "Action",
    "Breakdown",
    "Check",
    "CheckName",
    "ComparisonRecord",
    "ComparisonResult",
    "DatasetRecord",
    "DeploymentRecord",
    "DriftRecord",
    "EvalMetrics",
    "EvaluationRecord",
    "GateConfig",
    "GateDecision",
    "JobQueue",
    "JobRecord",
    "JobStatus",
    "ModelDiff",
    "ModelKind",
    "ModelRecord",
    "ModelStatus",
    "Outcome",
    "Registry",
    "Serving",
    "Version",
    "bump",
    "default_url",
    "evaluate_gates",
    "next_version",
    "parse_ref",
    "upgrade",
]
