"""Eval datasets: named per tenant, immutable content-addressed versions, each item's
content stored once (issue 13).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256)),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("dataset", sa.String(128), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("author", sa.String(256)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["scope", "dataset"], ["datasets.scope", "datasets.name"]),
        sa.UniqueConstraint("scope", "dataset", "digest", name="uq_dataset_versions_digest"),
    )
    op.create_table(
        "dataset_items",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_table(
        "dataset_version_items",
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("dataset", sa.String(128), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.Column(
            "item_digest", sa.String(64), sa.ForeignKey("dataset_items.digest"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["scope", "dataset", "number"],
            ["dataset_versions.scope", "dataset_versions.dataset", "dataset_versions.number"],
        ),
    )


def downgrade() -> None:
    op.drop_table("dataset_version_items")
    op.drop_table("dataset_items")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
