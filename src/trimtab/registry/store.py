"""The registry's tables: routes, their immutable versions and their timeline.

Applying a routes file is apply.py; a route's scope and who reaches it, scope.py; the rows
read back, rows.py; the timeline, timeline.py.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select

from trimtab.registry.apply import ApplyResult, OnChange, apply_one
from trimtab.registry.bundle import Bundle
from trimtab.registry.rows import CanaryRow, EventRow, RouteRow, StableRow, VersionRow
from trimtab.registry.scope import Applier, RouteKey
from trimtab.registry.spec import RouteDefinition
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollouts, route_events, route_versions, routes
from trimtab.types import SHARED


class RouteStore:
    """Reads and writes `routes`, `route_versions` and `route_events`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- writing -----------------------------------------------------------------------

    def apply(
        self,
        definitions: Iterable[RouteDefinition],
        *,
        applier: Applier,
        message: str,
        on_change: OnChange | None = None,
        now: datetime | None = None,
    ) -> list[ApplyResult]:
        """Apply routes in one transaction (all or none); `on_change` runs inside it.

        Raises RouteForbidden, and IntegrityError when another process created the same
        route or version at the same moment (the caller may retry).
        """
        at = now or datetime.now(UTC)
        results: list[ApplyResult] = []
        with self.engine.begin() as conn:
            # a fixed order of row locks: two applies of the same routes cannot deadlock
            for d in sorted(definitions, key=lambda d: d.name):
                result = apply_one(conn, d, applier, message, at)
                if on_change is not None:
                    on_change(conn, result)
                results.append(result)
        return results

    # -- reading -----------------------------------------------------------------------

    def _latest(self) -> Any:
        v = route_versions.c
        return (
            select(v.scope, v.route, func.max(v.number).label("latest"))
            .group_by(v.scope, v.route)
            .subquery()
        )

    def list_routes(self, tenant: str, admin: bool) -> list[RouteRow]:
        """The routes a caller sees, by name (a shared one before a tenant's own)."""
        latest = self._latest()
        query = (
            select(routes, latest.c.latest)
            .outerjoin(
                latest, and_(latest.c.scope == routes.c.scope, latest.c.route == routes.c.name)
            )
            .order_by(routes.c.name, routes.c.scope)
        )
        if not admin:
            query = query.where(routes.c.scope.in_((SHARED, tenant)))
        with self.engine.connect() as conn:
            return [RouteRow.of(r, r["latest"]) for r in conn.execute(query).mappings()]

    def get_route(self, key: RouteKey) -> RouteRow | None:
        v = route_versions.c
        with self.engine.connect() as conn:
            row = conn.execute(select(routes).where(key.where(routes, "name"))).mappings().first()
            if row is None:
                return None
            latest = conn.execute(
                select(func.max(v.number)).where(key.where(route_versions))
            ).scalar()
        return RouteRow.of(row, latest)

    def resolve(
        self, name: str, tenant: str, admin: bool, asked: str | None = None
    ) -> RouteRow | None:
        """The route a caller of `tenant` means by `name`: its own tenant's, else the shared
        one. `asked` picks a scope instead (a tenant, or "" for the shared route); only an
        admin may pick another tenant's. None when there is none the caller may see."""
        if asked is not None:
            if not (admin or asked in (SHARED, tenant)):
                return None
            return self.get_route(RouteKey(asked, name))
        return self.get_route(RouteKey(tenant, name)) or self.get_route(RouteKey(SHARED, name))

    def versions(self, key: RouteKey) -> list[VersionRow]:
        """Every version of a route, newest first."""
        v = route_versions.c
        query = select(route_versions).where(key.where(route_versions)).order_by(v.number.desc())
        with self.engine.connect() as conn:
            return [VersionRow.of(r) for r in conn.execute(query).mappings()]

    def version(self, key: RouteKey, number: int) -> VersionRow | None:
        v = route_versions.c
        query = select(route_versions).where(key.where(route_versions), v.number == number)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else VersionRow.of(row)

    def events(self, key: RouteKey, after: int | None = None, limit: int = 1000) -> list[EventRow]:
        """A route's timeline, oldest first, from the event after `after`."""
        e = route_events.c
        query = select(route_events).where(key.where(route_events))
        if after is not None:
            query = query.where(e.id > after)
        query = query.order_by(e.id).limit(limit)
        with self.engine.connect() as conn:
            return [
                EventRow(
                    r["id"],
                    r["route"],
                    as_utc(r["at"]),
                    r["kind"],
                    r["version"],
                    r["actor"],
                    r["reason"],
                    r["detail"],
                )
                for r in conn.execute(query).mappings()
            ]

    # -- the gateway's snapshot --------------------------------------------------------

    def stable_rows(self) -> list[StableRow]:
        """Every route with a stable version: small rows, no bundles."""
        r, v = routes.c, route_versions.c
        columns = (r.scope, r.name, r.owner, r.risk_tier, v.number, v.digest, r.storage_bodies)
        query = select(*columns).join(
            route_versions,
            and_(v.scope == r.scope, v.route == r.name, v.number == r.stable_version),
        )
        with self.engine.connect() as conn:
            return [StableRow(*row) for row in conn.execute(query)]

    def canary_rows(self) -> list[CanaryRow]:
        """Rollouts running or paused: the candidate and the share of traffic it gets."""
        o, v = rollouts.c, route_versions.c
        query = select(o.scope, o.route, o.id, o.candidate_version, v.digest, o.plan, o.stage).join(
            route_versions,
            and_(v.scope == o.scope, v.route == o.route, v.number == o.candidate_version),
        )
        query = query.where(o.status.in_(("running", "paused")))
        with self.engine.connect() as conn:
            return [
                CanaryRow(
                    RouteKey(scope, route),
                    rid,
                    number,
                    digest,
                    float(plan["stages"][stage]["percent"]),
                    plan.get("assignment", "first_seen") == "first_seen",
                )
                for scope, route, rid, number, digest, plan, stage in conn.execute(query)
            ]

    def bundles(
        self, wanted: Collection[tuple[RouteKey, int]]
    ) -> dict[tuple[RouteKey, int], Bundle]:
        """The bundles of the given (route, number) pairs."""
        v = route_versions.c
        out: dict[tuple[RouteKey, int], Bundle] = {}
        pairs = list(wanted)
        with self.engine.connect() as conn:
            for start in range(0, len(pairs), 200):
                chunk = pairs[start : start + 200]
                where = or_(*(and_(key.where(route_versions), v.number == n) for key, n in chunk))
                query = select(v.scope, v.route, v.number, v.bundle).where(where)
                for scope, name, number, bundle in conn.execute(query):
                    out[(RouteKey(scope, name), number)] = Bundle.from_json(bundle)
        return out
