"""Online scores: sampled production answers scored by an applied suite (issue 13).

Revision ID: 0012_online_scores
Revises: 0011_eval_suites
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_online_scores"
down_revision = "0011_eval_suites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "online_scores",
        sa.Column("request_id", sa.String(40), primary_key=True),
        sa.Column("scorer", sa.String(64), primary_key=True),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64)),
        sa.Column("value", sa.Float),
        sa.Column("passed", sa.Boolean),
        sa.Column("reason", sa.Text),
        sa.Column("request_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_online_scores_route_time", "online_scores", ["route", "version", "request_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_online_scores_route_time", "online_scores")
    op.drop_table("online_scores")
