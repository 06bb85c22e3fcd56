"""Job worker columns (pid, planned steps, cancel flag) for the job API, and the access audit log
of published training data.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("worker_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("total_steps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "access_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(256), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_audit")),
    )
    op.create_index("ix_access_audit_service_at", "access_audit", ["service", "at"])


def downgrade() -> None:
    op.drop_index("ix_access_audit_service_at", table_name="access_audit")
    op.drop_table("access_audit")
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("cancel_requested")
        batch.drop_column("total_steps")
        batch.drop_column("worker_pid")
