"""Alerts, silences and the alert outbox (issue 14).

Revision ID: 0011_alerts
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_alerts"
down_revision = "0010"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedup_key", sa.String(256), nullable=False),
        sa.Column("open_key", sa.String(256)),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("owner", sa.String(256)),
        sa.Column("on_call", sa.String(256)),
        sa.Column("silenced", sa.Boolean, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        _at("started_at", False),
        _at("updated_at", False),
        _at("acked_at"),
        sa.Column("acked_by", sa.String(256)),
        sa.Column("ack_comment", sa.Text),
        _at("resolved_at"),
        _at("expires_at"),
        sa.UniqueConstraint("open_key", name="uq_alerts_open_key"),
    )
    op.create_index("ix_alerts_state_started", "alerts", ["state", "started_at"])
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("matchers", sa.JSON, nullable=False),
        _at("starts_at", False),
        _at("ends_at", False),
        sa.Column("created_by", sa.String(256)),
        sa.Column("comment", sa.Text, nullable=False),
        _at("created_at", False),
    )
    op.create_index("ix_silences_ends", "silences", ["ends_at"])
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("sink", sa.String(128), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _at("next_attempt_at", False),
        _at("lease_until"),
        sa.Column("leased_by", sa.String(64)),
        sa.Column("last_error", sa.Text),
        _at("created_at", False),
        _at("delivered_at"),
    )
    op.create_index("ix_alert_outbox_due", "alert_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_alert_outbox_alert", "alert_outbox", ["alert_id", "sink"])


def downgrade() -> None:
    op.drop_table("alert_outbox")
    op.drop_table("silences")
    op.drop_table("alerts")
