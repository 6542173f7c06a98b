"""Hourly and daily rollups for SLO reads, and the spans still to compact (issue 14).

Every hour and day that already has minute rollups is marked dirty: the compaction (the SLO
evaluator's, telemetry/hourly.py) sums it into `rollups_hour`; until then reads take its
minutes.

Revision ID: 0012_slo_speed
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0012_slo_speed"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollups_hour",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hours", sa.Integer, nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("feature", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("latency_sketch", sa.LargeBinary, nullable=False),
        sa.Column("ttft_sketch", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_rollups_hour_route", "rollups_hour", ["route", "hours", "hour"])
    op.create_index("ix_rollups_hour_hour", "rollups_hour", ["hours", "hour"])
    dirty = op.create_table(
        "rollups_hour_dirty",
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("hours", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    minutes = sa.table("rollups_minute", sa.column("minute", sa.DateTime(timezone=True)))
    marks: set[tuple[datetime, int]] = set()
    for (minute,) in op.get_bind().execute(sa.select(minutes.c.minute).distinct()):
        at = (minute if minute.tzinfo else minute.replace(tzinfo=UTC)).astimezone(UTC)
        marks.add((at.replace(minute=0, second=0, microsecond=0), 1))
        marks.add((at.replace(hour=0, minute=0, second=0, microsecond=0), 24))
    if marks:
        op.bulk_insert(dirty, [{"hour": h, "hours": n, "seq": 1} for h, n in sorted(marks)])


def downgrade() -> None:
    op.drop_table("rollups_hour_dirty")
    op.drop_index("ix_rollups_hour_hour", "rollups_hour")
    op.drop_index("ix_rollups_hour_route", "rollups_hour")
    op.drop_table("rollups_hour")
