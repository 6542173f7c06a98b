"""Sessions in the rollups (issue 14): the minute and hourly rollups gain a HyperLogLog
sketch of their requests' session ids (`sessions_sketch`, NULL when none had one), those
requests' number (`session_requests`) and spend (`session_cost_usd`), so that cost per
session is read from the rollups (telemetry/sessions.py).

Rows written before this migration count no sessions and no session spend: a window
reaching before it divides the spend of the later requests that carry a session by their
sessions. The hours and days `rollups_hour` already holds need no rebuild: their minutes
count no sessions either, so a span's row is still the sum of its minutes'.

Revision ID: 0014_session_counts
Revises: 0013_console_speed
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_session_counts"
down_revision = "0013_console_speed"
branch_labels = None
depends_on = None

TABLES = ("rollups_minute", "rollups_hour")


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("sessions_sketch", sa.LargeBinary, nullable=True),
        sa.Column("session_requests", sa.Integer, nullable=False, server_default="0"),
        sa.Column("session_cost_usd", sa.Float, nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in _columns():
                batch.add_column(column)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in reversed(_columns()):
                batch.drop_column(column.name)
