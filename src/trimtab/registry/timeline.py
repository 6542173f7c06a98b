"""A route's timeline (`route_events`): every change to a route appends one row, inside the
change's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert

from trimtab.registry.scope import RouteKey
from trimtab.store.tables import route_events


def append_event(
    conn: Connection,
    route: RouteKey,
    kind: str,
    *,
    version: int | None = None,
    actor: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append to a route's timeline inside the caller's transaction."""
    conn.execute(
        insert(route_events).values(
            scope=route.scope,
            route=route.name,
            at=at or datetime.now(UTC),
            kind=kind,
            version=version,
            actor=actor,
            reason=reason,
            detail=detail,
        )
    )
