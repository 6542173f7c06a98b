"""What the negative-feedback, cost and guardrail SLIs read from the rollups (issue 14):

- `negative_feedback` on `rollups_minute` and `rollups_hour`: the requests of the row that
  received negative feedback (a score below 0.5 or an escalation), each counted once, when
  its first negative feedback arrives (rollouts/feedback.py). The feedback already stored
  is counted here: each request with negative feedback adds one to its minute's row.
- `cost_sketch` on both: a DDSketch (1 % relative accuracy, telemetry/sketch.py) of each
  request's cost, a zero or unknown cost in the zero bin; NULL on rows written before, so
  the cost SLI counts only the requests a sketch holds.
- `guardrail_fired` on `rollups_hour` (the minutes have it since 0012_rollup_guardrails).

Every hour and day `rollups_hour` already holds is marked dirty, so that the compaction
(telemetry/hourly.py) rebuilds it with the new sums before a read takes it (until then
reads take its minutes).

Revision ID: 0015_rollup_sli_columns
Revises: 0014_session_counts
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015_rollup_sli_columns"
down_revision = "0014_session_counts"
branch_labels = None
depends_on = None

DIMENSIONS = ("model", "provider", "tenant", "feature", "status_code", "route", "version")


def _columns(table: str) -> list[sa.Column[Any]]:
    out: list[sa.Column[Any]] = [
        sa.Column("negative_feedback", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost_sketch", sa.LargeBinary, nullable=True),
    ]
    if table == "rollups_hour":
        out.append(sa.Column("guardrail_fired", sa.Integer, nullable=False, server_default="0"))
    return out


def upgrade() -> None:
    for name in ("rollups_minute", "rollups_hour"):
        with op.batch_alter_table(name) as batch:
            for column in _columns(name):
                batch.add_column(column)
    bind = op.get_bind()
    _mark_hours_dirty(bind, _count_stored_feedback(bind))


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _minute(at: datetime) -> datetime:
    return _utc(at).replace(second=0, microsecond=0)


def _count_stored_feedback(bind: sa.Connection) -> set[datetime]:
    """One more negative feedback on the minute row of each request that has some;
    returns the minutes changed."""
    feedback = sa.table(
        "feedback", sa.column("request_id", sa.String), sa.column("negative", sa.Boolean)
    )
    requests = sa.table(
        "requests",
        sa.column("id", sa.String),
        sa.column("started_at", sa.DateTime(timezone=True)),
        sa.column("request_model", sa.String),
        sa.column("provider", sa.String),
        sa.column("tenant", sa.String),
        sa.column("feature", sa.String),
        sa.column("status_code", sa.Integer),
        sa.column("route", sa.String),
        sa.column("version", sa.String),
    )
    r = requests.c
    negative = sa.select(feedback.c.request_id).where(feedback.c.negative.is_(True)).distinct()
    query = sa.select(
        r.started_at, r.request_model, r.provider, r.tenant, r.feature, r.status_code, r.route,
        r.version,
    ).where(r.id.in_(negative.scalar_subquery()))  # fmt: skip
    counts: Counter[tuple[Any, ...]] = Counter()
    for started, *dims in bind.execute(query):
        counts[(_minute(started), *(d if d is not None else "" for d in dims))] += 1
    if not counts:
        return set()
    rollups = sa.table(
        "rollups_minute",
        sa.column("minute", sa.DateTime(timezone=True)),
        sa.column("negative_feedback", sa.Integer),
        *(sa.column(d) for d in DIMENSIONS),
    )
    m = rollups.c
    statement = (
        sa.update(rollups)
        .where(
            m.minute == sa.bindparam("at"), *(m[d] == sa.bindparam(f"d_{d}") for d in DIMENSIONS)
        )
        .values(negative_feedback=m.negative_feedback + sa.bindparam("n"))
    )
    bind.execute(
        statement,
        [
            {"at": key[0], **{f"d_{d}": v for d, v in zip(DIMENSIONS, key[1:], strict=True)},
             "n": n}
            for key, n in counts.items()
        ],
    )  # fmt: skip
    return {key[0] for key in counts}


def _mark_hours_dirty(bind: sa.Connection, minutes: set[datetime]) -> None:
    """Every span `rollups_hour` holds, and the hours and days of `minutes`."""
    hour = sa.table(
        "rollups_hour", sa.column("hour", sa.DateTime(timezone=True)), sa.column("hours")
    )
    dirty = sa.table(
        "rollups_hour_dirty",
        sa.column("hour", sa.DateTime(timezone=True)),
        sa.column("hours"),
        sa.column("seq"),
    )
    spans = {(_utc(h), n) for h, n in bind.execute(sa.select(hour.c.hour, hour.c.hours).distinct())}
    for m in minutes:
        spans |= {(m.replace(minute=0), 1), (m.replace(hour=0, minute=0), 24)}
    marked = {(_utc(h), n) for h, n in bind.execute(sa.select(dirty.c.hour, dirty.c.hours))}
    fresh = sorted(spans - marked)
    if fresh:
        op.bulk_insert(dirty, [{"hour": h, "hours": n, "seq": 1} for h, n in fresh])


def downgrade() -> None:
    for name in ("rollups_minute", "rollups_hour"):
        with op.batch_alter_table(name) as batch:
            for column in reversed(_columns(name)):
                batch.drop_column(column.name)
