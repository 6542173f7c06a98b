"""An SLO's alert windows read from the hourly rollups where they can be, the minute
rollups elsewhere (telemetry/hourly.py): each window is cut at its own first minute, the
whole hours between two cuts that are compacted and unmarked come from `rollups_hour`,
everything else (the window edges, the current hour, marked hours) from
`rollups_minute`, in one query. The sums are those of the minutes: an hour's row is the
sum of its minutes' rows, and a row counts in a window when its start is within it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from ddsketch.pb.ddsketch_pb2 import DDSketch as SketchMessage
from ddsketch.pb.ddsketch_pb2 import IndexMapping
from ddsketch.pb.proto import KeyMappingProto
from sqlalchemy import (
    ColumnElement,
    Connection,
    Subquery,
    Table,
    and_,
    case,
    false,
    func,
    or_,
    select,
    union_all,
)

from trimtab.slo.burn import Counts
from trimtab.slo.sli import client_error, within
from trimtab.slo.spec import Selector, Sli
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups, rollups_hour
from trimtab.telemetry.hourly import HOUR, dirty_hours, hour_floor
from trimtab.telemetry.production import unless_named
from trimtab.telemetry.sketch import from_bytes

NONE_INTERPOLATION: int = IndexMapping.NONE  # type: ignore[attr-defined]

MINUTE = timedelta(minutes=1)
Ranges = list[tuple[datetime, datetime]]  # half-open [start, end)
MAX_PARTS = 64


def cutoffs(end: datetime, spans: Iterable[int]) -> dict[int, datetime]:
    """Each window's first minute; the windows end with `end`'s minute, included."""
    return {w: end - timedelta(minutes=w - 1) for w in spans}


def plan(end: datetime, starts: Iterable[datetime], dirty: set[datetime]) -> tuple[Ranges, Ranges]:
    """(minute ranges, hour ranges) covering the minutes from the earliest start to `end`
    (included): the whole unmarked hours between two consecutive starts, and the rest."""
    bounds = [*sorted(set(starts)), end + MINUTE]
    hours: list[datetime] = []
    for a, b in pairwise(bounds):
        h = hour_floor(a)
        if h < a:
            h += HOUR
        while h + HOUR <= b:
            if h not in dirty:
                hours.append(h)
            h += HOUR
    hour_ranges: Ranges = []
    for h in hours:
        if hour_ranges and hour_ranges[-1][1] == h:
            hour_ranges[-1] = (hour_ranges[-1][0], h + HOUR)
        else:
            hour_ranges.append((h, h + HOUR))
    minute_ranges: Ranges = []
    at = bounds[0]
    for a, b in [*hour_ranges, (bounds[-1], bounds[-1])]:
        if at < a:
            minute_ranges.append((at, a))
        at = b
    return minute_ranges, hour_ranges


def _selected(table: Table, selector: Selector) -> list[ColumnElement[bool]]:
    c = table.c
    out: list[ColumnElement[bool]] = []
    for name in ("route", "model", "tenant", "feature", "version"):
        value = getattr(selector, name)
        if value is not None:
            out.append(c[name] == value)
    return out + unless_named(c.feature, selector.feature)  # eval runs' calls move no SLO


def _scattered(
    selector: Selector, minute_ranges: Ranges, hour_ranges: Ranges, value: str
) -> Subquery:
    """`rows` as two SELECTs, each over its ranges OR-ed (SQLite allows 500 SELECTs in a
    compound one): a scan of the window's minutes, as before the hourly rollups."""
    m, h = rollups.c, rollups_hour.c
    return union_all(
        select(m.minute.label("at"), m.status_code, m[value].label("value")).where(
            _within(m.minute, minute_ranges), *_selected(rollups, selector)
        ),
        select(h.hour.label("at"), h.status_code, h[value].label("value")).where(
            _within(h.hour, hour_ranges), *_selected(rollups_hour, selector)
        ),
    ).subquery()


def _within(column: Any, ranges: Ranges) -> ColumnElement[bool]:
    return or_(false(), *(and_(column >= a, column < b) for a, b in ranges))


