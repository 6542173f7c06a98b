"""The read side of budgets (the budgets API): each configured budget with this period's
spend and reservations per scope value."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from trimtab.config import BudgetConfig
from trimtab.policy.budgets import Span, budget_key, period_span
from trimtab.policy.spend import spend_by, stored_key_ids
from trimtab.state.base import SharedState


class BudgetReport:
    """Reads budget state (shared state) and this period's spend (the store)."""

    def __init__(
        self,
        budgets: Sequence[BudgetConfig],
        state: SharedState,
        engine: Engine,
        key_tenants: Mapping[str, str],
        now: Callable[[], datetime],
    ) -> None:
        self._budgets = list(budgets)
        self._state = state
        self._engine = engine
        self._key_tenants = dict(key_tenants)
        self._now = now

    async def budgets(self, tenant: str | None) -> list[dict[str, Any]]:
        """Every configured budget with this period's spend per scope value.

        With `tenant`, only budgets on that tenant and on its keys (feature, route and
        model budgets span tenants). For `*` scopes, the values with spend this period in
        the store (and, with `tenant`, the tenant itself).
        """
        now = self._now()
        seen: dict[tuple[str, str], dict[str, float]] = {}
        tenant_keys: set[str] | None = None
        out: list[dict[str, Any]] = []
        for budget in self._budgets:
            kind, _, name = budget.scope.partition(":")
            if tenant is not None and kind not in ("tenant", "key"):
                continue
            span = period_span(budget.period, now)
            if name == "*":
                if (kind, budget.period) not in seen:
                    seen[(kind, budget.period)] = await asyncio.to_thread(
                        spend_by, self._engine, kind, span.start, tenant
                    )
                values = set(seen[(kind, budget.period)])
                if tenant is not None and kind == "tenant":
                    values = {tenant}
            else:
                values = {name}
                if tenant is not None and kind == "tenant" and name != tenant:
                    continue
                if tenant is not None and kind == "key":
                    if tenant_keys is None:
                        tenant_keys = await self.tenant_key_ids(tenant)
                    if name not in tenant_keys:
                        continue
            out.append(await self._one(budget, kind, sorted(values), span))
        return out

    async def _one(
        self, budget: BudgetConfig, kind: str, values: list[str], span: Span
    ) -> dict[str, Any]:
        keys = [budget_key(f"{kind}:{v}", span) for v in values]
        statuses = await asyncio.gather(*(self._state.budget_status(k) for k in keys))
        entries: list[dict[str, Any]] = []
        for value, status in zip(values, statuses, strict=True):
            spent = status.spent if status is not None else 0.0
            reserved = status.reserved if status is not None else 0.0
            entries.append(
                {
                    "scope": f"{kind}:{value}",
                    "spent_usd": round(spent, 6),
                    "reserved_usd": round(reserved, 6),
                    "used": round(spent / budget.usd, 6),
                    "exceeded": spent >= budget.usd,
                }
            )
        entries.sort(key=lambda e: (-e["spent_usd"], e["scope"]))
        return {
            "scope": budget.scope,
            "period": budget.period,
            "period_start": span.start.isoformat(),
            "period_end": span.end.isoformat(),
            "limit_usd": budget.usd,
            "on_exceed": budget.on_exceed,
            "values": entries,
        }

    async def tenant_key_ids(self, tenant: str) -> set[str]:
        """Ids of a tenant's keys: the configured ones and those created through the API."""
        stored = await asyncio.to_thread(stored_key_ids, self._engine, tenant)
        return stored | {k for k, t in self._key_tenants.items() if t == tenant}
