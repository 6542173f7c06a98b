"""API keys, the audit log and budget events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.String(256)),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_key_id", sa.String(40)),
        sa.Column("actor", sa.String(256)),
        sa.Column("tenant", sa.String(128)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256)),
        sa.Column("detail", sa.JSON),
        sa.Column("remote_addr", sa.String(64)),
        sa.Column("request_id", sa.String(40)),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "budget_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.String(300), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("spent_usd", sa.Float, nullable=False),
        sa.Column("limit_usd", sa.Float, nullable=False),
        sa.Column("on_exceed", sa.String(300), nullable=False),
        sa.UniqueConstraint("scope", "period_start", "threshold", name="uq_budget_events_crossing"),
    )
    op.create_index("ix_budget_events_at", "budget_events", ["at"])


def downgrade() -> None:
    op.drop_table("budget_events")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
