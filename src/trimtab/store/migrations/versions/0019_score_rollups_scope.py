"""The eval-score rollups keyed by their suite's scope: `score_rollups` gains `scope` (the
suite's, as in `online_scores`: a tenant, or "" for a shared suite), part of
`uq_score_rollups`, so a shared suite and a tenant's of the same name keep rows of their
own and the SLI of either counts only its own suite's scores.

The rows already there summed both suites. Each row's scope is found from `online_scores`,
which holds every score the rollups counted (the writer stores both in one transaction,
evals/score_rollups.py, and nothing deletes scores), with its suite's scope:

- a suite name and request tenant whose scores came from one scope only (almost every row:
  a shared suite, or a tenant's with no shared suite of its name scoring that tenant) take
  that scope, the counts unchanged: exact;
- where both the shared suite and the tenant's own suite of that name scored the tenant's
  requests, the rows cannot be split from their sums, so each of them (each scorer, span,
  start, route and version) is rebuilt from the scores `online_scores` holds for it, one
  row per scope and bin: exact wherever `online_scores` holds each score the row counted
  (every score stored since 0016). Rows retention already deleted are not made again;
  an hour or day row that began before 0016 was applied, which counted only the later
  scores, is rebuilt from all of its scores;
- rows no score explains (none is known today) are the shared suite's.

The downgrade adds each key's rows of the two scopes back into one (the counts before
this migration: a sum) and restores the old key.

Revision ID: 0019_score_rollups_scope
Revises: 0018_online_scores_by_suite
Create Date: 2026-12-03
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0019_score_rollups_scope"
down_revision = "0018_online_scores_by_suite"
branch_labels = None
depends_on = None

TABLE = "score_rollups"
UNIQUE = "uq_score_rollups"
OLD_KEY = ["suite", "scorer", "span", "minute", "route", "tenant", "version", "bin"]
NEW_KEY = ["suite", "scope", "scorer", "span", "minute", "route", "tenant", "version", "bin"]
SPANS = (1, 60, 24 * 60)  # minutes: each score is in its minute's, hour's and day's row
GROUP = ("scorer", "span", "minute", "route", "version")  # a row but for its scope and bin


def _table(scoped: bool) -> sa.Table:
    """score_rollups as 0016 made it (`scoped`: with this migration's scope and key)."""
    columns: list[sa.Column[Any]] = [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("scorer", sa.String(64), nullable=False),
        sa.Column("span", sa.Integer, nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
    ]
    if scoped:
        columns.insert(1, sa.Column("scope", sa.String(128), nullable=False))
    return sa.Table(
        TABLE,
        sa.MetaData(),
        *columns,
        sa.UniqueConstraint(*(NEW_KEY if scoped else OLD_KEY), name=UNIQUE),
        sa.Index("ix_score_rollups_minute", "minute"),
    )


_ROLLUPS = sa.table(
    TABLE,
    *(sa.column(n) for n in ("id", "suite", "scope", "scorer", "span", "route", "tenant")),
    *(sa.column(n) for n in ("version", "bin", "count", "passed")),
    sa.column("minute", sa.DateTime(timezone=True)),
)
_SCORES = sa.table(
    "online_scores",
    *(sa.column(n) for n in ("suite", "scope", "scorer", "tenant", "route", "version")),
    sa.column("value", sa.Float),
    sa.column("passed", sa.Boolean),
    sa.column("request_at", sa.DateTime(timezone=True)),
)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _bin(value: float | None) -> int:
    """evals/score_rollups.value_bin as it is today: hundredths, rounded down, -1 for none."""
    if value is None or math.isnan(value):
        return -1
    return min(100, max(0, math.floor(round(value * 100, 6))))


def _rebuilt(conn: sa.Connection, suite: str, tenant: str) -> list[dict[str, Any]]:
    """The rows of (suite, tenant) that exist, made again from their scores per scope."""
    r, s = _ROLLUPS.c, _SCORES.c
    existing = {
        (scorer, span, _utc(minute), route, version)
        for scorer, span, minute, route, version in conn.execute(
            sa.select(r.scorer, r.span, r.minute, r.route, r.version)
            .where(r.suite == suite, r.tenant == tenant)
            .distinct()
        )
    }
    sums: dict[tuple[Any, ...], list[int]] = {}
    query = sa.select(s.scope, s.scorer, s.route, s.version, s.value, s.passed, s.request_at)
    for scope, scorer, route, version, value, passed, at in conn.execute(
        query.where(s.suite == suite, s.tenant == tenant, s.scope.in_(["", tenant]))
    ):
        minute = _utc(at).replace(second=0, microsecond=0)
        starts = (minute, minute.replace(minute=0), minute.replace(hour=0, minute=0))
        for span, start in zip(SPANS, starts, strict=True):
            group = (scorer, span, start, route, version or "")
            if group in existing:
                acc = sums.setdefault((scope, *group, _bin(value)), [0, 0])
                acc[0] += 1
                acc[1] += 1 if passed and value is not None else 0
    names = ("scope", *GROUP, "bin")
    return [
        {
            **dict(zip(names, k, strict=True)),
            "suite": suite,
            "tenant": tenant,
            "count": n,
            "passed": p,
        }
        for k, (n, p) in sorted(sums.items())
    ]


def _insert(conn: sa.Connection, rows: Iterable[dict[str, Any]]) -> None:
    batch = list(rows)
    for start in range(0, len(batch), 500):
        conn.execute(sa.insert(_ROLLUPS), batch[start : start + 500])


def _rekey(scoped: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # the batch rebuilds the table as given (its rows copied over: `scope` with them
        # when `scoped`, left behind when not)
        with op.batch_alter_table(TABLE, copy_from=_table(scoped), recreate="always"):
            pass
        return
    with op.batch_alter_table(TABLE) as batch:  # in place: ALTER TABLE
        batch.drop_constraint(UNIQUE, type_="unique")
        if scoped:
            batch.alter_column("scope", existing_type=sa.String(128), nullable=False)
        else:
            batch.drop_column("scope")
        batch.create_unique_constraint(UNIQUE, NEW_KEY if scoped else OLD_KEY)


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:  # SQLite adds a nullable column in place
        batch.add_column(sa.Column("scope", sa.String(128), nullable=True))
    conn = op.get_bind()
    r, s = _ROLLUPS.c, _SCORES.c
    scopes: dict[tuple[str, str], set[str]] = {}
    for suite, tenant, scope in conn.execute(sa.select(s.suite, s.tenant, s.scope).distinct()):
        scopes.setdefault((suite, tenant), set()).add(scope)
    rebuilt: list[dict[str, Any]] = []
    for (suite, tenant), found in sorted(scopes.items()):
        mine = r.suite == suite, r.tenant == tenant
        if len(found) == 1:
            conn.execute(sa.update(_ROLLUPS).where(*mine).values(scope=found.pop()))
        else:  # the shared suite's and the tenant's: split from the scores, not the sums
            rebuilt.extend(_rebuilt(conn, suite, tenant))
            conn.execute(sa.delete(_ROLLUPS).where(*mine))
    conn.execute(sa.update(_ROLLUPS).where(r.scope.is_(None)).values(scope=""))
    _rekey(scoped=True)
    _insert(conn, rebuilt)


def downgrade() -> None:
    conn = op.get_bind()
    r = _ROLLUPS.c
    key = [r[n] for n in OLD_KEY]
    # the keys both scopes have rows of: one row of their sums under the old key
    merged = [
        dict(zip((*OLD_KEY, "count", "passed"), row, strict=True))
        for row in conn.execute(
            sa.select(*key, sa.func.sum(r.count), sa.func.sum(r.passed))
            .group_by(*key)
            .having(sa.func.count() > 1)
        )
    ]
    other = sa.alias(_ROLLUPS, "other")
    same_key = [other.c[n] == r[n] for n in OLD_KEY]
    twin = sa.select(sa.literal(1)).select_from(other).where(*same_key, other.c.id != r.id)
    conn.execute(sa.delete(_ROLLUPS).where(twin.exists()))
    _rekey(scoped=False)
    names = [n for n in (*OLD_KEY, "count", "passed") if n != "minute"]
    unscoped = sa.table(
        TABLE, *(sa.column(n) for n in names), sa.column("minute", sa.DateTime(timezone=True))
    )
    for start in range(0, len(merged), 500):
        conn.execute(sa.insert(unscoped), merged[start : start + 500])
