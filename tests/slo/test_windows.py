"""The alert windows read from the hourly rollups (slo/windows.py, telemetry/hourly.py):
the same statuses as the minute rollups give, to the request, on a seeded month."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from psycopg import pq
from sqlalchemy import Engine, LargeBinary, event, func, literal, select

from tests.slo.support import NOW, guardrails, request
from trimtab.audit.log import Actor
from trimtab.rollouts.feedback import FeedbackStore
from trimtab.slo.burn import Counts
from trimtab.slo.evaluator import read_statuses
from trimtab.slo.rollups import read_series
from trimtab.slo.sli import answered_within, cost_counts, within
from trimtab.slo.spec import Selector, SloDefinition, load_slos
from trimtab.slo.status import SloStatus, evaluate, read_status
from trimtab.slo.windows import (
    SketchCounts,
    binary_results,
    cutoffs,
    plan,
    rows,
    sketch_windows,
    sums_windows,
    whole_hours,
)
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups_hour, rollups_hour_dirty
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.retention import Tenants, delete_rollups
from trimtab.telemetry.sketch import from_bytes, new_sketch, to_bytes
from trimtab.telemetry.store import TelemetryStore

H = timedelta(hours=1)
BY = Actor("key_app", "app@acme", "acme")
END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

SLOS = load_slos(
    """
slos:
  avail: {route: support, sli: {kind: availability}, objective: 0.99}
  avail-7d: {route: support, sli: {kind: availability}, objective: 0.995, window: 7d}
  acme: {route: support, tenant: acme, sli: {kind: availability}, objective: 0.99}
  timeouts: {model: gpt-mock, sli: {kind: error_rate, class: timeout}, objective: 0.999}
  server: {route: support, sli: {kind: error_rate, class: server}, objective: 0.99}
  limited: {route: support, sli: {kind: error_rate, class: rate_limited}, objective: 0.99}
  fast: {route: support, sli: {kind: latency, threshold_ms: 1000}, objective: 0.9}
  slow: {route: support, sli: {kind: latency, threshold_ms: 2500}, objective: 0.95}
  first-token: {route: support, sli: {kind: latency, threshold_ms: 300, of: ttft}, objective: 0.9}
  other: {route: other, sli: {kind: availability}, objective: 0.9}
  quality: {route: support, sli: {kind: negative_feedback}, objective: 0.95}
  acme-quality: {route: support, tenant: acme, sli: {kind: negative_feedback}, objective: 0.9}
  cheap: {route: support, sli: {kind: cost, ceiling_usd: 0.003}, objective: 0.9}
  cheaper: {route: support, sli: {kind: cost, ceiling_usd: 0.001}, objective: 0.5}
  acme-cheap: {route: support, tenant: acme, sli: {kind: cost, ceiling_usd: 0.002}, objective: 0.9}
  guarded: {route: support, sli: {kind: guardrail}, objective: 0.95}
"""
)
STATUSES = (200,) * 20 + (502, 503, 504, 429, 499, 400)


def _month(engine: Engine, seed: int = 14) -> None:
    """A month of requests through the real writer: one every ~17 minutes over 30 days,
    one every ~20 s over the last two hours, mixed statuses, tenants, routes, latencies,
    streams and an eval run's calls (which no SLO counts)."""
    rng = random.Random(seed)
    prices = random.Random(seed + 1)  # its own stream: the other draws stay as they were
    checks = random.Random(seed + 2)
    t, end = NOW.timestamp() - 30 * 86400 - 3600, NOW.timestamp()
    records = []
    n = 0
    while t < end:
        n += 1
        streamed = rng.random() < 0.3
        records.append(
            request(
                n,
                t,
                status_code=rng.choice(STATUSES),
                tenant=rng.choice(("acme", "acme", "globex")),
                route=rng.choice(("support",) * 5 + ("other",)),
                duration_ms=rng.uniform(50, 4000),
                streamed=streamed,
                ttft_ms=rng.uniform(20, 900) if streamed else None,
                feature="eval:nightly" if rng.random() < 0.05 else None,
                cost_usd=prices.choice((None, 0.0, prices.uniform(0, 0.004))),
                attributes=guardrails(*(("input.pii",) if checks.random() < 0.08 else ())),
            )
        )
        t += rng.uniform(10, 30) if end - t < 7200 else rng.uniform(600, 1400)
    store = TelemetryStore(engine)
    for i in range(0, len(records), 2000):
        store.write(records[i : i + 2000])
    _feedback(engine, rng, [r.id for r in records if rng.random() < 0.12])


