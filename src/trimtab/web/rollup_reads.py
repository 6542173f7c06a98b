"""What the overview reads from the per-minute rollups (telemetry/ owns the table), summed
by the database, with latency percentiles merged from the stored sketches' bins.

Decoding each row into a DDSketch and merging those (what `Rollup.merge` does) costs
tens of microseconds a row; a busy hour holds thousands of rows. Here each stored
message's bins are added into one numpy array per group instead, and the quantile is
read off the summed bins the way DDSketch reads its own (tests/web/test_rollup_reads.py
checks they agree).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from ddsketch.mapping import LogarithmicMapping
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Subquery,
    and_,
    false,
    func,
    or_,
    select,
    union_all,
)

from trimtab.slo.windows import MINUTE, Ranges, plan
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups, rollups_hour
from trimtab.telemetry.costs import CostRow
from trimtab.telemetry.hourly import DAY, HOUR, day_floor, dirty_spans
from trimtab.telemetry.production import production
from trimtab.telemetry.sketch import RELATIVE_ACCURACY

_SPAN = 4096  # bins held at first; grows when a key falls outside
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)  # the one telemetry/sketch.py writes with


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    byte = buf[i]
    if byte < 0x80:  # most keys and sizes here: one byte
        return byte, i + 1
    shift = value = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _positive_bins(raw: bytes) -> tuple[float, int, npt.NDArray[np.float64]] | None:
    """(zeroCount, contiguousBinIndexOffset, contiguousBinCounts) of a stored DDSketch
    message read off its wire format (the packed doubles are one buffer: no per-bin
    Python objects, a tenth of the parse's cost); None when the message holds anything
    else the dense read does not expect (sparse bins, an unpacked field), which the
    protobuf parse then reads."""
    zeros, offset, values = 0.0, 0, _EMPTY
    i, end = 0, len(raw)
    while i < end:
        key, i = _varint(raw, i)
        number, kind = key >> 3, key & 7
        if kind == 1 and number == 4:  # zeroCount, a double
            (zeros,) = struct.unpack_from("<d", raw, i)
            i += 8
        elif kind == 2:
            size, i = _varint(raw, i)
            if number == 2:  # positiveValues, a Store
                got = _store(raw, i, i + size)
                if got is None:
                    return None
                offset, values = got
            i += size  # the mapping (1), the negative values (3): not read here
        else:
            return None
    return zeros, offset, values


def _store(raw: bytes, i: int, end: int) -> tuple[int, npt.NDArray[np.float64]] | None:
    offset, values = 0, _EMPTY
    while i < end:
        key, i = _varint(raw, i)
        number, kind = key >> 3, key & 7
        if number == 2 and kind == 2:  # contiguousBinCounts, packed doubles
            size, i = _varint(raw, i)
            values = np.frombuffer(raw, dtype="<f8", count=size // 8, offset=i)
            i += size
        elif number == 3 and kind == 0:  # contiguousBinIndexOffset, a zigzag sint32
            n, i = _varint(raw, i)
            offset = (n >> 1) ^ -(n & 1)
        else:  # binCounts (1) or an unpacked double
            return None
    return offset, values


_EMPTY: npt.NDArray[np.float64] = np.zeros(0)


@dataclass(slots=True)
class Bins:
    """A merged latency distribution: DDSketch's positive bins (dense) and its zeros."""

    zeros: float = 0.0
    low: int = -_SPAN // 2  # the key of counts[0]
    counts: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(_SPAN))

    def add(self, raw: bytes) -> None:
        wire = _positive_bins(raw)
        if wire is not None:
            zeros, offset, values = wire
            self.zeros += zeros
            if len(values):
                self._add(offset, values)
            return
        message = DDSketchMessage()
        message.ParseFromString(raw)
        self.zeros += message.zeroCount
        store = message.positiveValues
        bins = store.contiguousBinCounts
        if bins:
            self._add(store.contiguousBinIndexOffset, np.asarray(bins, dtype=np.float64))
        for key, count in store.binCounts.items():
            self._add(key, np.array([count], dtype=np.float64))

    def _add(self, first: int, values: npt.NDArray[np.float64]) -> None:
        start = first - self.low
        end = start + len(values)
        if start < 0 or end > len(self.counts):
            low = min(self.low, first)
            high = max(self.low + len(self.counts), first + len(values))
            grown = np.zeros(high - low)
            grown[self.low - low : self.low - low + len(self.counts)] = self.counts
            self.counts, self.low = grown, low
            start, end = first - low, first - low + len(values)
        self.counts[start:end] += values

    @property
    def count(self) -> float:
        return self.zeros + float(self.counts.sum())

    def quantile(self, q: float) -> float | None:
        """DDSketch's quantile of the merged bins (its `get_quantile_value`)."""
        total = self.count
        if total == 0:
            return None
        rank = q * (total - 1)
        if rank < self.zeros:
            return 0.0
        running = np.cumsum(self.counts)
        index = int(np.searchsorted(running, rank - self.zeros, side="right"))
        index = min(index, len(self.counts) - 1)
        return float(_MAPPING.value(self.low + index))


