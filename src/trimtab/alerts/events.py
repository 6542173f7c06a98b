"""The budget events table: each threshold crossing, recorded once by whichever process saw it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from trimtab.store.engine import as_utc
from trimtab.store.tables import budget_events


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