def _feedback(engine: Engine, rng: random.Random, ids: list[str]) -> None:
    """Ratings on `ids`, some twice; about half negative (a thumbs down or an escalation)."""
    store = FeedbackStore(engine)
    for rid in ids:
        for _ in range(rng.choice((1, 1, 2))):
            score = rng.choice((0.0, 0.2, 0.5, 1.0))
            store.add(rid, None, score, None, rng.random() < 0.1, BY)


def _slow(engine: Engine, d: SloDefinition) -> SloStatus:
    """The status from the minute rollups alone (`read_series`, one row per minute)."""
    return evaluate(d, read_series(engine, d, NOW, d.window_minutes), NOW)


def _all_the_same(engine: Engine) -> None:
    expected = [_slow(engine, d) for d in SLOS]
    assert read_statuses(engine, SLOS, NOW) == expected
    assert [read_status(engine, d, NOW) for d in SLOS] == expected
    assert expected[0].counts.valid > 1000 and expected[0].counts.bad > 0
    quality = expected[-6].counts  # negative feedback on about 6 % of the answers
    assert 0.02 * quality.valid < quality.bad < 0.12 * quality.valid
    cheap = expected[-4].counts  # a third over $0.001, an eighth over $0.003
    assert 0.05 * cheap.valid < cheap.bad < 0.2 * cheap.valid
    guarded = expected[-1].counts  # a guardrail fired on 8 %
    assert 0.03 * guarded.valid < guarded.bad < 0.15 * guarded.valid


def test_the_hourly_reads_give_the_minutes_statuses_on_a_seeded_month(engine: Engine) -> None:
    _month(engine)
    _all_the_same(engine)  # nothing compacted yet: every hour marked, read from minutes
    assert compact(engine, NOW, limit=10_000) == 721 + 30  # 11-01 11:00 .. 12-01 11:00
    with engine.connect() as conn:
        assert (conn.scalar(select(func.count()).select_from(rollups_hour)) or 0) > 751
        left = conn.execute(select(rollups_hour_dirty.c.hour, rollups_hour_dirty.c.hours)).all()
    # the current hour's and day's: their minutes are still being written
    assert {(as_utc(h), n) for h, n in left} == {(END, 1), (END.replace(hour=0), 24)}
    _all_the_same(engine)

    # a late write into a compacted hour (a replayed spill) marks it: read from minutes
    late = (NOW - timedelta(days=2)).timestamp()
    TelemetryStore(engine).write([request(10**6 + i, late, status_code=503) for i in range(5)])
    _all_the_same(engine)
    assert compact(engine, NOW) == 2  # the hour, then its day
    _all_the_same(engine)

    # late feedback on compacted hours' requests marks them as a write does
    _feedback(engine, random.Random(5), [f"req_{n:08d}" for n in range(100, 160)])
    _all_the_same(engine)
    compact(engine, NOW, limit=10_000)
    _all_the_same(engine)

    # late writes into 80 hours apart, every other one: more ranges than one SELECT each
    TelemetryStore(engine).write(
        [request(2 * 10**6 + i, late - 7200 * i, status_code=504) for i in range(80)]
    )
    _all_the_same(engine)
    compact(engine, NOW, limit=10_000)

    # retention deleting one tenant's old minutes marks their hours too
    while delete_rollups(engine, Tenants(only="globex"), NOW - timedelta(days=20), 500):
        pass
    _all_the_same(engine)
    compact(engine, NOW, limit=10_000)
    _all_the_same(engine)


def test_a_compacted_month_is_read_from_the_hourly_rows(sqlite_engine: Engine) -> None:
    _month(sqlite_engine)
    compact(sqlite_engine, NOW, limit=10_000)
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)

    event.listen(sqlite_engine, "before_cursor_execute", seen)
    try:
        read_statuses(sqlite_engine, [SLOS[0], SLOS[-1]], NOW)  # availability, guardrail
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", seen)
    read = [s for s in statements if "rollups_minute" in s]
    assert len(read) == 1 and "rollups_hour" in read[0]


