"""What a rollout change reads and writes inside its transaction besides the rollout: the
route and version rows it acts on (404 when missing) and its audit row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from trimtab.audit.log import Actor, AuditLog
from trimtab.errors import NotFound
from trimtab.registry.scope import RouteKey
from trimtab.store.tables import route_versions, routes


def route_row(conn: Connection, route: RouteKey) -> Any:
    row = conn.execute(select(routes).where(route.where(routes, "name"))).first()
    if row is None:
        raise NotFound(f"no route '{route.name}'")
    return row


def version_row(conn: Connection, route: RouteKey, number: int) -> Any:
    v = route_versions.c
    row = conn.execute(
        select(route_versions).where(route.where(route_versions), v.number == number)
    ).first()
    if row is None:
        raise NotFound(f"route '{route.name}' has no version v{number}")
    return row


def audit(
    conn: Connection,
    by: Actor,
    action: str,
    route: RouteKey,
    detail: dict[str, Any],
) -> None:
    """The change's audit row, in its transaction: about the route's tenant (a shared
    route's: the actor's)."""
    event = by.event(action, target=route.name, tenant=route.tenant, detail=detail)
    AuditLog.write(conn, event)
