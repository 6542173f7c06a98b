"""Budget spend per scope from stored telemetry, and the budget events table."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from trimtab.store.tables import api_keys, budget_events, requests, rollups
from trimtab.store.telemetry import as_utc

# the rollup column holding each budget scope kind ("model" is the model the client asked for)
_ROLLUP_COLUMNS = {"tenant": "tenant", "feature": "feature", "route": "route", "model": "model"}


def spend_by(
    engine: Engine, kind: str, since: datetime, tenant: str | None = None
) -> dict[str, float]:
    """Settled USD per value of a scope kind from `since` on: one grouped query.

    Tenants, features, routes and models come from the per-minute rollups; keys, which
    rollups do not carry, from the request rows (indexed by time).
    """
    if kind == "key":
        column = requests.c.key_id
        query = (
            select(column, func.coalesce(func.sum(requests.c.cost_usd), 0.0))
            .where(requests.c.started_at >= since, column.is_not(None))
            .group_by(column)
        )
        if tenant is not None:
            query = query.where(requests.c.tenant == tenant)
    elif kind in _ROLLUP_COLUMNS:
        column = rollups.c[_ROLLUP_COLUMNS[kind]]
        query = (
            select(column, func.coalesce(func.sum(rollups.c.cost_usd), 0.0))
            .where(rollups.c.minute >= since, column != "")
            .group_by(column)
        )
        if tenant is not None:
            query = query.where(rollups.c.tenant == tenant)
    else:
        raise ValueError(f"unknown budget scope kind '{kind}'")
    with engine.connect() as conn:
        return {str(value): float(total) for value, total in conn.execute(query)}


def stored_key_ids(engine: Engine, tenant: str) -> set[str]:
    """Ids of the keys created through the API for a tenant."""
    with engine.connect() as conn:
        return set(conn.scalars(select(api_keys.c.id).where(api_keys.c.tenant == tenant)))


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    at: datetime
    scope: str
    period: str
    period_start: datetime
    threshold: float
    spent_usd: float
    limit_usd: float
    on_exceed: str


def insert_event(engine: Engine, event: BudgetEvent) -> bool:
    """Record a threshold crossing; False when it was already recorded (by any process)."""
    values = {
        "at": event.at,
        "scope": event.scope,
        "period": event.period,
        "period_start": event.period_start,
        "threshold": event.threshold,
        "spent_usd": event.spent_usd,
        "limit_usd": event.limit_usd,
        "on_exceed": event.on_exceed,
    }
    with engine.begin() as conn:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        try:
            result = conn.execute(
                dialect_insert(budget_events).values(**values).on_conflict_do_nothing()
            )
        except IntegrityError:  # pragma: no cover - the conflict clause handles duplicates
            return False
        return bool(result.rowcount)


def list_events(
    engine: Engine, since: datetime | None, scopes: Collection[str] | None, limit: int
) -> list[dict[str, Any]]:
    """Budget events, newest first; `scopes` limits them to those concrete scopes."""
    query = select(budget_events).order_by(budget_events.c.at.desc(), budget_events.c.id.desc())
    if since is not None:
        query = query.where(budget_events.c.at >= since)
    if scopes is not None:
        if not scopes:
            return []
        query = query.where(budget_events.c.scope.in_(sorted(scopes)))
    with engine.connect() as conn:
        rows = conn.execute(query.limit(limit)).mappings().all()
    return [
        {
            "id": row["id"],
            "at": as_utc(row["at"]).isoformat(),
            "scope": row["scope"],
            "period": row["period"],
            "period_start": as_utc(row["period_start"]).isoformat(),
            "threshold": row["threshold"],
            "spent_usd": row["spent_usd"],
            "limit_usd": row["limit_usd"],
            "on_exceed": row["on_exceed"],
        }
        for row in rows
    ]
