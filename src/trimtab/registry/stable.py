"""Which version a route serves (`routes.stable_version`): moved only here, inside the
caller's transaction — by a promotion or a rollback (rollouts/store.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update

from trimtab.registry.scope import RouteKey
from trimtab.store.tables import routes


def set_stable(
    conn: Connection, route: RouteKey, version: int, *, previous: int | None, at: datetime
) -> None:
    """Serve `version` from now on; `previous` stays pinned as where a rollback returns."""
    conn.execute(
        update(routes)
        .where(route.where(routes, "name"))
        .values(stable_version=version, previous_stable_version=previous, updated_at=at)
    )
