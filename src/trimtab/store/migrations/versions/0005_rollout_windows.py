"""When each stage of a rollout began, and an index for reading a route version's requests.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(sa.Column("stage_starts", sa.JSON))
    op.create_index(
        "ix_requests_route_version_started", "requests", ["route", "version", "started_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_requests_route_version_started", table_name="requests")
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_column("stage_starts")
