"""GET /api/costs/forecast and /api/costs/economics, scoped to the caller's tenant."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import json_response, reader, scoped_tenant
from trimtab.api.report_endpoints import COST_FORECAST, UNIT_ECONOMICS
from trimtab.auth.keyring import KeyRing
from trimtab.policy.forecast import forecast_signals
from trimtab.policy.forecast_data import budget_forecasts
from trimtab.policy.service import Policy
from trimtab.telemetry.economics import SESSIONS_NOTE, unit_economics
from trimtab.telemetry.rollups import minute_of


class CostReportsAPI:
    """Forecasts from the daily spend in the rollups and the budgets of the policy (the
    signals shown here are those policy/forecast_watch.py submits to the alerts); unit
    economics from the rollups."""

    def __init__(self, engine: Engine, policy: Policy, keys: KeyRing) -> None:
        self._engine = engine
        self._policy = policy
        self._keys = keys

    def routes(self) -> list[Route]:
        return [COST_FORECAST.route(self.forecast), UNIT_ECONOMICS.route(self.economics)]

    async def forecast(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        tenant = scoped_tenant(principal, COST_FORECAST.arg(request, "tenant"))
        now = self._policy.now()
        budgets = await self._policy.report.budgets(tenant)
        forecasts, skipped = await asyncio.to_thread(
            budget_forecasts, self._engine, budgets, now, tenant
        )
        signals = forecast_signals(forecasts, now)
        return json_response(
            {
                "at": now.isoformat(),
                "tenant": tenant,
                "data": [f.view() for f in forecasts],
                "not_forecast": skipped,
                "signals": [
                    {
                        "source": s.source,
                        "dedup_key": s.dedup_key,
                        "severity": s.severity,
                        "firing": s.firing,
                        "summary": s.summary,
                    }
                    for s in signals
                ],
            }
        )

    async def economics(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        window_text = request.query_params.get("window") or "30d"
        window = UNIT_ECONOMICS.arg(request, "window")
        group_by = UNIT_ECONOMICS.arg(request, "group_by")
        tenant = scoped_tenant(principal, UNIT_ECONOMICS.arg(request, "tenant"))
        now = datetime.now(UTC)
        since = minute_of((now - window).timestamp())
        groups, total = await asyncio.to_thread(
            unit_economics, self._engine, since, group_by, tenant
        )
        return json_response(
            {
                "window": window_text,
                "group_by": group_by,
                "from": since.isoformat(),
                "to": now.isoformat(),
                "tenant": tenant,
                "groups": groups,
                "total": total,
                "notes": [SESSIONS_NOTE],
            }
        )