def rows(
    conn: Connection, selector: Selector, end: datetime, starts: Sequence[datetime], value: str
) -> Subquery:
    """(at, status_code, value) of the selector's rows from the earliest start to `end`:
    minute rows and unmarked hourly rows, `value` a column both tables have."""
    first = min(starts)
    minute_ranges, hour_ranges = plan(end, starts, dirty_hours(conn, first, end))
    m, h = rollups.c, rollups_hour.c
    if len(minute_ranges) + len(hour_ranges) > MAX_PARTS:  # marked hours all over
        return _scattered(selector, minute_ranges, hour_ranges, value)
    # one SELECT per range, so that each is a range scan of its table's time index
    parts = [
        select(m.minute.label("at"), m.status_code, m[value].label("value")).where(
            m.minute >= a, m.minute < b, *_selected(rollups, selector)
        )
        for a, b in minute_ranges
    ] + [
        select(h.hour.label("at"), h.status_code, h[value].label("value")).where(
            h.hour >= a, h.hour < b, *_selected(rollups_hour, selector)
        )
        for a, b in hour_ranges
    ]
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


def status_windows(
    conn: Connection, selector: Selector, end: datetime, spans: Sequence[int]
) -> dict[int, dict[int, int]]:
    """Requests per status code over each window, summed by the database."""
    cuts = cutoffs(end, spans)
    u = rows(conn, selector, end, list(cuts.values()), "count")
    columns = [func.sum(case((u.c.at >= cuts[w], u.c.value), else_=0)) for w in spans]
    out: dict[int, dict[int, int]] = {w: {} for w in spans}
    for status, *sums in conn.execute(select(u.c.status_code, *columns).group_by(u.c.status_code)):
        for w, n in zip(spans, sums, strict=True):
            if n:
                out[w][int(status)] = int(n)
    return out


class _Thresholds:
    """`sli.within` and a sketch's count straight from the stored protobuf message, for
    several thresholds at once: the same sums of the same bins, without building the
    DDSketch (a tenth of the time; the hourly rows' sketches are the latency reads' cost).
    A message in another mapping or with sparse bins is decoded as before."""

    def __init__(self, thresholds: Sequence[float]) -> None:
        self.thresholds = thresholds
        self._keys: dict[tuple[float, float, int], list[int | None]] = {}

    def _lasts(self, mapping: Any) -> list[int | None] | None:
        if mapping.interpolation != NONE_INTERPOLATION:
            return None
        ident = (mapping.gamma, mapping.indexOffset, mapping.interpolation)
        got = self._keys.get(ident)
        if got is None:
            key_mapping = KeyMappingProto.from_proto(mapping)  # type: ignore[no-untyped-call]
            got = []
            for t in self.thresholds:
                if t < key_mapping.min_possible:
                    got.append(None)  # only the zero bin is within
                    continue
                last = key_mapping.key(t)
                got.append(last - 1 if key_mapping.value(last) > t else last)
            self._keys[ident] = got
        return got

    def counts(self, raw: bytes) -> tuple[int, list[int]]:
        """(the sketch's count, how many of its values each threshold has within)."""
        message = SketchMessage()
        message.ParseFromString(raw)
        pos, neg = message.positiveValues, message.negativeValues
        lasts = self._lasts(message.mapping)
        if lasts is None or pos.binCounts or neg.binCounts:
            sketch = from_bytes(raw)
            return int(sketch.count), [within(sketch, t) for t in self.thresholds]
        bins = list(pos.contiguousBinCounts)
        zero, negative, offset = (
            message.zeroCount,
            sum(neg.contiguousBinCounts),
            pos.contiguousBinIndexOffset,
        )
        out = []
        for last in lasts:
            if last is None:
                out.append(int(zero))
            else:
                below = sum(bins[: last - offset + 1]) if last >= offset else 0.0
                out.append(int(zero) + int(negative) + int(below))
        return int(zero + sum(bins) + negative), out


def latency_windows(
    conn: Connection, selector: Selector, slis: Sequence[Sli], end: datetime, spans: Sequence[int]
) -> list[dict[int, Counts]]:
    """Each latency SLI's counts over each window, each row's sketch decoded once."""
    cuts = sorted(cutoffs(end, spans).items())
    column = "latency_sketch" if slis[0].of == "total" else "ttft_sketch"
    u = rows(conn, selector, end, [c for _, c in cuts], column)
    sums = [{w: [0, 0] for w in spans} for _ in slis]
    reader = _Thresholds([float(sli.threshold_ms or 0) for sli in slis])
    for at_raw, status, raw in conn.execute(select(u.c.at, u.c.status_code, u.c.value)):
        if client_error(status):
            continue  # in neither count (sli.latency_counts)
        at = as_utc(at_raw)
        valid, goods = reader.counts(raw)
        if not valid:
            continue
        for good, out in zip(goods, sums, strict=True):
            for w, cutoff in cuts:
                if at >= cutoff:
                    out[w][0] += good if status < 400 else 0
                    out[w][1] += valid
    return [{w: Counts(good, valid) for w, (good, valid) in out.items()} for out in sums]
