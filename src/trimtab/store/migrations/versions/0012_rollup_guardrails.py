"""The per-minute rollups count the requests on which a guardrail fired (issue 15: a
route's violation rate as an SLI, docs/slos.md). Rows written before count none.

Revision ID: 0012_rollup_guardrails
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_rollup_guardrails"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollups_minute") as batch:
        batch.add_column(
            sa.Column("guardrail_fired", sa.Integer, nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("rollups_minute") as batch:
        batch.drop_column("guardrail_fired")
