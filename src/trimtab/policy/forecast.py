"""Spend forecast to the end of a budget's period (pure), and the alert signal when the
forecast crosses the budget.

The model is ordinary least squares on the daily spend of the last complete days (at most
`HISTORY_DAYS`, zeros for days without traffic after the first day with any): a line
(intercept and trend) while there are fewer than two weeks of days, and the line plus
day-of-week effects (six dummies, additive) from `SEASONAL_DAYS` days on. The rest of the
period is what the model predicts for the rest of today (the share of the day still to
come) and each later day up to the period's end. The interval is the regression's
prediction interval of that sum, from the t distribution with n - p degrees of freedom:

    remaining = c' X_f b,    var = s^2 (c'c + c' X_f (X'X)^-1 X_f' c)

(c: each future day's weight, X_f: its regressors, s^2: the residual variance), so it
covers both the noise of each day and the uncertainty of the fitted trend. Fewer than
`MIN_DAYS` complete days: "too little data", no forecast. Projections are floored at what
has been spent (spend does not go back).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np

from trimtab.alerts.signal import Signal
from trimtab.stats.student import t_ppf, t_sf

HISTORY_DAYS = 28  # four weeks: four of each weekday for the seasonal model
SEASONAL_DAYS = 14  # two weeks: the weekday effects are fitted from here on
MIN_DAYS = 3
CONFIDENCE = 0.90
METHOD_LINEAR = "ols: daily spend ~ day"
METHOD_WEEKLY = "ols: daily spend ~ day + day of week"
INTERVAL = "the regression's prediction interval of the period's remaining spend (t, n - p df)"

Status = Literal["ok", "too_little_data"]


@dataclass(frozen=True, slots=True)
class Forecast:
    """The spend expected by the end of a budget's period."""

    status: Status
    days: int  # complete days the model was fitted on
    spent_usd: float  # so far this period
    limit_usd: float
    method: str | None = None
    remaining_usd: float | None = None  # predicted from now to the period's end
    projected_usd: float | None = None  # spent + remaining
    low_usd: float | None = None  # CONFIDENCE interval of the projection
    high_usd: float | None = None
    chance_over: float | None = None  # P(projection > limit) under the model

    @property
    def crosses(self) -> bool:
        """The forecast goes over the budget (the point forecast; `chance_over` says how
        sure)."""
        return self.projected_usd is not None and self.projected_usd > self.limit_usd

    def view(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "days": self.days,
            "method": self.method,
            "interval": INTERVAL if self.status == "ok" else None,
            "confidence": CONFIDENCE,
            "spent_usd": round(self.spent_usd, 6),
            "limit_usd": self.limit_usd,
            "remaining_usd": _round(self.remaining_usd),
            "projected_usd": _round(self.projected_usd),
            "low_usd": _round(self.low_usd),
            "high_usd": _round(self.high_usd),
            "chance_over": _round(self.chance_over),
            "crosses": self.crosses,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def history(daily: Mapping[date, float], today: date, days: int = HISTORY_DAYS) -> list[float]:
    """The complete days' spend before `today`, oldest first: at most `days` of them, from
    the first day with any record on (days without one between: 0)."""
    first = min((d for d in daily if d < today), default=None)
    if first is None:
        return []
    start = max(first, today - timedelta(days=days))
    n = (today - start).days
    return [float(daily.get(start + timedelta(days=i), 0.0)) for i in range(n)]


def _design(t: np.ndarray, weekdays: np.ndarray | None) -> np.ndarray:
    columns = [np.ones_like(t), t]
    if weekdays is not None:
        columns += [(weekdays == k).astype(float) for k in range(1, 7)]
    return np.column_stack(columns)


def forecast(
    daily: Sequence[float],
    first_day: date,
    now: datetime,
    period_end: datetime,
    spent_usd: float,
    limit_usd: float,
) -> Forecast:
    """The forecast from the complete days' spend `daily` (oldest first, the first on
    `first_day`, the last yesterday: `now`'s day is the day after it), to `period_end`."""
    n = len(daily)
    if n < MIN_DAYS:
        return Forecast("too_little_data", n, spent_usd, limit_usd)
    today = first_day + timedelta(days=n)
    day_start = datetime(today.year, today.month, today.day, tzinfo=now.tzinfo)
    elapsed = min(max((now - day_start).total_seconds() / 86400, 0.0), 1.0)
    # each future day's index and weight: the rest of today, then every whole day
    t_future, weights = [float(n)], [1.0 - elapsed]
    day = day_start + timedelta(days=1)
    while day < period_end:
        t_future.append(float(n + len(t_future)))
        weights.append(min((period_end - day).total_seconds() / 86400, 1.0))
        day += timedelta(days=1)
    seasonal = n >= SEASONAL_DAYS
    t = np.arange(n, dtype=float)
    future = np.array(t_future)
    weekday_of = (
        (lambda idx: np.array([(first_day + timedelta(days=int(i))).weekday() for i in idx]))
        if seasonal
        else None
    )
    x = _design(t, weekday_of(t) if weekday_of else None)
    x_f = _design(future, weekday_of(future) if weekday_of else None)
    y = np.asarray(daily, dtype=float)
    c = np.asarray(weights)
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    residuals = y - x @ beta
    dof = n - x.shape[1]
    s2 = float(residuals @ residuals) / dof
    a = c @ x_f  # the future days' regressors, weighted and summed
    remaining = float(a @ beta)
    var = s2 * (float(c @ c) + float(a @ xtx_inv @ a))
    se = math.sqrt(max(var, 0.0))
    half = t_ppf(0.5 + CONFIDENCE / 2, dof) * se
    spend = max(remaining, 0.0)
    projected = spent_usd + spend
    gap = limit_usd - spent_usd - remaining
    # with no residual at all the model is certain: over or not
    chance = t_sf(gap / se, dof) if se > 0 else float(gap < 0)
    return Forecast(
        "ok",
        n,
        spent_usd,
        limit_usd,
        METHOD_WEEKLY if seasonal else METHOD_LINEAR,
        spend,
        projected,
        spent_usd + max(remaining - half, 0.0),
        spent_usd + max(remaining + half, 0.0),
        chance,
    )


@dataclass(frozen=True, slots=True)
class BudgetForecast:
    """One budget scope value's forecast, with what names it."""

    scope: str  # "tenant:acme"
    budget: str  # the configured scope, "tenant:*" or "tenant:acme"
    period: str  # day | month
    period_label: str  # "2026-11" | "2026-11-20"
    period_start: datetime
    period_end: datetime
    forecast: Forecast

    def view(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "budget": self.budget,
            "period": self.period,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            **self.forecast.view(),
        }

    @property
    def dedup_key(self) -> str:
        return f"cost_forecast/{self.scope}/{self.period}/{self.period_label}"


def forecast_signals(forecasts: Iterable[BudgetForecast], at: datetime) -> list[Signal]:
    """A ticket for each budget whose forecast crosses it, and a cleared signal for each
    whose forecast does not (it resolves an earlier one); none without a forecast."""
    out: list[Signal] = []
    for bf in forecasts:
        f = bf.forecast
        if f.status != "ok" or f.projected_usd is None:
            continue
        kind, _, value = bf.scope.partition(":")
        crosses = f.crosses
        summary = (
            f"{bf.scope}: spend forecast ${f.projected_usd:.2f} by {bf.period_end:%Y-%m-%d %H:%M}Z "
            f"{'over' if crosses else 'within'} the {bf.period} budget of ${f.limit_usd:.2f} "
            f"({CONFIDENCE * 100:g} % interval ${f.low_usd or 0:.2f}-${f.high_usd or 0:.2f}, "
            f"{f.days} days)"
        )
        out.append(
            Signal(
                source="cost_forecast",
                dedup_key=bf.dedup_key,
                severity="ticket",
                firing=crosses,
                summary=summary,
                at=at,
                labels={kind: value, "budget": bf.budget, "period": bf.period},
                details=bf.view(),
                expires_at=bf.period_end,  # the period is over: so is the forecast
            )
        )
    return out
