"""The session sums of a time range, per group, from the coarsest rollup rows that cover
it: a closed UTC day's row of `rollups_hour` while the day is compacted and unmarked,
else each such hour's row, else the minutes (telemetry/hourly.py says why a span's row
equals its minutes' sums). A 30-day window thus merges about 30 day sketches per group
and its edges' hours and minutes, not 43,200 minutes' sketches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, false, or_, select

from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups, rollups_hour
from trimtab.telemetry.hourly import DAY, HOUR, day_floor, dirty_spans, hour_floor
from trimtab.telemetry.production import production

Ranges = list[tuple[datetime, datetime]]  # half-open


def plan(start: datetime, end: datetime, dirty: dict[int, set[datetime]]) -> list[Ranges]:
    """(minute, hour, day ranges) covering [start, end): whole unmarked days, then whole
    unmarked hours, then minutes. `end` is a closed hour's end at most for the spans."""
    minutes: Ranges = []
    hours: Ranges = []
    days: Ranges = []
    at = start
    while at < end:
        if at == day_floor(at) and at + DAY <= end and at not in dirty.get(24, set()):
            _extend(days, at, at + DAY)
            at += DAY
        elif at == hour_floor(at) and at + HOUR <= end and at not in dirty.get(1, set()):
            _extend(hours, at, at + HOUR)
            at += HOUR
        else:
            step = min(hour_floor(at) + HOUR, end)
            _extend(minutes, at, step)
            at = step
    return [minutes, hours, days]


def _extend(ranges: Ranges, a: datetime, b: datetime) -> None:
    if ranges and ranges[-1][1] == a:
        ranges[-1] = (ranges[-1][0], b)
    else:
        ranges.append((a, b))


def _within(column: Any, ranges: Ranges) -> ColumnElement[bool]:
    return or_(false(), *(and_(column >= a, column < b) for a, b in ranges))


def session_rows(
    conn: Connection,
    start: datetime,
    end: datetime,
    group_by: Sequence[str],
    tenant: str | None,
    routes: Sequence[str] | None = None,
) -> list[tuple[Any, ...]]:
    """(*group values, session_requests, session_cost_usd, sessions_sketch) of the rows
    with sessions in [start, end) (production traffic; one tenant's, some routes')."""
    closed = min(end, hour_floor(end))  # spans only for hours that have ended
    ranges = plan(as_utc(start), closed, dirty_spans(conn, start, closed))
    if closed < end:
        _extend(ranges[0], max(closed, as_utc(start)), end)
    parts: list[Select[Any]] = []
    for table, time_column, hours, rs in (
        (rollups, rollups.c.minute, None, ranges[0]),
        (rollups_hour, rollups_hour.c.hour, 1, ranges[1]),
        (rollups_hour, rollups_hour.c.hour, 24, ranges[2]),
    ):
        if rs:
            parts.append(_part(table, time_column, hours, rs, group_by, tenant, routes))
    out: list[tuple[Any, ...]] = []
    for part in parts:
        out.extend(tuple(row) for row in conn.execute(part))
    return out


def _part(
    table: Table,
    time_column: Any,
    hours: int | None,
    ranges: Ranges,
    group_by: Sequence[str],
    tenant: str | None,
    routes: Sequence[str] | None,
) -> Select[Any]:
    c = table.c
    query = select(
        *(c[g] for g in group_by), c.session_requests, c.session_cost_usd, c.sessions_sketch
    ).where(_within(time_column, ranges), c.sessions_sketch.is_not(None), production(c.feature))
    if hours is not None:
        query = query.where(c.hours == hours)
    if tenant is not None:
        query = query.where(c.tenant == tenant)
    if routes is not None:
        query = query.where(c.route.in_(sorted(set(routes))))
    return query
