"""Burn rates, budgets and alert rules against hand-computed cases and scipy."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from trimtab.slo.burn import (
    MIN_EVENTS_FLOOR,
    AlertRule,
    Counts,
    auto_min_events,
    budget,
    burn,
    burn_rate,
    judge,
    scaled_rules,
    sli,
)

PAGE_1H = AlertRule("page", 60, 5, 14.4)


def test_the_workbook_rules_for_30_days() -> None:
    assert scaled_rules(30 * 24 * 60) == (
        AlertRule("page", 60, 5, 14.4),
        AlertRule("page", 360, 30, 6.0),
        AlertRule("ticket", 4320, 360, 1.0),
    )
    # each rule lets go of 2 %, 5 % and 10 % of the budget before it fires
    shares = [r.budget_share for r in scaled_rules(30 * 24 * 60)]
    assert shares == pytest.approx([0.02, 0.05, 0.10])


def test_windows_scale_with_the_slo_window_and_factors_stay() -> None:
    # 7 d is 7/30 of 30 d: 60 min -> 14, 5 min -> 1.17 -> 1, 6 h -> 84, 30 min -> 7, 3 d -> 1008
    assert scaled_rules(7 * 24 * 60) == (
        AlertRule("page", 14, 1, 14.4),
        AlertRule("page", 84, 7, 6.0),
        AlertRule("ticket", 1008, 84, 1.0),
    )
    assert [(r.long_minutes, r.short_minutes) for r in scaled_rules(28 * 24 * 60)] == [
        (56, 5),
        (336, 28),
        (4032, 336),
    ]


def test_burn_rate_by_hand() -> None:
    # 10 bad of 1,000 at 99.9 %: a 1 % bad share is 10 times the 0.1 % budget
    assert burn_rate(Counts(990, 1000), 0.999) == pytest.approx(10.0)
    assert burn_rate(Counts(1000, 1000), 0.999) == 0.0
    assert burn_rate(Counts(0, 0), 0.999) is None
    assert sli(Counts(0, 0)) is None  # no traffic is no data, never 100 %
    assert sli(Counts(950, 1000)) == 0.95


def test_budget_by_hand() -> None:
    b = budget(Counts(100_000 - 25, 100_000), 0.999)
    assert b.total == pytest.approx(100.0)
    assert b.spent == 25
    assert b.remaining == pytest.approx(75.0)
    assert b.spent_share == pytest.approx(0.25)
    assert b.remaining_share == pytest.approx(0.75)
    over = budget(Counts(1000 - 3, 1000), 0.999)  # 3 bad where 1 was allowed
    assert over.remaining == pytest.approx(-2.0)
    assert over.remaining_share == pytest.approx(-2.0)
    empty = budget(Counts(0, 0), 0.999)
    assert empty.spent_share is None and empty.remaining_share is None


def test_the_interval_is_wilsons_on_the_bad_share_over_the_budget() -> None:
    b = burn(Counts(1800 - 49, 1800), 0.999, 60, 10)
    ci = sps.binomtest(49, 1800).proportion_ci(confidence_level=0.95, method="wilson")
    assert b.low == pytest.approx(ci.low / 0.001)
    assert b.high == pytest.approx(ci.high / 0.001)
    assert b.low is not None and b.high is not None and b.rate is not None
    assert b.low < b.rate < b.high


def test_automatic_minimum_of_events() -> None:
    # one bad event of n is a burn of 1 / (n * 0.001): at most 14.4 from n = 70 on
    assert auto_min_events(0.999, 14.4) == 70
    assert 1 / (69 * 0.001) > 14.4 >= 1 / (70 * 0.001)
    assert auto_min_events(0.999, 6.0) == 167
    assert auto_min_events(0.999, 1.0) == 1000
    assert auto_min_events(0.99, 14.4) == MIN_EVENTS_FLOOR  # 7 is below the floor


def test_a_single_error_on_a_quiet_route_does_not_page() -> None:
    # three requests in the hour, one failed, the only one in the last 5 minutes
    verdict = judge(PAGE_1H, Counts(2, 3), Counts(0, 1), 0.999, None)
    assert verdict.state == "too_little_data"
    assert verdict.long.rate == pytest.approx(333.33, rel=1e-3)  # the burn alone would page
    # and with the file's own bound of 10 as well
    assert judge(PAGE_1H, Counts(2, 3), Counts(0, 1), 0.999, 10).state == "too_little_data"


def test_27x_burn_at_half_a_request_per_second_pages() -> None:
    # 0.5 req/s: 1,800 requests an hour, 150 in 5 minutes; 2.7 % of them fail
    long, short = Counts(1800 - 49, 1800), Counts(150 - 4, 150)
    verdict = judge(PAGE_1H, long, short, 0.999, None)
    assert verdict.state == "firing"
    assert verdict.long.rate == pytest.approx(27.2, rel=1e-2)
    # the same share on a window that has not yet recovered: the short window stops it
    assert judge(PAGE_1H, long, Counts(150, 150), 0.999, None).state == "ok"


@given(
    objective=st.floats(min_value=0.5, max_value=0.99999),
    n_long=st.integers(min_value=1, max_value=10**7),
    n_short=st.integers(min_value=1, max_value=10**7),
    rule=st.sampled_from(scaled_rules(30 * 24 * 60)),
)
def test_one_bad_event_never_fires_a_rule_with_the_automatic_bound(
    objective: float, n_long: int, n_short: int, rule: AlertRule
) -> None:
    verdict = judge(rule, Counts(n_long - 1, n_long), Counts(n_short - 1, n_short), objective, None)
    assert verdict.state != "firing"


@given(
    good=st.integers(min_value=0, max_value=10**6),
    extra=st.integers(min_value=0, max_value=10**6),
    k=st.integers(min_value=1, max_value=1000),
    objective=st.floats(min_value=0.5, max_value=0.9999),
)
def test_burn_depends_on_the_share_only_and_its_interval_narrows(
    good: int, extra: int, k: int, objective: float
) -> None:
    valid = good + extra
    if valid == 0:
        return
    small = burn(Counts(good, valid), objective, 60, 1)
    large = burn(Counts(good * k, valid * k), objective, 60, 1)
    assert small.rate is not None and large.rate is not None
    assert math.isclose(small.rate, large.rate, rel_tol=1e-9, abs_tol=1e-12)
    assert small.low is not None and small.high is not None
    assert large.low is not None and large.high is not None
    assert large.high - large.low <= small.high - small.low + 1e-9
    b = budget(Counts(good, valid), objective)
    assert b.spent_share is not None
    # the share of the budget spent is the burn over the whole window
    assert math.isclose(b.spent_share, small.rate, rel_tol=1e-9, abs_tol=1e-12)


def test_counts_are_checked() -> None:
    with pytest.raises(ValueError, match="good must be between"):
        Counts(5, 4)
