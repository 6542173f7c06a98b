"""An SLO's alert windows read from the hourly and daily rollups where they can be, the
minute rollups elsewhere (telemetry/hourly.py): each window is cut at its own first
minute; between two cuts the whole days that are compacted and unmarked come from
`rollups_hour`'s day rows, then the whole such hours of what is left from its hour rows,
everything else (the window edges, the current hour, marked spans) from
`rollups_minute`, in one query. The sums are those of the minutes: a span's row is the
sum of its minutes' rows, and a row counts in a window when its start is within it.
What each SLI kind reads of the rows is slo/kinds.py's."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Subquery,
    Table,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    union_all,
)

from trimtab.slo.burn import Counts
from trimtab.slo.sketch_counts import Tally
from trimtab.slo.sketch_counts import Thresholds as Thresholds  # kinds.py reads series with it
from trimtab.slo.spec import Selector
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups, rollups_hour
from trimtab.telemetry.hourly import DAY, HOUR, dirty_spans
from trimtab.telemetry.production import unless_named

MINUTE = timedelta(minutes=1)
Ranges = list[tuple[datetime, datetime]]  # half-open [start, end)
MAX_PARTS = 64


def cutoffs(end: datetime, spans: Iterable[int]) -> dict[int, datetime]:
    """Each window's first minute; the windows end with `end`'s minute, included."""
    return {w: end - timedelta(minutes=w - 1) for w in spans}


def _cover(a: datetime, b: datetime, size: timedelta, dirty: set[datetime]) -> Ranges:
    """The whole spans of `size` (aligned on UTC midnight) within [a, b), unmarked, merged."""
    midnight = as_utc(a).replace(hour=0, minute=0, second=0, microsecond=0)
    at = midnight + ((a - midnight + size - MINUTE) // size) * size  # the first at or after a
    out: Ranges = []
    while at + size <= b:
        if at not in dirty:
            if out and out[-1][1] == at:
                out[-1] = (out[-1][0], at + size)
            else:
                out.append((at, at + size))
        at += size
    return out


def _gaps(a: datetime, b: datetime, covered: Ranges) -> Ranges:
    out: Ranges = []
    for x, y in [*covered, (b, b)]:
        if a < x:
            out.append((a, x))
        a = y
    return out


def plan(
    end: datetime, starts: Iterable[datetime], dirty: Mapping[int, set[datetime]]
) -> tuple[Ranges, Ranges, Ranges]:
    """(minute, hour, day ranges) covering the minutes from the earliest start to `end`
    (included): between two consecutive starts the whole unmarked days, then the whole
    unmarked hours of what is left, then its minutes."""
    bounds = [*sorted(set(starts)), end + MINUTE]
    minutes: Ranges = []
    hours: Ranges = []
    days: Ranges = []
    for a, b in pairwise(bounds):
        got = _cover(a, b, DAY, dirty.get(24, set()))
        days += got
        for x, y in _gaps(a, b, got):
            within = _cover(x, y, HOUR, dirty.get(1, set()))
            hours += within
            minutes += _gaps(x, y, within)
    return _merged(minutes), _merged(hours), _merged(days)


def _merged(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for a, b in sorted(ranges):
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


# an hour row read whole for its most-covered piece, and the minute ranges of the hour's
# other pieces, which count in their own pieces and are taken off that one
Whole = tuple[datetime, int, Ranges]


def whole_hours(
    end: datetime, cuts: Sequence[datetime], dirty: Mapping[int, set[datetime]], minutes: Ranges
) -> tuple[Ranges, list[Whole]]:
    """Of `minutes` (plan's), the ranges still read minute by minute, and the closed,
    unmarked hours cheaper read as their hour row less the minutes outside its largest
    piece (a row's piece: how many of the sorted `cuts` are at or before it). An hour row
    is the sum of its minutes', so its count less theirs is the other minutes'."""
    inside: dict[datetime, Ranges] = {}
    for a, b in minutes:
        at = a
        while at < b:
            hour = at.replace(minute=0, second=0, microsecond=0)
            upto = min(b, hour + HOUR)
            inside.setdefault(hour, []).append((at, upto))
            at = upto
    left: Ranges = []
    wholes: list[Whole] = []
    for hour, ranges in inside.items():
        read = sum((y - x) // MINUTE for x, y in ranges)
        if hour in dirty.get(1, set()) or hour + HOUR > end + MINUTE:
            left += ranges
            continue
        pieces = [bisect_right(cuts, hour + k * MINUTE) for k in range(60)]
        most = max(set(pieces), key=lambda p: (pieces.count(p), -p))
        if 1 + 60 - pieces.count(most) >= read:
            left += ranges
            continue
        moved: Ranges = []
        for k, p in enumerate(pieces):
            if p != most:
                moved.append((hour + k * MINUTE, hour + (k + 1) * MINUTE))
        wholes.append((hour, most, _merged(moved)))
    return _merged(left), wholes


def _selected(table: Table, selector: Selector) -> list[ColumnElement[bool]]:
    c = table.c
    out: list[ColumnElement[bool]] = []
    for name in ("route", "model", "tenant", "feature", "version"):
        value = getattr(selector, name)
        if value is not None:
            out.append(c[name] == value)
    return out + unless_named(c.feature, selector.feature)  # eval runs' calls move no SLO


def _parts(
    selector: Selector,
    ranges: tuple[Ranges, Ranges, Ranges],
    columns: Sequence[str],
    scattered: bool,
) -> list[Select[Any]]:
    """One SELECT per range, so that each is a range scan of its table's time index; or,
    `scattered`, one per table and span, over its ranges OR-ed (SQLite allows 500 SELECTs
    in a compound one)."""
    m, h = rollups.c, rollups_hour.c
    minutes, hours, days = ranges
    # built once and shared by every part (the clauses are immutable)
    of_m = (m.minute.label("at"), m.status_code, *(m[c] for c in columns))
    of_h = (h.hour.label("at"), h.status_code, *(h[c] for c in columns))
    where_m, where_h = _selected(rollups, selector), _selected(rollups_hour, selector)

    def of_minutes(rs: Ranges) -> Select[Any]:
        return select(*of_m).where(_within(m.minute, rs), *where_m)

    def of_spans(n: int, rs: Ranges) -> Select[Any]:
        return select(*of_h).where(h.hours == n, _within(h.hour, rs), *where_h)

    if scattered:
        return [of_minutes(minutes), of_spans(1, hours), of_spans(24, days)]
    return (
        [of_minutes([r]) for r in minutes]
        + [of_spans(1, [r]) for r in hours]
        + [of_spans(24, [r]) for r in days]
    )


def _within(column: Any, ranges: Ranges) -> ColumnElement[bool]:
    if len(ranges) == 1:
        ((a, b),) = ranges
        return and_(column >= a, column < b)
    return or_(false(), *(and_(column >= a, column < b) for a, b in ranges))


def rows(
    conn: Connection,
    selector: Selector,
    end: datetime,
    starts: Sequence[datetime],
    columns: tuple[str, ...],
) -> Subquery:
    """(at, status_code, *columns) of the selector's rows from the earliest start to
    `end`: minute rows and unmarked hour and day rows, `columns` ones both tables have."""
    first = min(starts)
    ranges = plan(end, starts, dirty_spans(conn, first, end))
    parts = _parts(selector, ranges, columns, sum(map(len, ranges)) > MAX_PARTS)
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


def minute_rows(
    selector: Selector, start: datetime, end: datetime, columns: tuple[str, ...]
) -> Subquery:
    """(at, status_code, *columns) of the selector's minute rows from `start` to `end`
    (both included): the per-minute series' source."""
    m = rollups.c
    return (
        select(m.minute.label("at"), m.status_code, *(m[c] for c in columns))
        .where(m.minute >= start, m.minute <= end, *_selected(rollups, selector))
        .subquery()
    )


Sums = tuple[int, ...]  # a row's (or status code's) sums of the columns read


def sums_windows(
    conn: Connection,
    selector: Selector,
    end: datetime,
    spans: Sequence[int],
    columns: tuple[str, ...],
    known: str | None = None,
) -> dict[int, dict[int, Sums]]:
    """The sums of `columns` per status code over each window, summed by the database in
    one pass (a CASE per window and column); with `known`, of the rows whose `known`
    column is not NULL only (a column added later: the rows before it count in neither)."""
    cuts = cutoffs(end, spans)
    read = columns if known is None else tuple(dict.fromkeys((*columns, known)))
    u = rows(conn, selector, end, list(cuts.values()), read)
    sums = [
        func.sum(
            case(
                (
                    u.c.at >= cuts[w]
                    if known is None
                    else and_(u.c.at >= cuts[w], u.c[known].is_not(None)),
                    u.c[c],
                ),
                else_=0,
            )
        )
        for w in spans
        for c in columns
    ]
    n = len(columns)
    out: dict[int, dict[int, Sums]] = {w: {} for w in spans}
    for status, *got in conn.execute(select(u.c.status_code, *sums).group_by(u.c.status_code)):
        for i, w in enumerate(spans):
            values = tuple(int(v or 0) for v in got[i * n : (i + 1) * n])
            if any(values):
                out[w][int(status)] = values
    return out


@contextmanager
def binary_results(conn: Connection) -> Iterator[None]:
    """The statements executed within return their results in PostgreSQL's binary format:
    psycopg asks for text by default, in which a bytea (a sketch) travels as hex, twice
    its bytes, encoded by the server and decoded here. The driver's cursor factory is the
    hook (SQLAlchemy makes each statement's cursor with it); SQLite: nothing to do."""
    driver = conn.connection.dbapi_connection
    if not isinstance(driver, psycopg.Connection):
        yield
        return
    factory = driver.cursor_factory

    def binary(*args: Any, **kwargs: Any) -> Any:
        cursor = factory(*args, **kwargs)
        cursor.format = pq.Format.BINARY
        return cursor

    driver.cursor_factory = binary
    try:
        yield
    finally:
        driver.cursor_factory = factory


# a sketch row's counts towards an SLI: (status, the values in the sketch, those within
# the SLI's threshold) -> Counts. Additive, as every count of the rollups is (a span's
# row is the sum of its minutes'): rows of one status may be counted together, with
# their values and those within summed
SketchCounts = Callable[[int, int, int], Counts]


def _pieces_parts(
    selector: Selector,
    ranges: tuple[Ranges, Ranges, Ranges],
    wholes: Sequence[Whole],
    columns: Sequence[str],
    cuts: Sequence[datetime],
) -> list[Select[Any]]:
    """(piece, minus, status_code, *columns) of the selector's rows in `ranges` (as
    `_parts` reads them) and of `wholes`' hour rows and moved minutes: a row's piece is
    how many `cuts` are at or before it (a whole hour's, its largest piece); `minus` the
    piece a moved minute is taken off, else -1."""
    m, h = rollups.c, rollups_hour.c
    minutes, hours, days = ranges
    none = literal(-1).label("minus")

    def piece(column: Any) -> Any:
        whens = ((column >= c, k + 1) for k, c in reversed(list(enumerate(cuts))))
        return case(*whens, else_=0).label("piece")

    of_m = (m.status_code, *(m[c] for c in columns))
    of_h = (h.status_code, *(h[c] for c in columns))
    where_m, where_h = _selected(rollups, selector), _selected(rollups_hour, selector)
    piece_m, piece_h = piece(m.minute), piece(h.hour)

    def of_minutes(rs: Ranges, minus: Any = none) -> Select[Any]:
        return select(piece_m, minus, *of_m).where(_within(m.minute, rs), *where_m)

    def of_spans(n: int, rs: Ranges) -> Select[Any]:
        return select(piece_h, none, *of_h).where(h.hours == n, _within(h.hour, rs), *where_h)

    if sum(map(len, ranges)) > MAX_PARTS:  # and no wholes: see sketch_windows
        return [of_minutes(minutes), of_spans(1, hours), of_spans(24, days)]
    parts = (
        [of_minutes([r]) for r in minutes]
        + [of_spans(1, [r]) for r in hours]
        + [of_spans(24, [r]) for r in days]
    )
    for hour, most, moved in wholes:
        whole = literal(most).label("piece")
        parts.append(select(whole, none, *of_h).where(h.hours == 1, h.hour == hour, *where_h))
        parts.append(of_minutes(moved, literal(most).label("minus")))
    return parts


def sketch_windows(
    conn: Connection,
    selector: Selector,
    reads: Sequence[tuple[str, Sequence[float], SketchCounts]],
    end: datetime,
    spans: Sequence[int],
    sums: tuple[str, ...] = (),
) -> tuple[list[list[dict[int, Counts]]], dict[int, dict[int, Sums]]]:
    """For each (sketch column, thresholds, classify) of `reads`, each threshold's counts
    over each window from the sketches in that column, classified by `classify`; and the
    sums of the `sums` columns per status code over each window (as `sums_windows` gives
    them): all from one read of the selector's rows, the sketches of each column tallied
    in one pass (sketch_counts.Tally) per piece and status, which `classify` counts.
    Hours the windows' cuts split are read as their hour row less the minutes outside its
    largest piece (`whole_hours`) when their sketches are whole numbers (the tally exact,
    as for requests' sketches); else, and with too many ranges, minute by minute."""
    # the windows from the longest (earliest cut) on; a row is in the windows whose cut
    # is at or before it (its piece), the sums add the pieces
    cuts = sorted(cutoffs(end, spans).items(), key=lambda wc: wc[1])
    at = [c for _, c in cuts]
    ranges = plan(end, at, dirty := dirty_spans(conn, at[0], end))
    minutes, wholes = whole_hours(end, at, dirty, ranges[0])
    parts = len(minutes) + len(ranges[1]) + len(ranges[2]) + 2 * len(wholes)
    if wholes and parts <= MAX_PARTS:
        got = _tallied(conn, selector, reads, (minutes, ranges[1], ranges[2]), wholes, at, sums)
        if got is not None:
            return _windows(reads, cuts, spans, sums, *got)
    got = _tallied(conn, selector, reads, ranges, [], at, sums)
    assert got is not None  # without wholes, nothing is taken off
    return _windows(reads, cuts, spans, sums, *got)


Groups = dict[tuple[int, int, int], int]  # (piece, status, +1 or -1) -> its number


def _tallied(
    conn: Connection,
    selector: Selector,
    reads: Sequence[tuple[str, Sequence[float], SketchCounts]],
    ranges: tuple[Ranges, Ranges, Ranges],
    wholes: Sequence[Whole],
    cuts: Sequence[datetime],
    sums: tuple[str, ...],
) -> tuple[Groups, list[dict[int, tuple[int, list[int]]]], list[list[int]]] | None:
    """The rows' groups, each read's tally per group and each group's sums; None when a
    moved minute's or whole hour's sketch is not whole numbers (taking off is exact only
    then)."""
    columns = tuple(dict.fromkeys(column for column, _, _ in reads))
    query = union_all(
        *_pieces_parts(selector, ranges, wholes, tuple(dict.fromkeys(columns + sums)), cuts)
    )
    index = [columns.index(column) for column, _, _ in reads]
    tallies = [Tally(Thresholds(thresholds)) for _, thresholds, _ in reads]
    groups: Groups = {}
    summed: list[list[int]] = []  # per group, the sums
    n = len(columns)
    with binary_results(conn):
        found = conn.execute(query).all()
    for k, minus, status, *values in found:
        for key in ((k, status, 1), (minus, status, -1)) if minus >= 0 else ((k, status, 1),):
            g = groups.get(key)
            if g is None:
                g = groups[key] = len(groups)
                summed.append([0] * len(sums))
            for tally, i in zip(tallies, index, strict=True):
                raw = values[i]
                if raw is not None:  # a row from before its column existed: in neither count
                    tally.add(g, raw)
            if sums:
                acc = summed[g]
                for c, v in enumerate(values[n:]):
                    acc[c] += int(v or 0)
    totals = [tally.totals() for tally in tallies]
    if wholes and not all(tally.whole for tally in tallies):
        return None
    return groups, totals, summed


def _windows(
    reads: Sequence[tuple[str, Sequence[float], SketchCounts]],
    cuts: Sequence[tuple[int, datetime]],
    spans: Sequence[int],
    sums: tuple[str, ...],
    groups: Groups,
    totals: list[dict[int, tuple[int, list[int]]]],
    summed: list[list[int]],
) -> tuple[list[list[dict[int, Counts]]], dict[int, dict[int, Sums]]]:
    pieces = len(cuts) + 1
    out: list[list[dict[int, Counts]]] = []
    for (_, thresholds, classify), tallied in zip(reads, totals, strict=True):
        goods = [[0] * pieces for _ in thresholds]
        valids = [[0] * pieces for _ in thresholds]
        for (k, status, sign), g in groups.items():
            if g not in tallied:
                continue
            count, below = tallied[g]
            for j, b in enumerate(below):
                got = classify(status, count, b)  # additive: a group's rows together
                goods[j][k] += sign * got.good
                valids[j][k] += sign * got.valid
        result: list[dict[int, Counts]] = [{} for _ in thresholds]
        for i, (w, _) in enumerate(cuts):  # window i: the pieces after i
            for counts, piece_goods, piece_valids in zip(result, goods, valids, strict=True):
                counts[w] = Counts(sum(piece_goods[i + 1 :]), sum(piece_valids[i + 1 :]))
        out.append(result)
    by_status: dict[int, dict[int, Sums]] = {w: {} for w in spans}
    if sums:
        per_status: dict[int, list[list[int]]] = {}  # status -> per piece, the sums
        for (k, status, sign), g in groups.items():
            per_piece = per_status.setdefault(int(status), [[0] * len(sums) for _ in range(pieces)])
            for c, v in enumerate(summed[g]):
                per_piece[k][c] += sign * v
        for status, per_piece in per_status.items():
            for i, (w, _) in enumerate(cuts):
                total = tuple(sum(p[c] for p in per_piece[i + 1 :]) for c in range(len(sums)))
                if any(total):
                    by_status[w][status] = total
    return out, by_status
