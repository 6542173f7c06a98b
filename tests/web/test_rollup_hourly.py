"""The console's reads from the hourly and daily rollups, on SQLite and PostgreSQL: once
the closed hours and days are compacted the overview's, the charts', the costs page's and
the SLO burn-down's figures are those the minute rollups give (read before compacting),
and they come from the hour and day rows (they stay the same with those minutes gone)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select

from trimtab.slo.rollups import read_series
from trimtab.slo.spec import SloDefinition, load_slos
from trimtab.store.tables import rollups, rollups_hour, rollups_hour_dirty
from trimtab.telemetry.costs import costs_by
from trimtab.telemetry.hourly import compact, hour_floor
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.rollups import minute_of
from trimtab.telemetry.store import TelemetryStore
from trimtab.web.rollup_reads import (
    COST_DIMENSIONS,
    Sums,
    by_bucket,
    by_route,
    costs_by_dimensions,
    spend_by_route,
)
from trimtab.web.slos import burn_down

SPAN_S = 3 * 86400 + 5 * 3600  # three days and some hours: whole days, hours and edges

SLOS = """slos:
  up: {route: faq, sli: {kind: availability}, objective: 0.99, window: 7d}
  fast: {route: faq, sli: {kind: latency, threshold_ms: 300}, objective: 0.9, window: 30d}
  served: {tenant: acme, sli: {kind: error_rate, error_class: server}, objective: 0.95, window: 28d}
  guarded: {route: faq, sli: {kind: guardrail}, objective: 0.99, window: 7d}
  cheap: {route: faq, sli: {kind: cost, ceiling_usd: 0.005}, objective: 0.9, window: 30d}
"""


def _records(n: int, now: datetime) -> list[RequestRecord]:
    rng = random.Random(16)
    return [
        RequestRecord(
            id=f"h{i}",
            started_at=now.timestamp() - rng.uniform(0, SPAN_S),
            api="openai",
            operation="chat",
            tenant=rng.choice(("acme", "globex")),
            request_model=rng.choice(("a", "b")),
            provider=rng.choice(("p1", "p2")),  # not an hourly dimension: summed away
            route=rng.choice(("faq", "search", None)),
            feature=rng.choice(("chat", None)),
            status_code=rng.choice((200, 200, 200, 404, 502)),
            duration_ms=rng.lognormvariate(5, 1.2) if i % 40 else 0.0,
            input_tokens=rng.randint(1, 500),
            output_tokens=rng.randint(1, 500),
            cost_usd=rng.uniform(0, 0.01),
            attributes={"guardrails": {"fired": ["input.pii"]}} if i % 9 == 0 else None,
        )
        for i in range(n)
    ]


def _figures(engine: Engine, now: datetime, slos: list[SloDefinition]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for hours in (1, 24, 50, 24 * 7):
        since = minute_of((now - timedelta(hours=hours)).timestamp())
        for tenant in (None, "acme"):
            out[f"route {hours} {tenant}"] = by_route(engine, since, tenant)
            out[f"spend {hours} {tenant}"] = spend_by_route(engine, since, tenant)
            out[f"costs {hours} {tenant}"] = costs_by_dimensions(engine, since, tenant)
            for step in (5, 60, 1440):
                for route in (None, "faq"):
                    key = f"bucket {hours} {tenant} {step} {route}"
                    out[key] = by_bucket(engine, since, step, tenant, route)
    for slo in slos:
        out[f"burn {slo.name}"] = burn_down(engine, slo, now)
    return out


def _same(got: Any, want: Any, where: str) -> None:
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for k in want:
            _same(got[k], want[k], f"{where}/{k}")
    elif isinstance(want, Sums):
        assert (got.requests, got.errors) == (want.requests, want.errors), where
        assert got.cost_usd == pytest.approx(want.cost_usd, rel=1e-9), where
        assert got.p95_ms == pytest.approx(want.p95_ms, rel=1e-12), where
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-9), where
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    else:  # a CostRow
        assert (got.requests, got.errors, got.input_tokens, got.output_tokens) == (
            want.requests, want.errors, want.input_tokens, want.output_tokens,
        ), where  # fmt: skip
        assert got.cost_usd == pytest.approx(want.cost_usd, rel=1e-9), where


def test_the_hourly_rows_give_the_minutes_figures(engine: Engine) -> None:
    now = datetime.now(UTC)
    TelemetryStore(engine).write(_records(6000, now))
    slos = load_slos(SLOS)
    minutes = _figures(engine, now, slos)  # every span marked: all from the minutes
    for hours in (1, 24, 50):
        since = minute_of((now - timedelta(hours=hours)).timestamp())
        for tenant in (None, "acme"):
            for d in COST_DIMENSIONS:  # the API's query, which reads the minutes
                _same(minutes[f"costs {hours} {tenant}"][d],
                      costs_by(engine, since, d, tenant), d)  # fmt: skip
            _same(minutes[f"costs {hours} {tenant}"]["day"],
                  costs_by(engine, since, "day", tenant), "day")  # fmt: skip
            spend = {k: r.cost_usd for k, r in costs_by(engine, since, "route", tenant).items()}
            _same(minutes[f"spend {hours} {tenant}"], spend, "spend")
    while compact(engine, now):
        pass
    with engine.connect() as conn:
        query = select(rollups_hour.c.hours, func.count()).group_by(rollups_hour.c.hours)
        spans: dict[int, int] = {int(n): int(k) for n, k in conn.execute(query)}
        left = conn.scalar(select(func.count()).select_from(rollups_hour_dirty))
    assert spans.get(1) and spans.get(24)  # hours and whole days were compacted
    assert left == 2  # the current hour and day wait
    _same(_figures(engine, now, slos), minutes, "compacted")
    # the closed hours' minutes gone, the week's figures (from before the first record)
    # and the burn-downs stand: they were read from the hour and day rows
    with engine.begin() as conn:
        conn.execute(delete(rollups).where(rollups.c.minute < hour_floor(now)))
    after = _figures(engine, now, slos)
    kept = [k for k in minutes if k.startswith(("route 168 ", "spend 168 ", "costs 168 "))]
    kept += [k for k in minutes if k.startswith("bucket 168 ") and " 5 " not in k]
    kept += [k for k in minutes if k.startswith("burn ")]
    assert len(kept) == 2 * 3 + 2 * 2 * 2 + 5
    for key in kept:
        _same(after[key], minutes[key], f"minutes gone: {key}")
    assert after["route 24 None"] != minutes["route 24 None"]  # its edge was minutes


def test_the_burn_down_is_the_minutes_budget_on_whole_hours(engine: Engine) -> None:
    now = datetime.now(UTC)
    TelemetryStore(engine).write(_records(3000, now))
    while compact(engine, now):
        pass
    for slo in load_slos(SLOS):
        burn = burn_down(engine, slo, now)
        ts = [t for t in burn["t"] if t is not None]
        assert len(ts) == 120 and ts == sorted(ts)
        assert all(t % 3600 == 0 for t in ts[:-1])  # the points on whole hours ...
        assert ts[-1] == minute_of(now.timestamp()).timestamp() + 60  # ... the last at now
        series = read_series(engine, slo, now, slo.window_minutes)  # the minute rows
        for t, left in zip(ts, burn["budget_left"], strict=True):
            good = sum(c.good for m, c in series.items() if m.timestamp() < t)
            valid = sum(c.valid for m, c in series.items() if m.timestamp() < t)
            want = 1.0 - (valid - good) / ((1.0 - slo.objective) * valid) if valid else 1.0
            assert left == pytest.approx(want, rel=1e-12), (slo.name, t)
