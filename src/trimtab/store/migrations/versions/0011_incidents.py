"""Incidents, their own timeline entries and their reusable rules (issue 14).

Revision ID: 0011_incidents
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_incidents"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("customer_impact", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("routes", sa.JSON, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("tenants", sa.JSON, nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("opened_by", sa.String(256)),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_bad_at", sa.DateTime(timezone=True)),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("mitigated_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("dedup_key", sa.String(256)),
        sa.Column("open_dedup_key", sa.String(256)),
        sa.Column("postmortem", sa.Text),
        sa.Column("postmortem_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("open_dedup_key", name="uq_incidents_open_dedup_key"),
    )
    op.create_index("ix_incidents_scope_opened", "incidents", ["scope", "opened_at"])
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(40), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256)),
        sa.Column("message", sa.Text),
        sa.Column("detail", sa.JSON),
    )
    op.create_index("ix_incident_events_incident", "incident_events", ["incident_id", "id"])
    op.create_table(
        "incident_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(40), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(512), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256)),
    )
    op.create_index("ix_incident_rules_incident", "incident_rules", ["incident_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_incident_rules_incident", "incident_rules")
    op.drop_table("incident_rules")
    op.drop_index("ix_incident_events_incident", "incident_events")
    op.drop_table("incident_events")
    op.drop_index("ix_incidents_scope_opened", "incidents")
    op.drop_table("incidents")
