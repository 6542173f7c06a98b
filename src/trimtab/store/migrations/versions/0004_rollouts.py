"""Rollouts, attestations and feedback.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("route", sa.String(128), sa.ForeignKey("routes.name"), nullable=False),
        sa.Column("stable_version", sa.Integer, nullable=False),
        sa.Column("candidate_version", sa.Integer, nullable=False),
        sa.Column("plan_name", sa.String(64), nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("stage_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(256)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text),
        sa.Column("last_decision", sa.JSON),
    )
    op.create_index("ix_rollouts_route_status", "rollouts", ["route", "status"])
    op.create_table(
        "attestations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("route", sa.String(128), sa.ForeignKey("routes.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("result", sa.String(8), nullable=False),
        sa.Column("by", sa.String(256), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("url", sa.String(1024)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_attestations_route_version", "attestations", ["route", "version"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("route", sa.String(256)),
        sa.Column("version", sa.String(64)),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("negative", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("escalated", sa.Boolean, nullable=False),
        sa.Column("by", sa.String(256)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feedback_route_version", "feedback", ["route", "version"])
    op.create_index("ix_feedback_request", "feedback", ["request_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("attestations")
    op.drop_table("rollouts")
