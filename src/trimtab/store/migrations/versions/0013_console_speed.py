"""The console's reads from the hourly rollups, and the explorer's route filter (issue 16).

`rollups_hour` gains the sums the overview and the costs page show (errors, tokens, cost):
every hour and day it already holds is marked dirty, so that the compaction
(telemetry/hourly.py) rebuilds it with them before a read takes it (until then reads take
its minutes). `requests` gains an index on (route, started_at, id): the explorer's
`?route=` page, newest first, reads it in order instead of sorting the route's rows.

Revision ID: 0013_console_speed
Revises: 0012_slo_speed
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_console_speed"
down_revision = "0012_slo_speed"
branch_labels = None
depends_on = None

COLUMNS = (
    ("errors", sa.Integer),
    ("input_tokens", sa.Integer),
    ("output_tokens", sa.Integer),
    ("cost_usd", sa.Float),
)


def upgrade() -> None:
    with op.batch_alter_table("rollups_hour") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=False, server_default="0"))
    bind = op.get_bind()
    hour = sa.table(
        "rollups_hour", sa.column("hour", sa.DateTime(timezone=True)), sa.column("hours")
    )
    dirty = sa.table(
        "rollups_hour_dirty",
        sa.column("hour", sa.DateTime(timezone=True)),
        sa.column("hours"),
        sa.column("seq"),
    )
    spans = set(bind.execute(sa.select(hour.c.hour, hour.c.hours).distinct()))
    marked = set(bind.execute(sa.select(dirty.c.hour, dirty.c.hours)))
    fresh = sorted(spans - marked)
    if fresh:
        op.bulk_insert(dirty, [{"hour": h, "hours": n, "seq": 1} for h, n in fresh])
    op.create_index("ix_requests_route_started", "requests", ["route", "started_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_requests_route_started", "requests")
    with op.batch_alter_table("rollups_hour") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
