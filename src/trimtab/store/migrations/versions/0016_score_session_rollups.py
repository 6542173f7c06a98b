"""The eval-score and session-cost SLIs' rollups (issue 14): `score_rollups`, the online
scores per minute, hour and UTC day of their requests, suite, scorer and value bin
(evals/score_rollups.py), and
`session_costs`, each session's requests and spend per tenant, route and feature, counted
in the minute of its first request (telemetry/session_costs.py).

Both start empty: scores stored and requests recorded before this migration are in
neither (a window reaching before it judges the later traffic only).

Revision ID: 0016_score_session_rollups
Revises: 0015_rollup_sli_columns
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_score_session_rollups"
down_revision = "0015_rollup_sli_columns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "score_rollups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("scorer", sa.String(64), nullable=False),
        sa.Column("span", sa.Integer, nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.UniqueConstraint(
            "suite",
            "scorer",
            "span",
            "minute",
            "route",
            "tenant",
            "version",
            "bin",
            name="uq_score_rollups",
        ),
    )
    op.create_index("ix_score_rollups_minute", "score_rollups", ["minute"])
    op.create_table(
        "session_costs",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("route", sa.String(256), primary_key=True),
        sa.Column("feature", sa.String(256), primary_key=True),
        sa.Column("session_key", sa.String(32), primary_key=True),
        sa.Column("first_minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_session_costs_route_first",
        "session_costs",
        ["route", "first_minute", "cost_usd", "tenant", "feature"],
    )
    op.create_index(
        "ix_session_costs_first",
        "session_costs",
        ["first_minute", "cost_usd", "tenant", "feature", "route"],
    )
    op.create_index("ix_session_costs_last", "session_costs", ["last_minute"])


def downgrade() -> None:
    op.drop_index("ix_session_costs_last", "session_costs")
    op.drop_index("ix_session_costs_first", "session_costs")
    op.drop_index("ix_session_costs_route_first", "session_costs")
    op.drop_table("session_costs")
    op.drop_index("ix_score_rollups_minute", "score_rollups")
    op.drop_table("score_rollups")
