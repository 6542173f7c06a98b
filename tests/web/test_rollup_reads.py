"""The overview's rollup reads, on SQLite and PostgreSQL: the database's sums and the
merged bins' p95 agree with the telemetry's own rollups (DDSketch merges)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from sqlalchemy import Engine

from trimtab.policy.forecast_data import FORECAST_KINDS, daily_spend
from trimtab.telemetry.costs import costs_by
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.rollups import Rollup, group, minute_of
from trimtab.telemetry.sketch import new_sketch, quantile, to_bytes
from trimtab.telemetry.store import TelemetryStore
from trimtab.web.rollup_reads import (
    COST_DIMENSIONS,
    Bins,
    by_bucket,
    by_route,
    costs_by_dimensions,
    daily_spend_by_dimensions,
    midnight,
    series,
)

NOW = datetime(2026, 12, 2, 7, 30, 20, tzinfo=UTC)


def _records(n: int, seed: int) -> list[RequestRecord]:
    rng = random.Random(seed)
    return [
        RequestRecord(
            id=f"r{seed}-{i}",
            started_at=NOW.timestamp() - rng.uniform(0, 7200),
            api="openai",
            operation="chat",
            tenant=rng.choice(("acme", "globex")),
            request_model=rng.choice(("a", "b")),
            route=rng.choice(("faq", "search", None)),
            status_code=rng.choice((200, 200, 200, 502)),
            duration_ms=rng.lognormvariate(5, 1.2) if i % 40 else 0.0,
            cost_usd=rng.uniform(0, 0.01),
        )
        for i in range(n)
    ]


def test_merged_bins_read_the_quantiles_ddsketch_reads() -> None:
    rng = random.Random(3)
    merged = new_sketch()
    bins = Bins()
    for _ in range(60):
        part = new_sketch()
        for _ in range(rng.randint(1, 80)):
            part.add(rng.choice((0.0, rng.lognormvariate(4, 2), rng.uniform(1e4, 1e6))))
        merged.merge(part)
        bins.add(to_bytes(part))
    assert bins.count == merged.count
    for q in (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert bins.quantile(q) == pytest.approx(quantile(merged, q), rel=1e-12), q
    assert Bins().quantile(0.95) is None


def test_by_route_agrees_with_the_rollups(engine: Engine) -> None:
    store = TelemetryStore(engine)
    store.write(_records(3000, 1))
    since = minute_of((NOW - timedelta(hours=1)).timestamp())
    for tenant in (None, "acme"):
        rows = store.rollups_since(since, tenant)
        expected = {g["route"] or "": g for g in group(rows, "route")}
        got = by_route(engine, since, tenant)
        assert set(got) == set(expected)
        for route, sums in got.items():
            e = expected[route]
            assert (sums.requests, sums.errors) == (e["count"], e["errors"])
            assert sums.cost_usd == pytest.approx(e["cost_usd"])
            assert sums.p95_ms == pytest.approx(e["latency_ms"]["p95"], rel=1e-9)


def test_by_bucket_sums_each_bucket_and_fills_gaps(engine: Engine) -> None:
    store = TelemetryStore(engine)
    store.write(_records(2000, 2))
    start = minute_of((NOW - timedelta(hours=2)).timestamp())
    sums = by_bucket(engine, start, 30, None, "faq")
    rows = [(k, r) for k, r in store.rollups_since(start, None) if k[6] == "faq"]
    for at, s in sums.items():
        inside = [r for k, r in rows if at <= k[0].timestamp() < at + 1800]
        total = Rollup()
        for r in inside:
            total.merge(r)
        assert s.requests == total.count and s.errors == total.errors
        assert s.p95_ms == pytest.approx(total.summary()["latency_ms"]["p95"], rel=1e-9)
    out = series(sums, start, NOW, 30)
    first = out["t"][0]
    assert first is not None and first <= start.timestamp() < first + 1800
    assert len(out["t"]) == len(out["requests"]) == 5
    assert sum(v or 0 for v in out["requests"]) == sum(s.requests for s in sums.values())
    empty = series({}, start, NOW, 30)
    assert empty["requests"] == [0.0] * 5 and empty["p95_ms"] == [None] * 5


def test_spend_today_starts_at_midnight_utc() -> None:
    assert midnight(NOW) == datetime(2026, 12, 2, tzinfo=UTC)


def test_costs_by_every_dimension_at_once_equal_the_apis_query(engine: Engine) -> None:
    TelemetryStore(engine).write(_records(1500, 3))
    since = minute_of((NOW - timedelta(hours=3)).timestamp())
    for tenant in (None, "globex"):
        got = costs_by_dimensions(engine, since, tenant)
        for d in COST_DIMENSIONS:
            want = costs_by(engine, since, d, tenant)
            assert set(got[d]) == set(want), d
            for value, row in want.items():
                mine = got[d][value]
                assert (mine.requests, mine.errors, mine.input_tokens) == (
                    row.requests, row.errors, row.input_tokens,
                )  # fmt: skip
                assert mine.cost_usd == pytest.approx(row.cost_usd)


def test_bins_read_off_the_wire_equal_the_parsed_message() -> None:
    """The dense bins come off the stored bytes; a message with sparse bins (another
    writer's) is parsed as a message: both add the same counts."""
    rng = random.Random(5)
    for _ in range(20):
        sketch = new_sketch()
        for _ in range(rng.randint(0, 300)):
            sketch.add(rng.choice((0.0, rng.lognormvariate(5, 2), rng.uniform(1e5, 1e7))))
        raw = to_bytes(sketch)
        message = DDSketchMessage()
        message.ParseFromString(raw)
        bins = Bins()
        bins.add(raw)
        assert bins.zeros == message.zeroCount
        store = message.positiveValues
        got = bins.counts[store.contiguousBinIndexOffset - bins.low :][
            : len(store.contiguousBinCounts)
        ]
        assert list(got) == list(store.contiguousBinCounts)
        assert bins.count == sketch.count
    sparse = DDSketchMessage()
    sparse.zeroCount = 2.0
    sparse.positiveValues.binCounts[10] = 3.0
    sparse.positiveValues.binCounts[-4] = 1.0
    bins = Bins()
    bins.add(sparse.SerializeToString())
    assert bins.count == 6.0 and bins.quantile(1.0) == pytest.approx(1.02**10, rel=0.03)


def test_costs_and_daily_spend_over_hours_and_days_equal_the_apis(engine: Engine) -> None:
    """Four days of traffic, an eval run's among it, compacted into the hourly and daily
    rows: the costs leave the eval run out as `costs_by` does; the daily spend the budget
    forecasts are fitted on keeps it, as `daily_spend` (and budgets) do."""
    records = _records(2000, 7)
    rng = random.Random(8)
    for i, r in enumerate(records):
        r.started_at = NOW.timestamp() - rng.uniform(0, 4 * 86400)
        r.feature = "eval:run_1" if i % 5 == 0 else rng.choice(("faq", None))
    TelemetryStore(engine).write(records)
    while compact(engine, datetime.now(UTC)):
        pass
    since = midnight(NOW) - timedelta(days=5)
    for tenant in (None, "acme"):
        got = costs_by_dimensions(engine, since, tenant)
        assert not any(v.startswith("eval:") for v in got["feature"])
        for d in COST_DIMENSIONS:
            want = costs_by(engine, since, d, tenant)
            assert set(got[d]) == set(want), d
            for value, row in want.items():
                assert (got[d][value].requests, got[d][value].errors) == (row.requests, row.errors)
                assert got[d][value].cost_usd == pytest.approx(row.cost_usd)
        daily = daily_spend_by_dimensions(engine, since, tenant)
        assert "eval:run_1" in daily["feature"]
        for kind in FORECAST_KINDS:
            expected = daily_spend(engine, kind, since, tenant)
            assert set(daily[kind]) == set(expected), kind
            for value, days in expected.items():
                assert daily[kind][value] == pytest.approx(days), (kind, value)
