"""Initial registry schema: catalogs, datasets, training jobs, models, evaluations, comparisons,
gate decisions, deployment history and per-service live pointers.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types: a migration must not change when tables.py does.
TIMESTAMP = sa.DateTime(timezone=True)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _fk(table: str, column: str, referred: str, target: str = "id") -> sa.ForeignKeyConstraint:
    # Named as tables.py's naming convention names it, so later migrations can drop it.
    return sa.ForeignKeyConstraint([column], [f"{referred}.{target}"], name=op.f(f"fk_{table}_{column}_{referred}"))


def upgrade() -> None:
    op.create_table(
        "catalogs",
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_catalogs")),
    )
    op.create_table(
        "datasets",
        _id(),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("catalog_hash", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_datasets_content_hash")),
        sa.UniqueConstraint("version", name=op.f("uq_datasets_version")),
    )
    op.create_table(
        "training_jobs",
        _id(),
        sa.Column("status", _enum("job_status", "pending", "running", "completed", "failed", "cancelled"), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Double(), nullable=False),
        sa.Column("losses", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_dir", sa.Text(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        _fk("training_jobs", "dataset_id", "datasets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_jobs")),
    )
    op.create_table(
        "models",
        _id(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("patch", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("model_kind", "adapter", "full", "prompt"), nullable=False),
        sa.Column("base_model", sa.String(512), nullable=False),
        sa.Column("artifact_path", sa.Text(), nullable=False),
        sa.Column("catalog_hash", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("artifact_hash", sa.String(64), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", _enum("model_status", "registered", "evaluated", "deployed", "archived"), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _fk("models", "catalog_hash", "catalogs", "hash"),
        _fk("models", "dataset_id", "datasets"),
        _fk("models", "job_id", "training_jobs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", "fingerprint", name=op.f("uq_models_name_fingerprint")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_models_name_version")),
    )
    op.create_index(op.f("ix_models_name"), "models", ["name"])
    op.create_table(
        "comparisons",
        _id(),
        sa.Column("base_model_id", sa.Integer(), nullable=False),
        sa.Column("candidate_model_id", sa.Integer(), nullable=False),
        sa.Column("suite_version", sa.String(64), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("losses", sa.Integer(), nullable=False),
        sa.Column("ties", sa.Integer(), nullable=False),
        sa.Column("deltas", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _fk("comparisons", "base_model_id", "models"),
        _fk("comparisons", "candidate_model_id", "models"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparisons")),
    )
    op.create_index(op.f("ix_comparisons_candidate_model_id"), "comparisons", ["candidate_model_id"])
    op.create_table(
        "evaluations",
        _id(),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("suite_version", sa.String(64), nullable=False),
        sa.Column("split", sa.String(64), nullable=False),
        sa.Column("overall", sa.Double(), nullable=False),
        sa.Column("per_category", sa.JSON(), nullable=False),
        sa.Column("per_tool", sa.JSON(), nullable=False),
        sa.Column("per_split", sa.JSON(), nullable=False),
        sa.Column("per_service", sa.JSON(), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _fk("evaluations", "model_id", "models"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    op.create_index(op.f("ix_evaluations_model_id"), "evaluations", ["model_id"])
    op.create_table(
        "gate_decisions",
        _id(),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=True),
        sa.Column("baseline_model_id", sa.Integer(), nullable=True),
        sa.Column("baselines", sa.JSON(), nullable=False),
        sa.Column("outcome", _enum("gate_outcome", "deploy", "partial", "blocked"), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("deploy_services", sa.JSON(), nullable=False),
        sa.Column("keep_services", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _fk("gate_decisions", "evaluation_id", "evaluations"),
        _fk("gate_decisions", "baseline_model_id", "models"),
        _fk("gate_decisions", "model_id", "models"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_decisions")),
    )
    op.create_index(op.f("ix_gate_decisions_model_id"), "gate_decisions", ["model_id"])
    op.create_table(
        "deployments",
        _id(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("action", _enum("deploy_action", "deploy", "rollback", "archive"), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("previous_model_id", sa.Integer(), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _fk("deployments", "decision_id", "gate_decisions"),
        _fk("deployments", "model_id", "models"),
        _fk("deployments", "previous_model_id", "models"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    op.create_index("ix_deployments_name_service", "deployments", ["name", "service"])
    op.create_table(
        "service_deployments",
        _id(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _fk("service_deployments", "deployment_id", "deployments"),
        _fk("service_deployments", "model_id", "models"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_deployments")),
        sa.UniqueConstraint("name", "service", name=op.f("uq_service_deployments_name_service")),
    )


def downgrade() -> None:
    for table in ("service_deployments", "deployments", "gate_decisions", "evaluations", "comparisons",
                  "models", "training_jobs", "datasets", "catalogs"):
        op.drop_table(table)  # their indexes go with them
