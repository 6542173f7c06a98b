"""/ui/costs: spend by model, route, feature and tenant, and by day, with the budgets
beside them: the sums /api/costs gives (telemetry/costs.costs_by), read from the hourly
and daily rollups for the whole spans and the minute rollups for the rest
(web/rollup_reads.py); each budget's spend forecast to the end of its period, as
/api/costs/forecast gives it (policy/forecast_data.budget_forecasts: the daily spend in
the rollups, an OLS fit with its prediction interval); and the unit economics per route,
feature and tenant, as /api/costs/economics gives them (telemetry/economics.py, from the
rollups: per request, per successful request, per 1,000 tokens, per session when it
counts sessions)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.responses import Response

from trimtab.errors import Invalid
from trimtab.policy.forecast_data import budget_forecasts
from trimtab.telemetry.costs import CostRow
from trimtab.telemetry.economics import ECONOMICS_GROUPS, economics_of, sessions_by
from trimtab.telemetry.rollups import minute_of
from trimtab.web.context import Deps, Page
from trimtab.web.rollup_reads import (
    COST_DIMENSIONS,
    costs_by_dimensions,
    daily_spend_by_dimensions,
)

COST_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DIMENSIONS = COST_DIMENSIONS


def _rows(rows: dict[str, CostRow]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for value, r in rows.items():
        out.append(
            {
                "value": value or None,
                "cost_usd": r.cost_usd,
                "requests": r.requests,
                "errors": r.errors,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "per_1k": r.cost_usd / r.requests * 1000 if r.requests else None,
            }
        )
    out.sort(key=lambda g: (-g["cost_usd"], -g["requests"], str(g["value"])))
    return out


def _gather(
    deps: Deps, since: datetime, tenant: str | None, budgets: list[dict[str, Any]]
) -> dict[str, Any]:
    spend: dict[datetime, dict[str, dict[str, dict[date, float]]]] = {}

    def daily(kind: str, start: datetime) -> dict[str, dict[date, float]]:
        if start not in spend:  # one scan for every kind the budgets name
            spend[start] = daily_spend_by_dimensions(deps.engine, start, tenant)
        return spend[start][kind]

    now = deps.policy.now()
    forecasts, not_forecast = budget_forecasts(deps.engine, budgets, now, tenant, daily)
    by = costs_by_dimensions(deps.engine, since, tenant)
    economics = {
        g: economics_of(g, by[g], sessions_by(deps.engine, since, g, tenant))
        for g in ECONOMICS_GROUPS
    }
    groups = {d: _rows(by[d]) for d in DIMENSIONS}
    days = sorted(by["day"].items())
    total = CostRow()
    for _, row in days:
        total.add(row)
    chart = {
        "t": [datetime.fromisoformat(d).replace(tzinfo=UTC).timestamp() for d, _ in days],
        "cost_usd": [round(r.cost_usd, 6) for _, r in days],
        "requests": [r.requests for _, r in days],
    }
    return {"groups": groups, "chart": chart, "total": total,
            "forecasts": [f.view() for f in forecasts], "not_forecast": not_forecast,
            "economics": economics, "economics_groups": ECONOMICS_GROUPS,
            # per session only where the figures carry it (telemetry/economics.py)
            "sessions": any(t.get("cost_per_session_usd") is not None
                            for _, t in economics.values())}  # fmt: skip


async def index(page: Page) -> Response:
    name = page.param("window") or "30d"
    if name not in COST_WINDOWS:
        raise Invalid(f"window '{name}' is not one of {', '.join(COST_WINDOWS)}", param="window")
    tenant = page.viewer.tenant(page.param("tenant"))
    since = minute_of((datetime.now(UTC) - COST_WINDOWS[name]).timestamp())
    budgets = await page.deps.policy.report.budgets(tenant)
    data = await asyncio.to_thread(_gather, page.deps, since, tenant, budgets)
    return page.render(
        "costs.html.j2", window=name, windows=list(COST_WINDOWS), budgets=budgets,
        dimensions=DIMENSIONS, tenant=tenant, **data,
    )  # fmt: skip
