"""Requests and per-minute rollups.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("api", sa.String(16), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("request_model", sa.String(256)),
        sa.Column("response_model", sa.String(256)),
        sa.Column("upstream_model", sa.String(256)),
        sa.Column("provider", sa.String(128)),
        sa.Column("provider_kind", sa.String(32)),
        sa.Column("response_id", sa.String(256)),
        sa.Column("user_id", sa.String(256)),
        sa.Column("session_id", sa.String(256)),
        sa.Column("feature", sa.String(256)),
        sa.Column("route", sa.String(256)),
        sa.Column("version", sa.String(64)),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("error_type", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("overhead_ms", sa.Float, nullable=False),
        sa.Column("input_tokens", sa.Integer),
        sa.Column("output_tokens", sa.Integer),
        sa.Column("cost_usd", sa.Float),
        sa.Column("streamed", sa.Boolean, nullable=False),
        sa.Column("finish_reasons", sa.JSON),
        sa.Column("request_body", sa.Text),
        sa.Column("response_body", sa.Text),
        sa.Column("attributes", sa.JSON),
    )
    op.create_index("ix_requests_started", "requests", ["started_at", "id"])
    op.create_index("ix_requests_tenant_started", "requests", ["tenant", "started_at"])
    op.create_index("ix_requests_model_started", "requests", ["request_model", "started_at"])
    op.create_table(
        "rollups_minute",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("feature", sa.String(256), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_sketch", sa.LargeBinary, nullable=False),
        sa.Column("ttft_sketch", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint(
            "minute",
            "model",
            "provider",
            "tenant",
            "feature",
            "status_code",
            "route",
            "version",
            name="uq_rollups_minute_dims",
        ),
    )
    op.create_index("ix_rollups_minute", "rollups_minute", ["minute"])


def downgrade() -> None:
    op.drop_table("rollups_minute")
    op.drop_table("requests")
