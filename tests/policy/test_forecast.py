"""The spend forecast to a budget's period end: hand-computed cases, numpy/scipy for the
interval, a seeded simulation of its coverage, the alert signals, and the daily spend read
from the rollups written through the real TelemetryStore."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import Engine

from trimtab.alerts.signal import Signal
from trimtab.config import parse_config
from trimtab.policy.forecast import (
    CONFIDENCE,
    METHOD_LINEAR,
    METHOD_WEEKLY,
    BudgetForecast,
    forecast,
    forecast_signals,
    history,
)
from trimtab.policy.forecast_data import NOT_FORECAST, budget_forecasts, daily_spend
from trimtab.policy.forecast_watch import ForecastWatch
from trimtab.policy.service import Policy
from trimtab.state.memory import MemoryState
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

FIRST = date(2026, 11, 2)  # a Monday


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def test_too_little_data_below_three_days() -> None:
    f = forecast(
        [1.0, 2.0],
        FIRST,
        _midnight(FIRST + timedelta(days=2)),
        _midnight(FIRST + timedelta(days=9)),
        3.0,
        10.0,
    )
    assert f.status == "too_little_data" and f.days == 2
    assert f.projected_usd is None and not f.crosses
    assert f.view()["interval"] is None


def test_an_exact_line_by_hand() -> None:
    # 1, 2, 3 USD a day: the next two days are 4 and 5; no residual, no width
    today = FIRST + timedelta(days=3)
    f = forecast(
        [1.0, 2.0, 3.0], FIRST, _midnight(today), _midnight(today + timedelta(days=2)), 6.0, 100.0
    )
    assert f.status == "ok" and f.method == METHOD_LINEAR and f.days == 3
    assert f.remaining_usd == pytest.approx(9.0)
    assert f.projected_usd == pytest.approx(15.0)
    assert f.low_usd == pytest.approx(15.0) and f.high_usd == pytest.approx(15.0)
    assert f.chance_over == pytest.approx(0.0, abs=1e-9) and not f.crosses
    over = forecast(
        [1.0, 2.0, 3.0], FIRST, _midnight(today), _midnight(today + timedelta(days=2)), 6.0, 14.0
    )
    assert over.crosses and over.chance_over == pytest.approx(1.0)


def test_the_prediction_interval_by_hand() -> None:
    # y = 1, 3, 2, 4 over t = 0..3: b = Sxy / Sxx = 4 / 5 = 0.8, a = 2.5 - 0.8 * 1.5 = 1.3;
    # residuals -0.3, 0.9, -0.9, 0.3: s^2 = 1.8 / 2 = 0.9. Tomorrow (t = 4, the whole day):
    # 1.3 + 3.2 = 4.5, var = 0.9 (1 + 1/4 + (4 - 1.5)^2 / 5) = 2.25, se = 1.5
    today = FIRST + timedelta(days=4)
    f = forecast(
        [1.0, 3.0, 2.0, 4.0],
        FIRST,
        _midnight(today),
        _midnight(today + timedelta(days=1)),
        10.0,
        16.0,
    )
    t95 = stats.t.ppf(0.95, 2)  # 2.919986
    assert t95 == pytest.approx(2.919986, abs=1e-6)
    assert f.remaining_usd == pytest.approx(4.5)
    assert f.projected_usd == pytest.approx(14.5)
    assert f.low_usd == pytest.approx(10.0 + max(4.5 - t95 * 1.5, 0.0))
    assert f.high_usd == pytest.approx(14.5 + t95 * 1.5)
    # P(remaining > 6) = P(T_2 > (6 - 4.5) / 1.5 = 1)
    assert f.chance_over == pytest.approx(stats.t.sf(1.0, 2))
    assert not f.crosses


def test_the_rest_of_today_counts_by_the_share_of_the_day_left() -> None:
    # a day budget at noon: half of today's predicted 4 (the line 1, 2, 3 -> 4)
    today = FIRST + timedelta(days=3)
    noon = _midnight(today) + timedelta(hours=12)
    f = forecast([1.0, 2.0, 3.0], FIRST, noon, _midnight(today + timedelta(days=1)), 1.5, 3.0)
    assert f.remaining_usd == pytest.approx(2.0)
    assert f.projected_usd == pytest.approx(3.5) and f.crosses


def test_weekly_seasonality_once_there_are_two_weeks() -> None:
    effect = [0.0, 1.0, 2.0, 3.0, 4.0, -5.0, -4.0]  # Monday .. Sunday

    def spend(t: int) -> float:
        return 10.0 + 0.5 * t + effect[(FIRST + timedelta(days=t)).weekday()]

    n = 21
    today = FIRST + timedelta(days=n)
    end = _midnight(today + timedelta(days=7))
    f = forecast([spend(t) for t in range(n)], FIRST, _midnight(today), end, 0.0, 1e6)
    assert f.method == METHOD_WEEKLY
    assert f.remaining_usd == pytest.approx(sum(spend(t) for t in range(n, n + 7)))
    assert f.high_usd == pytest.approx(f.low_usd)  # an exact fit: no width
    # with 13 days the line alone is fitted: it misses the weekly pattern
    short = forecast(
        [spend(t) for t in range(13)],
        FIRST,
        _midnight(FIRST + timedelta(days=13)),
        _midnight(FIRST + timedelta(days=20)),
        0.0,
        1e6,
    )
    assert short.method == METHOD_LINEAR


def test_the_weekly_fit_matches_numpy_least_squares() -> None:
    rng = np.random.default_rng(7)
    n = 28
    y = 20 + 0.3 * np.arange(n) + rng.normal(0, 2, n)
    today = FIRST + timedelta(days=n)
    f = forecast(list(y), FIRST, _midnight(today), _midnight(today + timedelta(days=3)), 0.0, 1e6)
    days = [FIRST + timedelta(days=i) for i in range(n + 3)]
    x = np.array(
        [[1.0, i] + [float(d.weekday() == k) for k in range(1, 7)] for i, d in enumerate(days)]
    )
    beta, *_ = np.linalg.lstsq(x[:n], y, rcond=None)
    assert f.remaining_usd == pytest.approx(float(x[n:].sum(axis=0) @ beta))


def test_the_interval_covers_as_often_as_it_says() -> None:
    # 400 seeded simulations of 10 noisy days; the next 5 days' sum falls in the 90 %
    # interval about 90 % of the time (binomial sd 1.5 points)
    rng = np.random.default_rng(20261202)
    today = FIRST + timedelta(days=10)
    end = _midnight(today + timedelta(days=5))
    hits = 0
    reps = 400
    for _ in range(reps):
        y = 5 + 0.2 * np.arange(15) + rng.normal(0, 1, 15)
        f = forecast(list(y[:10]), FIRST, _midnight(today), end, 0.0, 1e6)
        assert f.low_usd is not None and f.high_usd is not None
        hits += f.low_usd <= float(y[10:].sum()) <= f.high_usd
    assert CONFIDENCE == 0.90
    assert 0.85 <= hits / reps <= 0.95


def test_history_fills_gaps_and_keeps_four_weeks() -> None:
    today = date(2026, 11, 20)
    daily = {date(2026, 11, 15): 2.0, date(2026, 11, 17): 3.0, today: 9.0}
    assert history(daily, today) == [2.0, 0.0, 3.0, 0.0, 0.0]  # 15th..19th; today excluded
    long = {date(2026, 9, 1) + timedelta(days=i): 1.0 for i in range(80)}
    assert len(history(long, today)) == 28
    assert history({}, today) == [] and history({today: 1.0}, today) == []


def _bf(projected_spend: float, limit: float, days: int = 5) -> BudgetForecast:
    today = FIRST + timedelta(days=days)
    f = forecast(
        [projected_spend] * days,
        FIRST,
        _midnight(today),
        _midnight(today + timedelta(days=1)),
        0.0,
        limit,
    )
    return BudgetForecast(
        "tenant:acme",
        "tenant:*",
        "month",
        "2026-11",
        _midnight(FIRST),
        _midnight(today + timedelta(days=1)),
        f,
    )


def test_a_forecast_over_the_budget_is_a_ticket_and_one_within_clears_it() -> None:
    at = datetime(2026, 11, 7, tzinfo=UTC)
    over, within = _bf(5.0, 4.0), _bf(1.0, 4.0)
    little = _bf(5.0, 4.0, days=2)
    signals = forecast_signals([over, within, little], at)
    assert [s.firing for s in signals] == [True, False]  # too little data: no signal
    fired = signals[0]
    assert fired.source == "cost_forecast" and fired.severity == "ticket"
    assert fired.dedup_key == "cost_forecast/tenant:acme/month/2026-11"
    assert fired.labels == {"tenant": "acme", "budget": "tenant:*", "period": "month"}
    assert "over the month budget of $4.00" in fired.summary
    assert fired.details["projected_usd"] == pytest.approx(5.0)
    assert "within" in signals[1].summary


def _record(i: int, at: datetime, cost: float, **extra: object) -> RequestRecord:
    return RequestRecord(
        id=f"req_f{i:06d}",
        started_at=at.timestamp(),
        api="openai",
        operation="chat",
        tenant=str(extra.get("tenant", "acme")),
        request_model="gpt-mock",
        route="support",
        cost_usd=cost,
    )


def test_budget_forecasts_from_the_rollups(sqlite_engine: Engine) -> None:
    now = datetime(2026, 11, 20, 6, tzinfo=UTC)
    records = []
    for d in range(10):  # Nov 10 .. 19: 1, 2, .. 10 USD a day for acme, 1 a day for globex
        day = datetime(2026, 11, 10 + d, 12, tzinfo=UTC)
        records.append(_record(2 * d, day, float(d + 1)))
        records.append(_record(2 * d + 1, day + timedelta(minutes=3), 1.0, tenant="globex"))
    records.append(_record(99, now - timedelta(hours=1), 0.5))  # today, so far
    TelemetryStore(sqlite_engine).write(records)
    spend = daily_spend(sqlite_engine, "tenant", now - timedelta(days=28))
    assert spend["acme"][date(2026, 11, 19)] == pytest.approx(10.0)
    assert spend["acme"][date(2026, 11, 20)] == pytest.approx(0.5)
    assert daily_spend(sqlite_engine, "tenant", now - timedelta(days=28), "globex").keys() == {
        "globex"
    }
    budgets = [
        {
            "scope": "tenant:*",
            "period": "month",
            "limit_usd": 200.0,
            "values": [
                {"scope": "tenant:acme", "spent_usd": 55.5},
                {"scope": "tenant:globex", "spent_usd": 10.0},
                {"scope": "tenant:initech", "spent_usd": 0.0},
            ],
        },
        {
            "scope": "key:*",
            "period": "day",
            "limit_usd": 5.0,
            "values": [{"scope": "key:k1", "spent_usd": 1.0}],
        },
    ]
    forecasts, skipped = budget_forecasts(sqlite_engine, budgets, now, None)
    assert skipped == [{"scope": "key:k1", "budget": "key:*", "reason": NOT_FORECAST}]
    acme, globex, initech = forecasts
    # acme: the line 1..10 goes on: 11 * 0.75 for the rest of today (18 h left), then
    # 12 .. 21 for Nov 21 .. 30
    expected = 11 * 0.75 + sum(range(12, 22))
    assert acme.forecast.remaining_usd == pytest.approx(expected)
    assert acme.forecast.projected_usd == pytest.approx(55.5 + expected)
    assert acme.forecast.crosses  # 55.5 + 173.25 > 200
    assert acme.period_end == datetime(2026, 12, 1, tzinfo=UTC)
    assert globex.forecast.projected_usd == pytest.approx(10.0 + 0.75 + 10)
    assert not globex.forecast.crosses
    assert initech.forecast.status == "too_little_data"
    assert math.isclose(acme.forecast.low_usd or 0, acme.forecast.high_usd or 0)
    signals = forecast_signals(forecasts, now)
    assert [(s.dedup_key, s.firing) for s in signals] == [
        ("cost_forecast/tenant:acme/month/2026-11", True),
        ("cost_forecast/tenant:globex/month/2026-11", False),
    ]


async def test_the_watch_submits_each_budgets_signal(sqlite_engine: Engine) -> None:
    now = datetime(2026, 11, 20, 6, tzinfo=UTC)
    records = [
        _record(d, datetime(2026, 11, 10 + d, 12, tzinfo=UTC), float(d + 1)) for d in range(10)
    ]
    TelemetryStore(sqlite_engine).write(records)
    config = parse_config(
        {"budgets": [{"scope": "tenant:acme", "period": "month", "usd": 100.0}]}, "forecast"
    )
    policy = Policy(config, MemoryState(), sqlite_engine, clock=now.timestamp)
    await policy.start()
    try:
        received: list[Signal] = []
        watch = ForecastWatch(sqlite_engine, policy.report.budgets, policy.now, received.append)
        signals = await watch.tick()
    finally:
        await policy.close()
    assert received == signals
    (signal,) = signals
    # 1 .. 10 USD a day goes on rising: far over 100 by the month's end
    assert signal.dedup_key == "cost_forecast/tenant:acme/month/2026-11"
    assert signal.firing and signal.severity == "ticket"
    assert signal.expires_at == datetime(2026, 12, 1, tzinfo=UTC)
