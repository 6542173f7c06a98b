"""Applied eval suites, and the runs behind `eval` attestations (issue 13).

Revision ID: 0011_eval_suites
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_eval_suites"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_suites",
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("route", sa.String(128)),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(256)),
    )
    op.create_index("ix_eval_suites_route", "eval_suites", ["scope", "route"])
    op.create_table(
        "eval_attestations",
        sa.Column("attestation_id", sa.Integer, sa.ForeignKey("attestations.id"), primary_key=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("eval_runs.id"), nullable=False),
        sa.Column("baseline_run_id", sa.String(40), sa.ForeignKey("eval_runs.id")),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("dataset_version", sa.Integer, nullable=False),
        sa.Column("target_digest", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("eval_attestations")
    op.drop_index("ix_eval_suites_route", "eval_suites")
    op.drop_table("eval_suites")