CLEAN: dict[int, set[datetime]] = {1: set(), 24: set()}


def test_plan_takes_whole_unmarked_days_then_hours_between_the_windows_cuts() -> None:
    end = END + timedelta(minutes=17)  # 12-01 12:17, included
    starts = [end - timedelta(minutes=w - 1) for w in (5, 60, 360, 4320)]
    minutes, hours, days = plan(end, starts, CLEAN)
    # 3 d from 11-28 12:18: hours 13:00-24:00, the days 11-29 and 11-30, hours 12-01
    # 00:00-06:00 (the 6 h cut is 06:18), 07:00-11:00 (the 1 h cut 11:18), minutes elsewhere
    assert days == [(datetime(2026, 11, 29, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))]
    assert hours == [
        (datetime(2026, 11, 28, 13, tzinfo=UTC), datetime(2026, 11, 29, tzinfo=UTC)),
        (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 1, 6, tzinfo=UTC)),
        (datetime(2026, 12, 1, 7, tzinfo=UTC), datetime(2026, 12, 1, 11, tzinfo=UTC)),
    ]
    assert minutes == [
        (datetime(2026, 11, 28, 12, 18, tzinfo=UTC), datetime(2026, 11, 28, 13, tzinfo=UTC)),
        (datetime(2026, 12, 1, 6, tzinfo=UTC), datetime(2026, 12, 1, 7, tzinfo=UTC)),
        (datetime(2026, 12, 1, 11, tzinfo=UTC), end + timedelta(minutes=1)),
    ]
    # a marked day is read by its hours, a marked hour by its minutes
    marked_hour = datetime(2026, 11, 30, 3, tzinfo=UTC)
    minutes, hours, days = plan(
        end, starts, {1: {marked_hour}, 24: {datetime(2026, 11, 30, tzinfo=UTC)}}
    )
    assert days == [(datetime(2026, 11, 29, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))]
    assert (datetime(2026, 11, 30, tzinfo=UTC), marked_hour) in hours
    assert (marked_hour + H, datetime(2026, 12, 1, 6, tzinfo=UTC)) in hours
    assert (marked_hour, marked_hour + H) in minutes


def test_plan_of_windows_shorter_than_an_hour_is_minutes_only() -> None:
    end = END + timedelta(minutes=59)
    starts = [end - timedelta(minutes=4), end - timedelta(minutes=29)]
    minutes, hours, days = plan(end, starts, CLEAN)
    assert hours == days == [] and minutes == [(starts[1], end + timedelta(minutes=1))]
    # a window of exactly the hour 12:00-12:59 takes its hour row
    assert plan(end, [END], CLEAN) == ([], [(END, END + H)], [])


SKETCHED = Selector(route="support")
READS: list[tuple[str, Sequence[float], SketchCounts]] = [
    ("latency_sketch", [0.0, 50.0, 300.0, 1000.0, 2500.0, 3999.0, 1e6], answered_within),
    ("ttft_sketch", [0.0, 100.0, 450.0, 900.0], answered_within),
    ("cost_sketch", [0.0, 0.0005, 0.001, 0.003, 1.0], cost_counts),
]
SPANS = [5, 60, 360, 4320, 43200]


def _per_row(engine: Engine, selector: Selector) -> list[list[dict[int, Counts]]]:
    """sketch_windows' counts the old way: each row's sketch built (from_bytes), counted
    with sli.within and classified, row by row, into every window it is in."""
    end = NOW.replace(second=0, microsecond=0)
    cuts = cutoffs(end, SPANS)
    columns = tuple(c for c, _, _ in READS)
    out = [[dict.fromkeys(SPANS, Counts(0, 0)) for _ in t] for _, t, _ in READS]
    with engine.connect() as conn:
        u = rows(conn, selector, end, list(cuts.values()), columns)
        for at, status, *raws in conn.execute(select(u.c.at, u.c.status_code, *u.c[2:])):
            for r, ((_, thresholds, classify), raw) in enumerate(zip(READS, raws, strict=True)):
                if raw is None:
                    continue
                sketch = from_bytes(raw)
                for j, t in enumerate(thresholds):
                    got = classify(status, int(sketch.count), within(sketch, t))
                    for w, cut in cuts.items():
                        if as_utc(at) >= cut:
                            out[r][j][w] = out[r][j][w] + got
    return out


