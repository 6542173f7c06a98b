"""GET /api/costs, /api/budgets and /api/budget-events, scoped to the caller's tenant."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.alerts.events import list_events
from trimtab.api.access import json_response, reader, scoped_tenant
from trimtab.api.endpoints import BUDGET_EVENTS, BUDGETS, COSTS
from trimtab.auth.keyring import KeyRing
from trimtab.policy.service import Policy
from trimtab.telemetry.costs import CostRow, costs_by
from trimtab.telemetry.rollups import minute_of


class CostsAPI:
    """Spend from the per-minute rollups; budgets and their alerts from the policy."""

    def __init__(self, engine: Engine, policy: Policy, keys: KeyRing) -> None:
        self._engine = engine
        self._policy = policy
        self._keys = keys

    def routes(self) -> list[Route]:
        return [
            COSTS.route(self.costs),
            BUDGETS.route(self.budgets),
            BUDGET_EVENTS.route(self.budget_events),
        ]

    async def costs(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        window_text = request.query_params.get("window") or "30d"
        window = COSTS.arg(request, "window")
        group_by = COSTS.arg(request, "group_by")
        tenant = scoped_tenant(principal, COSTS.arg(request, "tenant"))
        now = datetime.now(UTC)
        since = minute_of((now - window).timestamp())
        rows = await asyncio.to_thread(costs_by, self._engine, since, group_by, tenant)
        total = CostRow()
        groups: list[dict[str, Any]] = []
        for value, row in rows.items():
            total.add(row)
            groups.append({group_by: value if value != "" else None, **_view(row)})
        if group_by == "day":
            groups.sort(key=lambda g: str(g["day"]))
        else:
            groups.sort(key=lambda g: (-g["cost_usd"], -g["requests"], str(g[group_by])))
        return json_response(
            {
                "window": window_text,
                "group_by": group_by,
                "from": since.isoformat(),
                "to": now.isoformat(),
                "tenant": tenant,
                "groups": groups,
                "total": _view(total),
            }
        )

    async def budgets(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        tenant = scoped_tenant(principal, BUDGETS.arg(request, "tenant"))
        report = await self._policy.report.budgets(tenant)
        return json_response(
            {"at": self._policy.now().isoformat(), "tenant": tenant, "data": report}
        )

    async def budget_events(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        tenant = scoped_tenant(principal, BUDGET_EVENTS.arg(request, "tenant"))
        since = BUDGET_EVENTS.arg(request, "since")
        limit = BUDGET_EVENTS.arg(request, "limit")
        scopes: set[str] | None = None
        if tenant is not None:
            keys = await self._policy.report.tenant_key_ids(tenant)
            scopes = {f"tenant:{tenant}", *(f"key:{k}" for k in keys)}
        rows = await asyncio.to_thread(list_events, self._engine, since, scopes, limit)
        return json_response({"tenant": tenant, "data": rows})


def _view(row: CostRow) -> dict[str, float | int]:
    return {
        "cost_usd": round(row.cost_usd, 10),
        "requests": row.requests,
        "errors": row.errors,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
    }