@dataclass(slots=True)
class Sums:
    requests: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    p95_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


_COLUMNS = ("route", "model", "tenant", "feature", "count", "errors", "input_tokens",
            "output_tokens", "cost_usd", "latency_sketch")  # fmt: skip


def _off(start: datetime, end: datetime, size: timedelta) -> set[datetime]:
    """Every span of `size` from `start`'s day to `end`: as if all were marked (not read)."""
    at, out = day_floor(start), set()
    while at <= end:
        out.add(at)
        at += size
    return out


def _rows(
    conn: Connection,
    since: datetime,
    tenant: str | None,
    route: str | None,
    step: int | None = None,
) -> Subquery:
    """(at, _COLUMNS...) from `since` on: the whole unmarked days and hours up to now's
    minute from `rollups_hour` (telemetry/hourly.py; given buckets of `step` minutes, the
    day rows only when it is a multiple of a day, the hour rows only when of an hour, so
    that a row falls within one bucket), everything else (the edges, the current hour,
    marked spans and any later minute) from `rollups_minute`. The sums are those of the
    minutes."""
    end = as_utc(datetime.now(UTC)).replace(second=0, microsecond=0)
    since = as_utc(since)
    dirty = dirty_spans(conn, since, end) if since <= end else {}
    if step is not None and step % 60:
        dirty[1] = _off(since, end, HOUR)
    if step is not None and step % 1440:
        dirty[24] = _off(since, end, DAY)
    minutes, hours, days = plan(end, [since], dirty) if since <= end else ([], [], [])
    m, h = rollups.c, rollups_hour.c
    # the minutes after now's (a clock ahead) are read too, as before the hourly rows
    open_end = [(a, b) for a, b in minutes if b > end]
    closed = [(a, b) for a, b in minutes if b <= end]

    def filters(c: Any) -> list[Any]:
        out: list[Any] = []
        if tenant is not None:
            out.append(c.tenant == tenant)
        if route is not None:
            out.append(c.route == route)
        return out

    def of_minutes(rs: Ranges, last: datetime | None) -> Select[Any]:
        spans = [and_(m.minute >= a, m.minute < b) for a, b in rs]
        if last is not None:
            spans.append(m.minute >= last)
        return select(m.minute.label("at"), *(m[n] for n in _COLUMNS)).where(
            or_(false(), *spans), *filters(m)
        )

    def of_spans(n: int, rs: Ranges) -> Select[Any]:
        spans = [and_(h.hour >= a, h.hour < b) for a, b in rs]
        return select(h.hour.label("at"), *(h[c] for c in _COLUMNS)).where(
            h.hours == n, or_(false(), *spans), *filters(h)
        )

    last = open_end[0][0] if open_end else (since if since > end else end + MINUTE)
    parts = [of_minutes(closed, last)]
    if hours:
        parts.append(of_spans(1, hours))
    if days:
        parts.append(of_spans(24, days))
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


def by_route(engine: Engine, since: datetime, tenant: str | None) -> dict[str, Sums]:
    """Requests, errors, cost and p95 latency per route ("" for calls without one)."""
    out: dict[str, Sums] = {}
    bins: dict[str, Bins] = {}
    with engine.connect() as conn:
        u = _rows(conn, since, tenant, None).c
        query = select(u.route, u.count, u.errors, u.cost_usd, u.latency_sketch)
        for route, count, errors, cost, raw in conn.execute(query):
            s = out.get(route)
            if s is None:
                s = out[route] = Sums()
                bins[route] = Bins()
            s.requests += count
            s.errors += errors
            s.cost_usd += cost
            bins[route].add(raw)
    for route, merged in bins.items():
        out[route].p95_ms = merged.quantile(0.95)
    return out


def spend_by_route(engine: Engine, since: datetime, tenant: str | None) -> dict[str, float]:
    """Cost per route from `since` on: `costs_by(engine, since, "route", tenant)`'s."""
    with engine.connect() as conn:
        u = _rows(conn, since, tenant, None).c
        query = select(u.route, func.sum(u.cost_usd)).group_by(u.route)
        return {str(r): float(cost or 0.0) for r, cost in conn.execute(query)}


