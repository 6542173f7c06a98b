"""Hourly and daily rollups for the SLO reads and the console's: a closed hour's (or UTC
day's) minute rollups summed per SLO dimensions (route, model, tenant, feature, version,
status; no provider) with their counts, errors, tokens, cost, negative feedback, guardrails
fired, refusals and sketches (latency, time to first token, cost), so a 30-day window reads
about 30 day rows per series, a few dozen hour rows and its edges' minutes, instead of
43,200 minute rows. Sessions are counted by merging the rows' HLL sketches
(telemetry/sessions.py): a span's sketch is the union of its minutes', so it estimates the
same count as they do. A span's `refused` is NULL when any of its rows' is (a minute from
before migration 0017 counted no refusals): the refusal SLI takes the whole span in neither
count.

Exact by construction: every write into a minute marks its hour and its day dirty
(`mark_dirty`, in the writer's transaction), and a reader takes a span from
`rollups_hour` only while it is not marked; a marked span is read from finer rows.
`compact` (the SLO evaluator runs it each cycle) rebuilds marked closed hours from their
minutes, then marked closed days whose hours are all clean from those hours' rows, and
clears a mark only if no write bumped its `seq` meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from ddsketch import DDSketch
from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups, rollups_hour, rollups_hour_dirty
from trimtab.telemetry.sessions import SessionUnion
from trimtab.telemetry.sketch import from_bytes, to_bytes

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SLO_DIMENSIONS = ("route", "model", "tenant", "feature", "version", "status_code")
# the sums a span's row carries besides its count and sketches (the console shows them;
# the session ones are the spend per session's, telemetry/sessions.py; negative_feedback
# and guardrail_fired the negative-feedback and guardrail SLIs', slo/kinds.py)
SUMS = (
    "errors",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "session_requests",
    "session_cost_usd",
    "negative_feedback",
    "guardrail_fired",
)


def hour_floor(at: datetime) -> datetime:
    return as_utc(at).replace(minute=0, second=0, microsecond=0)


def day_floor(at: datetime) -> datetime:
    return as_utc(at).replace(hour=0, minute=0, second=0, microsecond=0)


def mark_dirty(conn: Connection, minutes: Iterable[datetime]) -> None:
    """Mark the hours and days of `minutes` (just written) dirty: one upsert per distinct
    hour and day."""
    at = {hour_floor(m) for m in minutes}
    marks = sorted({(h, 1) for h in at} | {(day_floor(h), 24) for h in at})
    if not marks:
        return
    conn.execute(_MARK[conn.dialect.name], [{"hour": h, "hours": n, "seq": 1} for h, n in marks])


def _upsert_mark(dialect: Any) -> Any:
    t = rollups_hour_dirty
    return dialect.insert(t).on_conflict_do_update(
        index_elements=[t.c.hour, t.c.hours], set_={"seq": t.c.seq + 1}
    )


# built once: a statement built per call costs the writer more than running it (as in
# telemetry/store.py)
_MARK = {"postgresql": _upsert_mark(postgresql), "sqlite": _upsert_mark(sqlite)}


def dirty_spans(conn: Connection, start: datetime, end: datetime) -> dict[int, set[datetime]]:
    """The marked hours (key 1) and days (key 24) that start between `start`'s day and
    `end` (included)."""
    c = rollups_hour_dirty.c
    query = select(c.hour, c.hours).where(c.hour >= day_floor(start), c.hour <= end)
    out: dict[int, set[datetime]] = {1: set(), 24: set()}
    for h, n in conn.execute(query):
        out.setdefault(int(n), set()).add(as_utc(h))
    return out


def compact(engine: Engine, now: datetime, limit: int = 48) -> int:
    """Rebuild up to `limit` marked hours that closed before `now`'s hour (the newest
    first) from their minutes, then up to `limit` marked days closed before `now`'s day
    whose hours are all clean; returns how many marks were cleared."""
    c = rollups_hour_dirty.c
    with engine.connect() as conn:
        hours = list(
            conn.execute(
                select(c.hour, c.seq)
                .where(c.hours == 1, c.hour < hour_floor(now))
                .order_by(c.hour.desc())
                .limit(limit)
            )
        )
    cleared = sum(_compact(engine, as_utc(h), 1, int(seq)) for h, seq in hours)
    with engine.connect() as conn:
        days = list(
            conn.execute(
                select(c.hour, c.seq)
                .where(c.hours == 24, c.hour < day_floor(now))
                .order_by(c.hour.desc())
                .limit(limit)
            )
        )
        ready = []
        for d, seq in days:
            day = as_utc(d)
            pending = conn.scalar(
                select(func.count()).where(c.hours == 1, c.hour >= day, c.hour < day + DAY)
            )
            if not pending:
                ready.append((day, int(seq)))
    return cleared + sum(_compact(engine, day, 24, seq) for day, seq in ready)


def _compact(engine: Engine, start: datetime, hours: int, seq: int) -> int:
    """Rebuild one span's rows: an hour from its minutes, a day from its hours' rows."""
    sums: dict[tuple[Any, ...], list[Any]] = {}
    with engine.begin() as conn:
        if hours == 1:
            m = rollups.c
            query = select(
                *(m[d] for d in SLO_DIMENSIONS), m.count, m.latency_sketch, m.ttft_sketch,
                m.sessions_sketch, m.cost_sketch, m.refused, *(m[s] for s in SUMS),
            ).where(m.minute >= start, m.minute < start + HOUR)  # fmt: skip
        else:
            h = rollups_hour.c
            query = select(
                *(h[d] for d in SLO_DIMENSIONS), h.count, h.latency_sketch, h.ttft_sketch,
                h.sessions_sketch, h.cost_sketch, h.refused, *(h[s] for s in SUMS),
            ).where(h.hours == 1, h.hour >= start, h.hour < start + DAY)  # fmt: skip
        n = len(SLO_DIMENSIONS)
        for row in conn.execute(query):
            key = tuple(row[:n])
            count, latency, ttft, sessions, costs, refused, *more = row[n:]
            got = sums.get(key)
            if got is None:
                union = SessionUnion()
                union.add(sessions)
                cost = None if costs is None else from_bytes(costs)
                sums[key] = [
                    count, from_bytes(latency), from_bytes(ttft), union, cost, refused, *more,
                ]  # fmt: skip
            else:
                got[0] += count
                _merge(got[1], latency)
                _merge(got[2], ttft)
                got[3].add(sessions)
                if costs is not None:  # NULL: a minute from before migration 0015
                    got[4] = from_bytes(costs) if got[4] is None else _merged(got[4], costs)
                # NULL: a row from before migration 0017 makes the span's count unknown
                got[5] = None if got[5] is None or refused is None else got[5] + refused
                for i, value in enumerate(more, start=6):
                    got[i] += value
        r = rollups_hour.c
        conn.execute(delete(rollups_hour).where(r.hours == hours, r.hour == start))
        if sums:
            conn.execute(
                insert(rollups_hour),
                [
                    {
                        "hour": start,
                        "hours": hours,
                        **dict(zip(SLO_DIMENSIONS, key, strict=True)),
                        "count": count,
                        "latency_sketch": to_bytes(latency),
                        "ttft_sketch": to_bytes(ttft),
                        "sessions_sketch": sessions.to_bytes(),
                        "cost_sketch": None if cost is None else to_bytes(cost),
                        "refused": refused,
                        **dict(zip(SUMS, more, strict=True)),
                    }
                    for key, (count, latency, ttft, sessions, cost, refused, *more) in sums.items()
                ],
            )
        d = rollups_hour_dirty.c
        done = conn.execute(
            delete(rollups_hour_dirty).where(d.hour == start, d.hours == hours, d.seq == seq)
        ).rowcount
    return 1 if done else 0


def _merge(into: DDSketch, raw: bytes) -> None:
    other = from_bytes(raw)
    if other.count:
        into.merge(other)


def _merged(into: DDSketch, raw: bytes) -> DDSketch:
    _merge(into, raw)
    return into
