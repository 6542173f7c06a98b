"""The route registry: routes, their immutable versions and their timeline.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routes",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("risk_tier", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(128)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stable_version", sa.Integer),
        sa.Column("previous_stable_version", sa.Integer),
    )
    op.create_index("ix_routes_tenant", "routes", ["tenant"])
    op.create_table(
        "route_versions",
        sa.Column("route", sa.String(128), sa.ForeignKey("routes.name"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("bundle", sa.JSON, nullable=False),
        sa.Column("author", sa.String(256)),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parent", sa.Integer),
    )
    op.create_index("ix_route_versions_digest", "route_versions", ["digest"])
    op.create_table(
        "route_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("route", sa.String(128), sa.ForeignKey("routes.name"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("actor", sa.String(256)),
        sa.Column("reason", sa.Text),
        sa.Column("detail", sa.JSON),
    )
    op.create_index("ix_route_events_route", "route_events", ["route", "id"])


def downgrade() -> None:
    op.drop_table("route_events")
    op.drop_table("route_versions")
    op.drop_table("routes")
