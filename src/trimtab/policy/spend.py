"""Budget spend per scope from stored telemetry: one grouped query per scope kind."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select

from trimtab.store.tables import api_keys, requests, rollups

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