def by_bucket(
    engine: Engine, since: datetime, step_minutes: int, tenant: str | None, route: str | None
) -> dict[int, Sums]:
    """The same per bucket of `step_minutes` (by the bucket's start, epoch seconds)."""
    width = step_minutes * 60
    out: dict[int, Sums] = {}
    bins: dict[int, Bins] = {}
    buckets: dict[datetime, int] = {}  # a row's start -> its bucket's

    with engine.connect() as conn:
        u = _rows(conn, since, tenant, route, step_minutes).c
        query = select(u.at, u.count, u.errors, u.cost_usd, u.latency_sketch)
        for minute, count, errors, cost, raw in conn.execute(query):
            at = buckets.get(minute)
            if at is None:
                at = buckets[minute] = int(as_utc(minute).timestamp()) // width * width
            s = out.get(at)
            if s is None:
                s = out[at] = Sums()
                bins[at] = Bins()
            s.requests += count
            s.errors += errors
            s.cost_usd += cost
            bins[at].add(raw)
    for at, merged in bins.items():
        out[at].p95_ms = merged.quantile(0.95)
    return out


def series(
    sums: dict[int, Sums], start: datetime, end: datetime, step_minutes: int
) -> dict[str, list[float | None]]:
    """Per bucket from `start` to `end`, gaps filled: requests, errors, p95 latency (ms;
    None without requests) and cost (USD)."""
    width = step_minutes * 60
    at = int(start.timestamp()) // width * width
    last = int(end.timestamp())
    out: dict[str, list[float | None]] = {
        "t": [], "requests": [], "errors": [], "p95_ms": [], "cost_usd": [],
    }  # fmt: skip
    while at <= last:
        s = sums.get(at)
        out["t"].append(float(at))
        out["requests"].append(float(s.requests) if s else 0.0)
        out["errors"].append(float(s.errors) if s else 0.0)
        out["p95_ms"].append(s.p95_ms if s else None)
        out["cost_usd"].append(round(s.cost_usd, 10) if s else 0.0)
        at += width
    return out


def midnight(now: datetime) -> datetime:
    """00:00 UTC of `now`'s day: when "spend today" starts."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


COST_DIMENSIONS = ("model", "route", "feature", "tenant")


def costs_by_dimensions(
    engine: Engine, since: datetime, tenant: str | None
) -> dict[str, dict[str, CostRow]]:
    """What `telemetry.costs.costs_by` gives for each of COST_DIMENSIONS and "day" (each
    UTC date's, by its ISO date), from one scan of the minute, hour and day rows (grouped
    by the four and the row's start, then folded here); production traffic only, as
    `costs_by` (eval runs' features left out)."""
    out: dict[str, dict[str, CostRow]] = {d: {} for d in (*COST_DIMENSIONS, "day")}
    with engine.connect() as conn:
        u = _rows(conn, since, tenant, None, 1440).c
        query = select(
            u.at, *(u[d] for d in COST_DIMENSIONS), func.sum(u.count), func.sum(u.errors),
            func.sum(u.input_tokens), func.sum(u.output_tokens), func.sum(u.cost_usd),
        ).where(production(u.feature)).group_by(u.at, *(u[d] for d in COST_DIMENSIONS))  # fmt: skip
        for at, *values, count, errors, tokens_in, tokens_out, cost in conn.execute(query):
            row = CostRow(int(count or 0), int(errors or 0), int(tokens_in or 0),
                          int(tokens_out or 0), float(cost or 0.0))  # fmt: skip
            for d, value in zip(COST_DIMENSIONS, values, strict=True):
                out[d].setdefault(str(value), CostRow()).add(row)
            out["day"].setdefault(as_utc(at).date().isoformat(), CostRow()).add(row)
    return out


def daily_spend_by_dimensions(
    engine: Engine, since: datetime, tenant: str | None
) -> dict[str, dict[str, dict[date, float]]]:
    """What `policy.forecast_data.daily_spend` gives for each of COST_DIMENSIONS (value ->
    UTC date -> USD, every request's spend, as budgets count it), from one scan of the
    minute, hour and day rows."""
    out: dict[str, dict[str, dict[date, float]]] = {d: {} for d in COST_DIMENSIONS}
    with engine.connect() as conn:
        u = _rows(conn, since, tenant, None, 1440).c
        query = select(u.at, *(u[d] for d in COST_DIMENSIONS), func.sum(u.cost_usd)).group_by(
            u.at, *(u[d] for d in COST_DIMENSIONS)
        )
        for at, *values, cost in conn.execute(query):
            day = as_utc(at).date()
            for d, value in zip(COST_DIMENSIONS, values, strict=True):
                if value == "":
                    continue
                days = out[d].setdefault(str(value), {})
                days[day] = days.get(day, 0.0) + float(cost or 0.0)
    return out
