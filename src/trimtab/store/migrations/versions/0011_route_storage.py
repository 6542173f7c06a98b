"""A route's own storage policy (`storage: {bodies: ...}` beside its owner in the routes
file; issue 15, docs/data-protection.md): null when the route sets none.

Revision ID: 0011_route_storage
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_route_storage"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routes") as batch:
        batch.add_column(sa.Column("storage_bodies", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("routes") as batch:
        batch.drop_column("storage_bodies")
