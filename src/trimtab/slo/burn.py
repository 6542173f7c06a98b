"""Error budgets and multiwindow, multi-burn-rate alert rules (pure).

The rules are the Google SRE workbook's ("Alerting on SLOs", recommendation 6) for a
30-day window: page when the 1 h and the 5 min burn both exceed 14.4, page at 6 over 6 h
and 30 min, ticket at 1 over 3 d and 6 h. A factor f over an alert window A spends
f * A / W of the budget of an SLO window W (14.4 * 1 h / 30 d = 2 %); scaling A with W
keeps that share, so the factors stay and the windows scale (docs/slos.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from trimtab.stats.proportions import wilson_interval

Severity = Literal["page", "ticket"]
State = Literal["firing", "ok", "too_little_data"]

WORKBOOK_WINDOW_MINUTES = 30 * 24 * 60
# (severity, long window, short window in minutes, factor) for a 30-day SLO
WORKBOOK_RULES: tuple[tuple[Severity, int, int, float], ...] = (
    ("page", 60, 5, 14.4),
    ("page", 6 * 60, 30, 6.0),
    ("ticket", 3 * 24 * 60, 6 * 60, 1.0),
)
# below this many events a share moves in steps of 10 points or more: no rule judges it
MIN_EVENTS_FLOOR = 10
CONFIDENCE = 0.95
METHOD = (
    "burn = bad share / (1 - objective); interval: Wilson score on the bad share, / (1 - objective)"
)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Fire when the burn over both windows exceeds `factor`."""

    severity: Severity
    long_minutes: int
    short_minutes: int
    factor: float

    @property
    def budget_share(self) -> float:
        """The share of a 30-day-equivalent budget this rule lets go before it fires."""
        return self.factor * self.long_minutes / WORKBOOK_WINDOW_MINUTES


@dataclass(frozen=True, slots=True)
class Counts:
    """Requests an SLI judged over a window: `good` of `valid`."""

    good: int
    valid: int

    def __post_init__(self) -> None:
        if not 0 <= self.good <= self.valid:
            raise ValueError(f"good must be between 0 and valid ({self.good} of {self.valid})")

    @property
    def bad(self) -> int:
        return self.valid - self.good

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.good + other.good, self.valid + other.valid)


def scaled_rules(window_minutes: int) -> tuple[AlertRule, ...]:
    """The workbook's rules for an SLO window of `window_minutes` (at least one minute each,
    the rollups' resolution)."""
    scale = window_minutes / WORKBOOK_WINDOW_MINUTES
    return tuple(
        AlertRule(severity, max(1, round(long * scale)), max(1, round(short * scale)), factor)
        for severity, long, short, factor in WORKBOOK_RULES
    )


def auto_min_events(objective: float, factor: float) -> int:
    """The fewest events at which one bad event alone cannot push the burn past `factor`:
    the smallest n with 1 / (n * (1 - objective)) <= factor, and at least the floor."""
    budget = 1.0 - objective
    n = max(1, math.ceil(1.0 / (factor * budget)))
    # settled with the very arithmetic `burn_rate` does, so rounding cannot let one through
    while (1 / n) / budget > factor:
        n += 1
    while n > 1 and (1 / (n - 1)) / budget <= factor:
        n -= 1
    return max(MIN_EVENTS_FLOOR, n)


def sli(counts: Counts) -> float | None:
    """The good share, or None without data (never 100 % for no traffic)."""
    return counts.good / counts.valid if counts.valid else None


def burn_rate(counts: Counts, objective: float) -> float | None:
    """How fast the window spends the budget: 1 spends exactly the budget over the SLO
    window. None without data."""
    if not counts.valid:
        return None
    return (counts.bad / counts.valid) / (1.0 - objective)


@dataclass(frozen=True, slots=True)
class Burn:
    """The burn over one window with its interval and sample size."""

    minutes: int
    counts: Counts
    rate: float | None
    low: float | None
    high: float | None
    min_events: int

    @property
    def enough(self) -> bool:
        return self.counts.valid >= self.min_events


def burn(counts: Counts, objective: float, minutes: int, min_events: int) -> Burn:
    rate = burn_rate(counts, objective)
    if rate is None:
        return Burn(minutes, counts, None, None, None, min_events)
    lo, hi = wilson_interval(counts.bad, counts.valid, CONFIDENCE)
    budget = 1.0 - objective
    return Burn(minutes, counts, rate, lo / budget, hi / budget, min_events)


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    rule: AlertRule
    long: Burn
    short: Burn
    state: State


def judge(
    rule: AlertRule, long: Counts, short: Counts, objective: float, min_events: int | None
) -> RuleVerdict:
    """Whether `rule` fires: both windows hold at least `min_events` (None: the rule's
    automatic bound) and both burns exceed its factor."""
    need = auto_min_events(objective, rule.factor) if min_events is None else min_events
    b_long = burn(long, objective, rule.long_minutes, need)
    b_short = burn(short, objective, rule.short_minutes, need)
    if not (b_long.enough and b_short.enough):
        return RuleVerdict(rule, b_long, b_short, "too_little_data")
    assert b_long.rate is not None and b_short.rate is not None  # enough >= 1 event
    firing = b_long.rate > rule.factor and b_short.rate > rule.factor
    return RuleVerdict(rule, b_long, b_short, "firing" if firing else "ok")


@dataclass(frozen=True, slots=True)
class Budget:
    """The error budget over the SLO window, in requests and as shares of it."""

    total: float  # bad requests the objective allows: (1 - objective) * valid
    spent: int  # bad requests
    remaining: float  # total - spent; negative once overspent
    spent_share: float | None  # spent / total; None without data
    remaining_share: float | None


def budget(counts: Counts, objective: float) -> Budget:
    total = (1.0 - objective) * counts.valid
    spent = counts.bad
    if not counts.valid:
        return Budget(0.0, 0, 0.0, None, None)
    share = spent / total
    return Budget(total, spent, total - spent, share, 1.0 - share)
