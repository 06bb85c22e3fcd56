"""Catalog drift per model and service; comparisons with a base outside the registry; portable
base model specs.

- ``catalog_drift``: the last drift check of a version against one service's live catalog.
- ``comparisons``: ``base_model_id`` may be null when the candidate was compared with the base
  model itself (``base_label`` names it, ``base_metrics`` holds its evaluation), and ``details``
  says where the evaluations behind it were written.
- ``models.base_model``: machine-local cache directories written by earlier versions
  (``~/.cache/tooltune/models/smollm2-135m-instruct-<hash>``, the packaged base's directory)
  become the spec they were resolved from (``pypi:smollm2-135m-instruct``, ``builtin``), and the
  fingerprint is recomputed with it, so re-registering the same model stays idempotent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_drift",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("rating", sa.String(16), nullable=False),
        sa.Column("live_catalog_hash", sa.String(64), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("detected_at", TIMESTAMP, nullable=False),
        sa.Column("checked_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_catalog_drift_model_id_models")),
        sa.ForeignKeyConstraint(["live_catalog_hash"], ["catalogs.hash"],
                                name=op.f("fk_catalog_drift_live_catalog_hash_catalogs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_drift")),
        sa.UniqueConstraint("model_id", "service", name=op.f("uq_catalog_drift_model_id_service")),
    )
    op.create_index(op.f("ix_catalog_drift_model_id"), "catalog_drift", ["model_id"])
    with op.batch_alter_table("comparisons") as batch:
        batch.alter_column("base_model_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("base_label", sa.String(512), nullable=True))
        batch.add_column(sa.Column("base_metrics", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))
    _portable_base_models()


def downgrade() -> None:
    op.execute("DELETE FROM comparisons WHERE base_model_id IS NULL")
    with op.batch_alter_table("comparisons") as batch:
        batch.drop_column("details")
        batch.drop_column("base_metrics")
        batch.drop_column("base_label")
        batch.alter_column("base_model_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index(op.f("ix_catalog_drift_model_id"), table_name="catalog_drift")
    op.drop_table("catalog_drift")
    # models.base_model keeps its spec: the spec loads anywhere, the old path only where it was written.


def _portable_base_models() -> None:
    from tooltune.tools.catalog import content_hash
    from tooltune.runtime.pretrained import portable_model_name

    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT m.id, m.name, m.kind, m.base_model, m.catalog_hash, m.config_hash, m.artifact_hash, d.content_hash "
        "FROM models m LEFT JOIN datasets d ON d.id = m.dataset_id")).all()
    taken = {(name, fp) for name, fp in conn.execute(sa.text("SELECT name, fingerprint FROM models")).all()}
    for id_, name, kind, base_model, catalog_hash, config_hash, artifact_hash, dataset_hash in rows:
        spec = portable_model_name(base_model)
        if spec == base_model:
            continue
        # The fingerprint as Registry.register_model computes it, now with the spec.
        fingerprint = content_hash({"catalog": catalog_hash, "dataset": dataset_hash, "config": config_hash,
                                    "artifact": artifact_hash, "base_model": spec, "kind": kind})
        if (name, fingerprint) in taken:  # the same model registered twice from two machines: keep its own
            conn.execute(sa.text("UPDATE models SET base_model = :spec WHERE id = :id"), {"spec": spec, "id": id_})
            continue
        taken.add((name, fingerprint))
        conn.execute(sa.text("UPDATE models SET base_model = :spec, fingerprint = :fp WHERE id = :id"),
                     {"spec": spec, "fp": fingerprint, "id": id_})
