"""Hourly rollups for the SLO reads: a closed hour's minute rollups summed per SLO
dimensions (route, model, tenant, feature, version, status; no provider), so a 30-day
window reads 720 rows per series instead of 43,200.

Exact by construction: every write into an hour's minutes marks the hour dirty
(`mark_dirty`, in the writer's transaction), and a reader takes an hour from
`rollups_hour` only while it is not marked; a marked hour is read from its minutes.
`compact` (the SLO evaluator runs it each cycle) rebuilds marked closed hours and clears
a mark only if no write bumped its `seq` meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from ddsketch import DDSketch
from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups, rollups_hour, rollups_hour_dirty
from trimtab.telemetry.sketch import from_bytes, to_bytes

HOUR = timedelta(hours=1)
SLO_DIMENSIONS = ("route", "model", "tenant", "feature", "version", "status_code")


def hour_floor(at: datetime) -> datetime:
    return as_utc(at).replace(minute=0, second=0, microsecond=0)


def mark_dirty(conn: Connection, minutes: Iterable[datetime]) -> None:
    """Mark the hours of `minutes` (just written) dirty: one upsert per distinct hour."""
    hours = sorted({hour_floor(m) for m in minutes})
    if not hours:
        return
    table = rollups_hour_dirty
    ins: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
    stmt = ins.on_conflict_do_update(index_elements=[table.c.hour], set_={"seq": table.c.seq + 1})
    conn.execute(stmt, [{"hour": h, "seq": 1} for h in hours])


def dirty_hours(conn: Connection, start: datetime, end: datetime) -> set[datetime]:
    """The marked hours between `start` and `end` (both included)."""
    c = rollups_hour_dirty.c
    query = select(c.hour).where(c.hour >= hour_floor(start), c.hour <= end)
    return {as_utc(h) for (h,) in conn.execute(query)}


def compact(engine: Engine, now: datetime, limit: int = 48) -> int:
    """Rebuild up to `limit` marked hours that closed before `now`'s hour (the newest
    first) from their minutes; returns how many were cleared."""
    c = rollups_hour_dirty.c
    with engine.connect() as conn:
        marked = list(
            conn.execute(
                select(c.hour, c.seq)
                .where(c.hour < hour_floor(now))
                .order_by(c.hour.desc())
                .limit(limit)
            )
        )
    cleared = 0
    for hour, seq in marked:
        cleared += _compact_hour(engine, as_utc(hour), int(seq))
    return cleared


def _compact_hour(engine: Engine, hour: datetime, seq: int) -> int:
    m = rollups.c
    sums: dict[tuple[Any, ...], list[Any]] = {}
    with engine.begin() as conn:
        rows = conn.execute(
            select(*(m[d] for d in SLO_DIMENSIONS), m.count, m.latency_sketch, m.ttft_sketch).where(
                m.minute >= hour, m.minute < hour + HOUR
            )
        )
        for *dims, count, latency, ttft in rows:
            key = tuple(dims)
            got = sums.get(key)
            if got is None:
                sums[key] = [count, from_bytes(latency), from_bytes(ttft)]
            else:
                got[0] += count
                _merge(got[1], latency)
                _merge(got[2], ttft)
        conn.execute(delete(rollups_hour).where(rollups_hour.c.hour == hour))
        if sums:
            conn.execute(
                insert(rollups_hour),
                [
                    {
                        "hour": hour,
                        **dict(zip(SLO_DIMENSIONS, key, strict=True)),
                        "count": count,
                        "latency_sketch": to_bytes(latency),
                        "ttft_sketch": to_bytes(ttft),
                    }
                    for key, (count, latency, ttft) in sums.items()
                ],
            )
        d = rollups_hour_dirty.c
        done = conn.execute(delete(rollups_hour_dirty).where(d.hour == hour, d.seq == seq)).rowcount
    return 1 if done else 0


def _merge(into: DDSketch, raw: bytes) -> None:
    other = from_bytes(raw)
    if other.count:
        into.merge(other)
