"""Budget periods, keys, accounts and threshold crossings: the pure core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimtab.config import BudgetConfig
from trimtab.policy.budgets import (
    UNLIMITED,
    accounts_for,
    budget_key,
    crossings,
    enforces,
    exceeded,
    exceeded_message,
    period_span,
    reserve_limit,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "start", "end", "label"),
    [
        (utc(2026, 11, 5, 13, 7), utc(2026, 11, 5), utc(2026, 11, 6), "2026-11-05"),
        (utc(2026, 11, 5, 0, 0), utc(2026, 11, 5), utc(2026, 11, 6), "2026-11-05"),
        (utc(2026, 11, 5, 23, 59, 59, 999999), utc(2026, 11, 5), utc(2026, 11, 6), "2026-11-05"),
        (utc(2026, 12, 31, 12), utc(2026, 12, 31), utc(2027, 1, 1), "2026-12-31"),
        (utc(2028, 2, 28, 12), utc(2028, 2, 28), utc(2028, 2, 29), "2028-02-28"),
    ],
)
def test_day_is_utc_midnight_to_midnight(
    now: datetime, start: datetime, end: datetime, label: str
) -> None:
    span = period_span("day", now)
    assert (span.start, span.end, span.label) == (start, end, label)


@pytest.mark.parametrize(
    ("now", "start", "end", "label"),
    [
        (utc(2026, 11, 5, 13), utc(2026, 11, 1), utc(2026, 12, 1), "2026-11"),
        (utc(2026, 11, 1), utc(2026, 11, 1), utc(2026, 12, 1), "2026-11"),
        (utc(2026, 12, 31, 23, 59), utc(2026, 12, 1), utc(2027, 1, 1), "2026-12"),
        (utc(2027, 1, 1), utc(2027, 1, 1), utc(2027, 2, 1), "2027-01"),
        (utc(2028, 2, 29, 8), utc(2028, 2, 1), utc(2028, 3, 1), "2028-02"),
    ],
)
def test_month_runs_from_the_first(
    now: datetime, start: datetime, end: datetime, label: str
) -> None:
    span = period_span("month", now)
    assert (span.start, span.end, span.label) == (start, end, label)


def test_periods_are_taken_in_utc_whatever_the_input_zone() -> None:
    # 2026-11-30 20:00 in UTC-5 is already December 1st in UTC
    now = datetime(2026, 11, 30, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert period_span("month", now).label == "2026-12"
    assert period_span("day", now).label == "2026-12-01"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1)))
def test_every_instant_lies_in_its_period(naive: datetime) -> None:
    now = naive.replace(tzinfo=UTC)
    for period in ("day", "month"):
        span = period_span(period, now)
        assert span.start <= now < span.end
        assert period_span(period, span.end).start == span.end  # periods tile time
        assert period_span(period, span.end - timedelta(microseconds=1)) == span


def test_budget_key_names_scope_period_and_label() -> None:
    assert budget_key("tenant:acme", period_span("month", utc(2026, 11, 5))) == (
        "budget:tenant:acme:month:2026-11"
    )
    assert budget_key("key:key_ab12", period_span("day", utc(2026, 11, 5))) == (
        "budget:key:key_ab12:day:2026-11-05"
    )


def test_ttl_outlives_the_period_by_a_day() -> None:
    span = period_span("day", utc(2026, 11, 5))
    assert span.ttl_s(utc(2026, 11, 5, 23)) == 3600 + 86400
    assert span.ttl_s(utc(2026, 11, 7)) == 86400  # never negative


THRESHOLDS = [0.8, 1.0, 1.1]


@pytest.mark.parametrize(
    ("before", "after", "crossed"),
    [
        (0.0, 79.99, []),
        (79.99, 80.0, [0.8]),  # reaching a threshold exactly crosses it
        (80.0, 85.0, []),  # already at 80 %: not again
        (70.0, 105.0, [0.8, 1.0]),
        (0.0, 500.0, [0.8, 1.0, 1.1]),  # one expensive request crosses all three
        (100.0, 100.0, []),  # a failed call (cost 0) crosses nothing
        (109.0, 110.0, [1.1]),
    ],
)
def test_crossings(before: float, after: float, crossed: list[float]) -> None:
    assert crossings(before, after, 100.0, THRESHOLDS) == crossed


@given(st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), max_size=60))
def test_each_threshold_is_crossed_exactly_once_by_a_sequence_of_settlements(
    costs: list[float],
) -> None:
    spent = 0.0
    seen: list[float] = []
    for cost in costs:
        before, spent = spent, spent + cost
        seen += crossings(before, spent, 100.0, THRESHOLDS)
    assert sorted(seen) == [t for t in THRESHOLDS if spent >= t * 100.0]
    assert len(seen) == len(set(seen))


def budget(
    scope: str, usd: float = 100.0, period: str = "month", on: str = "block"
) -> BudgetConfig:
    return BudgetConfig(scope=scope, period=period, usd=usd, on_exceed=on)  # type: ignore[arg-type]


VALUES: dict[str, str | None] = {
    "tenant": "acme",
    "key": "key_1",
    "model": "gpt-big",
    "feature": None,
    "route": None,
}


def test_accounts_match_scopes_and_share_counters() -> None:
    now = utc(2026, 11, 5)
    budgets = [
        budget("tenant:*", 100),
        budget("tenant:acme", 50, on="alert"),
        budget("tenant:globex", 10),
        budget("tenant:acme", 5, period="day"),
        budget("feature:*", 1),  # the request has no feature
        budget("model:gpt-big", 20, on="downgrade:gpt-small"),
    ]
    accounts = accounts_for(budgets, VALUES, now)
    assert [(a.key, [b.usd for b in a.budgets]) for a in accounts] == [
        ("budget:tenant:acme:month:2026-11", [100, 50]),
        ("budget:tenant:acme:day:2026-11-05", [5]),
        ("budget:model:gpt-big:month:2026-11", [20]),
    ]


def test_what_enforces() -> None:
    assert enforces(budget("tenant:*"), "m")
    assert not enforces(budget("tenant:*", on="alert"), "m")
    assert enforces(budget("tenant:*", on="downgrade:small"), "big")
    assert not enforces(budget("tenant:*", on="downgrade:small"), "small")


def test_reserve_limit_is_the_tightest_enforcing_budget() -> None:
    now = utc(2026, 11, 5)
    both = [budget("tenant:*", 100), budget("tenant:acme", 50, on="alert")]
    (account,) = accounts_for(both, VALUES, now)
    assert reserve_limit(account, "gpt-big") == 100
    assert exceeded(account, "gpt-big", 99.0, 0.5) == []
    assert exceeded(account, "gpt-big", 99.0, 1.0) == [both[0]]
    alert_only = accounts_for([budget("tenant:*", 1, on="alert")], VALUES, now)[0]
    assert reserve_limit(alert_only, "gpt-big") == UNLIMITED
    down = accounts_for([budget("tenant:*", 1, on="downgrade:small")], VALUES, now)[0]
    assert reserve_limit(down, "gpt-big") == 1
    assert reserve_limit(down, "small") == UNLIMITED


def test_exceeded_message() -> None:
    b = budget("tenant:*", 100)
    span = period_span("month", utc(2026, 11, 5))
    assert exceeded_message(b, "tenant:acme", span, 100.02, 0.0) == (
        "budget tenant:acme (month, $100.00) is spent: $100.02 settled; "
        "it resets at 2026-12-01T00:00:00Z"
    )
    assert exceeded_message(b, "tenant:acme", span, 100.02, 0.5) == (
        "budget tenant:acme (month, $100.00) is spent: $100.02 settled, $0.50 reserved by "
        "requests in flight; it resets at 2026-12-01T00:00:00Z"
    )
    assert exceeded_message(b, "tenant:acme", span, 99.8, 0.4) == (
        "budget tenant:acme (month, $100.00) is taken: $99.80 settled + $0.40 reserved by "
        "requests in flight; it resets at 2026-12-01T00:00:00Z"
    )
