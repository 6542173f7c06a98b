"""Retention's and erasure's queries on the tables telemetry owns (privacy/ runs them).

Each call is one short transaction over at most `limit` rows picked by their key, so the
writer thread's commits interleave with a long clean-up instead of waiting for it; each is
idempotent (a row already cleaned is not picked again), so two processes running the same
step at once do the work once between them and never fail for it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, or_, select, true, tuple_, update

from trimtab.store.tables import requests, rollups, session_costs
from trimtab.telemetry.hourly import mark_dirty

BODIES = ("request_body", "upstream_request_body", "response_body")


@dataclass(frozen=True, slots=True)
class Tenants:
    """Which tenants a step is for: exactly `only` (one tenant's own TTL), or every tenant
    but `but` (the default TTL, for the tenants that set none)."""

    only: str | None = None
    but: Collection[str] = ()

    def where(self, column: Any) -> ColumnElement[bool]:
        if self.only is not None:
            return column == self.only  # type: ignore[no-any-return]
        if self.but:
            return column.notin_(sorted(self.but))  # type: ignore[no-any-return]
        return true()


def null_bodies(engine: Engine, tenants: Tenants, before: datetime, limit: int) -> int:
    """Null the bodies of up to `limit` requests that started before `before`."""
    c = requests.c
    has_body = or_(*(c[name].isnot(None) for name in BODIES))
    picked = (
        select(c.id)
        .where(c.started_at < before, tenants.where(c.tenant), has_body)
        .limit(limit)
        .scalar_subquery()
    )
    with engine.begin() as conn:
        result = conn.execute(
            update(requests).where(c.id.in_(picked)).values({name: None for name in BODIES})
        )
    return int(result.rowcount or 0)


def delete_requests(engine: Engine, tenants: Tenants, before: datetime, limit: int) -> int:
    c = requests.c
    picked = (
        select(c.id).where(c.started_at < before, tenants.where(c.tenant)).limit(limit)
    ).scalar_subquery()
    with engine.begin() as conn:
        result = conn.execute(delete(requests).where(c.id.in_(picked)))
    return int(result.rowcount or 0)


def delete_rollups(engine: Engine, tenants: Tenants, before: datetime, limit: int) -> int:
    c = rollups.c
    picked = select(c.id, c.minute).where(c.minute < before, tenants.where(c.tenant)).limit(limit)
    with engine.begin() as conn:
        rows = conn.execute(picked).all()
        if not rows:
            return 0
        mark_dirty(conn, [minute for _, minute in rows])  # their hours are rebuilt
        result = conn.execute(delete(rollups).where(c.id.in_([i for i, _ in rows])))
    return int(result.rowcount or 0)


def delete_session_costs(engine: Engine, tenants: Tenants, before: datetime, limit: int) -> int:
    """Up to `limit` sessions whose last request was before `before` (with the rollups'
    TTL: a session leaves when all of it is older, so a late request cannot bring back
    part of one)."""
    c = session_costs.c
    key = tuple_(c.tenant, c.route, c.feature, c.session_key)
    picked = (
        select(c.tenant, c.route, c.feature, c.session_key)
        .where(c.last_minute < before, tenants.where(c.tenant))
        .limit(limit)
    )
    with engine.begin() as conn:
        rows = [tuple(r) for r in conn.execute(picked)]
        if not rows:
            return 0
        result = conn.execute(delete(session_costs).where(key.in_(rows)))
    return int(result.rowcount or 0)


# -- one person's requests: erasure and access ------------------------------------------


def _of_user(user: str, tenant: str | None) -> ColumnElement[bool]:
    c = requests.c
    cond = c.user_id == user
    return and_(cond, c.tenant == tenant) if tenant is not None else cond


def user_request_ids(engine: Engine, user: str, tenant: str | None, limit: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(requests.c.id).where(_of_user(user, tenant)).limit(limit)))


def delete_request_ids(engine: Engine, ids: Collection[str]) -> int:
    if not ids:
        return 0
    with engine.begin() as conn:
        result = conn.execute(delete(requests).where(requests.c.id.in_(list(ids))))
    return int(result.rowcount or 0)


def user_requests(
    engine: Engine, user: str, tenant: str | None, batch: int
) -> Iterator[dict[str, Any]]:
    """Every request row of the user, oldest first, read `batch` rows at a time."""
    c = requests.c
    after: tuple[datetime, str] | None = None
    while True:
        query = select(requests).where(_of_user(user, tenant))
        if after is not None:
            query = query.where(
                or_(c.started_at > after[0], and_(c.started_at == after[0], c.id > after[1]))
            )
        with engine.connect() as conn:
            rows = [
                dict(r)
                for r in conn.execute(query.order_by(c.started_at, c.id).limit(batch)).mappings()
            ]
        yield from rows
        if len(rows) < batch:
            return
        after = (rows[-1]["started_at"], rows[-1]["id"])
