"""Eval runs and their per-item results (issue 13).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("dataset_scope", sa.String(128), nullable=False),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("dataset_version", sa.Integer, nullable=False),
        sa.Column("route_scope", sa.String(128)),
        sa.Column("route", sa.String(128)),
        sa.Column("route_version", sa.Integer),
        sa.Column("model", sa.String(256)),
        sa.Column("target_digest", sa.String(64), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256)),
        sa.ForeignKeyConstraint(
            ["dataset_scope", "dataset", "dataset_version"],
            ["dataset_versions.scope", "dataset_versions.dataset", "dataset_versions.number"],
        ),
    )
    op.create_index("ix_eval_runs_scope_suite", "eval_runs", ["scope", "suite", "created_at"])
    op.create_table(
        "eval_results",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("eval_runs.id"), primary_key=True),
        sa.Column("item_id", sa.String(128), primary_key=True),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("target_digest", sa.String(64), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("output", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("input_tokens", sa.Integer),
        sa.Column("output_tokens", sa.Integer),
        sa.Column("cost_usd", sa.Float),
        sa.Column("request_id", sa.String(40)),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_eval_results_cache", "eval_results", ["scope", "target_digest", "request_digest"]
    )


def downgrade() -> None:
    op.drop_index("ix_eval_results_cache", "eval_results")
    op.drop_table("eval_results")
    op.drop_index("ix_eval_runs_scope_suite", "eval_runs")
    op.drop_table("eval_runs")