def _tallied_as_before(engine: Engine) -> None:
    end = NOW.replace(second=0, microsecond=0)
    sums = ("count", "guardrail_fired", "negative_feedback")
    for selector in (SKETCHED, Selector(route="support", tenant="acme"), Selector()):
        with engine.connect() as conn:
            got, by_status = sketch_windows(conn, selector, READS, end, SPANS, sums)
            assert by_status == sums_windows(conn, selector, end, SPANS, sums)
        assert got == _per_row(engine, selector)
    assert got[0][3][43200].valid > 1000 and 0 < got[0][3][43200].good < got[0][3][43200].valid


def test_the_sketches_tally_gives_the_row_by_row_counts(engine: Engine) -> None:
    """The one-pass tally of every row's sketches (slo/sketch_counts.Tally), per piece and
    status, equals building each row's sketch and counting it, row by row (and its summed
    columns the database's sums), on the minute rows, the hourly ones, and both."""
    _month(engine)
    _tallied_as_before(engine)
    compact(engine, NOW, limit=10_000)
    _tallied_as_before(engine)
    late = (NOW - timedelta(days=2)).timestamp()
    TelemetryStore(engine).write([request(10**6 + i, late, status_code=503) for i in range(5)])
    _tallied_as_before(engine)


def test_binary_results_ask_postgresql_for_binary_rows_within_only(engine: Engine) -> None:
    formats: list[object] = []

    def seen(conn: object, cursor: object, *rest: object) -> None:
        formats.append(getattr(cursor, "format", None))

    raw = to_bytes(new_sketch())
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with engine.connect() as conn:
            with binary_results(conn):
                inside = conn.execute(select(literal(raw, LargeBinary()))).scalar_one()
            with pytest.raises(ZeroDivisionError), binary_results(conn):
                conn.execute(select(literal(1)))
                1 / 0  # noqa: B018
            after = conn.execute(select(literal(raw, LargeBinary()))).scalar_one()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert bytes(inside) == bytes(after) == raw
    if engine.dialect.name == "postgresql":
        binary, text = pq.Format.BINARY, pq.Format.TEXT
        assert formats == [binary, binary, text]  # the factory restored after the error
    else:
        assert formats == [None] * 3


def test_split_hours_are_read_whole_less_the_minutes_outside_their_largest_piece() -> None:
    end = END + timedelta(minutes=17)  # 12-01 12:17, included
    cuts = sorted(end - timedelta(minutes=w - 1) for w in (5, 60, 360, 4320))
    minutes, _, _ = plan(end, cuts, CLEAN)
    left, wholes = whole_hours(end, cuts, CLEAN, minutes)
    day, at = datetime(2026, 11, 28, 12, tzinfo=UTC), END.replace(hour=6)
    eleven = END.replace(hour=11)
    m18 = timedelta(minutes=18)
    # 11-28 12:00: 18 minutes before the 3 d cut (12:18, piece 0), 42 after (piece 1)
    assert wholes == [
        (day, 1, [(day, day + m18)]),
        (at, 2, [(at, at + m18)]),
        (eleven, 3, [(eleven, eleven + m18)]),
    ]
    assert left == [(END, end + timedelta(minutes=1))]  # the current hour: its minutes
    # a marked hour is read by its minutes; an hour split in two halves saves nothing
    left, wholes = whole_hours(end, cuts, {1: {at}, 24: set()}, minutes)
    assert [w[0] for w in wholes] == [day, eleven] and (at, at + H) in left
    halves = [END.replace(hour=9, minute=30)]
    nine = plan(END.replace(hour=10, minute=59), halves, CLEAN)[0]
    assert whole_hours(END.replace(hour=10, minute=59), halves, CLEAN, nine) == (nine, [])
