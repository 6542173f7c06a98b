"""The daily spend the forecasts are fitted on, and the forecast of every budget: read from
the per-minute rollups (the database groups by minute, the UTC dates are formed here, the
same way on SQLite and PostgreSQL, as telemetry/costs.py does)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from trimtab.policy.budgets import period_span
from trimtab.policy.forecast import HISTORY_DAYS, BudgetForecast, Forecast, forecast, history
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups

# budget scope kinds the rollups carry; a key's spend is in the request rows only
FORECAST_KINDS = {"tenant": "tenant", "feature": "feature", "route": "route", "model": "model"}
NOT_FORECAST = "key budgets are not forecast: the rollups do not carry the key"
# a scope kind's daily spend from `since` on: value -> UTC date -> USD
DailySpend = Callable[[str, datetime], dict[str, dict[date, float]]]


def daily_spend(
    engine: Engine, kind: str, since: datetime, tenant: str | None = None
) -> dict[str, dict[date, float]]:
    """value -> UTC date -> USD, from `since` on, for one scope kind."""
    column = rollups.c[FORECAST_KINDS[kind]]
    query = (
        select(column, rollups.c.minute, func.sum(rollups.c.cost_usd))
        .where(rollups.c.minute >= since, column != "")
        .group_by(column, rollups.c.minute)
    )
    if tenant is not None:
        query = query.where(rollups.c.tenant == tenant)
    out: dict[str, dict[date, float]] = {}
    with engine.connect() as conn:
        for value, minute, cost in conn.execute(query):
            days = out.setdefault(str(value), {})
            day = as_utc(minute).date()
            days[day] = days.get(day, 0.0) + float(cost or 0.0)
    return out


def budget_forecasts(
    engine: Engine,
    budgets: Iterable[Mapping[str, Any]],
    now: datetime,
    tenant: str | None,
    spend: DailySpend | None = None,
) -> tuple[list[BudgetForecast], list[dict[str, Any]]]:
    """Each budget value's forecast (`budgets`: the policy report's entries, with this
    period's spend), and the values that are not forecast, with why. `spend` reads the
    daily spend (default: `daily_spend` over the minute rollups; the console reads the hourly
    and daily rows for the same sums)."""
    today = now.date()
    since = datetime(today.year, today.month, today.day, tzinfo=now.tzinfo) - timedelta(
        days=HISTORY_DAYS
    )
    cache: dict[str, dict[str, dict[date, float]]] = {}
    out: list[BudgetForecast] = []
    skipped: list[dict[str, Any]] = []
    for budget in budgets:
        kind = str(budget["scope"]).partition(":")[0]
        span = period_span(str(budget["period"]), now)
        for entry in budget["values"]:
            if kind not in FORECAST_KINDS:
                skipped.append(
                    {"scope": entry["scope"], "budget": budget["scope"], "reason": NOT_FORECAST}
                )
                continue
            if kind not in cache:
                cache[kind] = (
                    spend(kind, since)
                    if spend is not None
                    else daily_spend(engine, kind, since, tenant)
                )
            value = str(entry["scope"]).partition(":")[2]
            daily = cache[kind].get(value, {})
            past = history(daily, today)
            first = today - timedelta(days=len(past))
            result: Forecast = forecast(
                past, first, now, span.end, float(entry["spent_usd"]), float(budget["limit_usd"])
            )
            out.append(
                BudgetForecast(
                    entry["scope"],
                    budget["scope"],
                    span.period,
                    span.label,
                    span.start,
                    span.end,
                    result,
                )
            )
    return out, skipped
