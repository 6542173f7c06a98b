"""Models switched to their fallbacks at run time (issue 14's containment).

Revision ID: 0011_model_switches
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_model_switches"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_switches",
        sa.Column("model", sa.String(256), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(256)),
        sa.Column("incident_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_switches")
