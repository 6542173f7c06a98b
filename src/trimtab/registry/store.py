"""The registry's tables: routes, their immutable versions and their timeline.

Applying a routes file creates a version of a route only when the bundle's digest differs
from the route's newest version; versions are numbered 1, 2, ... per route, and a route's
first version becomes its stable version. Every change to a route writes a row to
`route_events`, its timeline, in the same transaction.

A route is named within its scope: the tenant that owns it, or none for a route shared by
every tenant (`RouteKey`). Two tenants may each have a route `faq`; a caller's `faq` is
its own tenant's when there is one, else the shared one (`resolve`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update

from trimtab.registry.bundle import Bundle
from trimtab.registry.spec import RouteDefinition
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollouts, route_events, route_versions, routes
from trimtab.types import SHARED


class RouteForbidden(PermissionError):
    """The caller's key may not make this change (a shared route, or another tenant's
    namespace)."""


@dataclass(frozen=True, slots=True, order=True)
class RouteKey:
    """A route's identity: its scope (the owning tenant, "" when shared) and its name."""

    scope: str
    name: str

    @classmethod
    def of(cls, tenant: str | None, name: str) -> RouteKey:
        return cls(SHARED if tenant is None else tenant, name)

    @property
    def tenant(self) -> str | None:
        """The owning tenant; None for a shared route."""
        return self.scope if self.scope != SHARED else None

    def where(self, table: Any, column: str = "route") -> Any:
        """The SQL condition selecting this route's rows of `table`."""
        return and_(table.c.scope == self.scope, table.c[column] == self.name)

    def __str__(self) -> str:
        return self.name if self.scope == SHARED else f"{self.scope}/{self.name}"


def label(number: int | None) -> str | None:
    """How versions are named in telemetry and on the command line: v1, v2, ..."""
    return None if number is None else f"v{number}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


@dataclass(frozen=True, slots=True)
class Applier:
    """Who applies: the actor's name, its tenant, and whether it may write any route."""

    actor: str | None
    tenant: str
    admin: bool

    def may_write(self, route_tenant: str | None) -> bool:
        return self.admin or (route_tenant is not None and route_tenant == self.tenant)


def visible(route_tenant: str | None, tenant: str, admin: bool) -> bool:
    """Whether a caller of `tenant` sees (and may call) a route: shared or its own."""
    return admin or route_tenant is None or route_tenant == tenant


@dataclass(frozen=True, slots=True)
class RouteRow:
    name: str
    owner: str
    risk_tier: int
    tenant: str | None
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    stable_version: int | None
    previous_stable_version: int | None
    latest_version: int | None

    @classmethod
    def of(cls, row: Any, latest: int | None) -> RouteRow:
        return cls(
            row["name"],
            row["owner"],
            row["risk_tier"],
            row["scope"] if row["scope"] != SHARED else None,
            as_utc(row["created_at"]),
            row["created_by"],
            as_utc(row["updated_at"]),
            row["stable_version"],
            row["previous_stable_version"],
            latest,
        )

    @property
    def key(self) -> RouteKey:
        return RouteKey.of(self.tenant, self.name)

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner,
            "risk_tier": self.risk_tier,
            "tenant": self.tenant,
            "created_at": _iso(self.created_at),
            "created_by": self.created_by,
            "updated_at": _iso(self.updated_at),
            "stable_version": self.stable_version,
            "previous_stable_version": self.previous_stable_version,
            "latest_version": self.latest_version,
        }


@dataclass(frozen=True, slots=True)
class VersionRow:
    route: str
    number: int
    digest: str
    bundle: Bundle
    author: str | None
    message: str
    created_at: datetime
    parent: int | None

    @classmethod
    def of(cls, row: Any) -> VersionRow:
        return cls(
            row["route"],
            row["number"],
            row["digest"],
            Bundle.from_json(row["bundle"]),
            row["author"],
            row["message"],
            as_utc(row["created_at"]),
            row["parent"],
        )

    def view(self, stable: int | None, *, with_bundle: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "route": self.route,
            "number": self.number,
            "version": label(self.number),
            "digest": self.digest,
            "parent": self.parent,
            "author": self.author,
            "message": self.message,
            "created_at": _iso(self.created_at),
            "stable": self.number == stable,
            "variables": list(self.bundle.variables),
        }
        if with_bundle:
            out["bundle"] = self.bundle.to_json()
        return out


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    route: str
    at: datetime
    kind: str
    version: int | None
    actor: str | None
    reason: str | None
    detail: dict[str, Any] | None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "at": _iso(self.at),
            "kind": self.kind,
            "version": self.version,
            "actor": self.actor,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What applying one route did.

    status: "created" (a new version), "updated" (owner or risk tier only), "unchanged".
    """

    route: str
    status: str
    version: int  # the route's newest version after the apply
    digest: str
    parent: int | None
    stable_version: int | None
    tenant: str | None
    new_route: bool = False
    same_as: int | None = None  # an older version with the same content, if any
    updated: dict[str, list[Any]] = field(default_factory=dict)  # field: [before, after]
    variables: tuple[str, ...] = ()

    def view(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "status": self.status,
            "version": self.version,
            "digest": self.digest,
            "parent": self.parent,
            "stable_version": self.stable_version,
            "tenant": self.tenant,
            "new_route": self.new_route,
            "same_as": self.same_as,
            "updated": self.updated,
            "variables": list(self.variables),
        }

    @property
    def key(self) -> RouteKey:
        return RouteKey.of(self.tenant, self.route)


@dataclass(frozen=True, slots=True)
class StableRow:
    """A route as the gateway serves it: its metadata and its stable version's digest."""

    scope: str
    name: str
    owner: str
    risk_tier: int
    number: int
    digest: str

    @property
    def key(self) -> RouteKey:
        return RouteKey(self.scope, self.name)


@dataclass(frozen=True, slots=True)
class CanaryRow:
    """A rollout in progress as the gateway needs it."""

    key: RouteKey
    rollout_id: str
    number: int
    digest: str
    percent: float


OnChange = Callable[[Connection, ApplyResult], None]


class RouteStore:
    """Reads and writes `routes`, `route_versions` and `route_events`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- writing -----------------------------------------------------------------------

    @staticmethod
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
                result = self._apply_one(conn, d, applier, message, at)
                if on_change is not None:
                    on_change(conn, result)
                results.append(result)
        return results

    def scope_for(self, conn: Connection, d: RouteDefinition, applier: Applier) -> str:
        """Where a definition goes: an operator's to its own tenant; an admin's to the
        file's `tenant:`, else, as names resolve, to the admin's tenant's route of that
        name if there is one, else to the shared one."""
        if applier.admin:
            if d.tenant is not None:
                return d.tenant
            own = RouteKey(applier.tenant, d.name)
            return own.scope if self._exists(conn, own) else SHARED
        if d.tenant is not None and d.tenant != applier.tenant:
            raise RouteForbidden(
                f"route '{d.name}': a key of tenant '{applier.tenant}' may only create "
                f"routes of its own tenant, not of tenant '{d.tenant}'"
            )
        return applier.tenant

    def _apply_one(
        self, conn: Connection, d: RouteDefinition, applier: Applier, message: str, at: datetime
    ) -> ApplyResult:
        key = RouteKey(self.scope_for(conn, d, applier), d.name)
        row = (
            conn.execute(select(routes).where(key.where(routes, "name")).with_for_update())
            .mappings()
            .first()
        )
        new_route = row is None
        updated: dict[str, list[Any]] = {}
        tenant = key.tenant
        if row is None:
            if not applier.admin and self._exists(conn, RouteKey(SHARED, d.name)):
                # a tenant's own route would shadow the shared one for all its callers:
                # only an admin decides that (with `tenant:` in the file)
                raise RouteForbidden(
                    f"route '{d.name}' is shared by every tenant; only a key with role "
                    "'admin' may change it"
                )
            conn.execute(
                insert(routes).values(
                    scope=key.scope,
                    name=d.name,
                    owner=d.owner,
                    risk_tier=d.risk_tier,
                    created_at=at,
                    created_by=applier.actor,
                    updated_at=at,
                )
            )
            stable: int | None = None
        else:
            for name, value in (("owner", d.owner), ("risk_tier", d.risk_tier)):
                if row[name] != value:
                    updated[name] = [row[name], value]
            stable = row["stable_version"]
        v = route_versions.c
        latest = (
            conn.execute(
                select(v.number, v.digest)
                .where(key.where(route_versions))
                .order_by(v.number.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        digest = d.bundle.digest
        if latest is not None and latest["digest"] == digest:
            values: dict[str, Any] = {"owner": d.owner, "risk_tier": d.risk_tier}
            if updated:
                conn.execute(
                    update(routes).where(key.where(routes, "name")).values(**values, updated_at=at)
                )
                self.append_event(
                    conn,
                    key,
                    "update",
                    version=latest["number"],
                    actor=applier.actor,
                    reason=message,
                    detail={"updated": updated},
                    at=at,
                )
            return ApplyResult(
                d.name,
                "updated" if updated else "unchanged",
                latest["number"],
                digest,
                None,
                stable,
                tenant,
                new_route=new_route,
                updated=updated,
                variables=d.bundle.variables,
            )
        parent = None if latest is None else int(latest["number"])
        number = 1 if parent is None else parent + 1
        same_as = conn.execute(
            select(func.max(v.number)).where(key.where(route_versions), v.digest == digest)
        ).scalar()
        conn.execute(
            insert(route_versions).values(
                scope=key.scope,
                route=d.name,
                number=number,
                digest=digest,
                bundle=d.bundle.to_json(),
                author=applier.actor,
                message=message,
                created_at=at,
                parent=parent,
            )
        )
        became_stable = stable is None
        if became_stable:
            stable = number
        conn.execute(
            update(routes)
            .where(key.where(routes, "name"))
            .values(owner=d.owner, risk_tier=d.risk_tier, updated_at=at, stable_version=stable)
        )
        detail: dict[str, Any] = {"digest": digest, "parent": parent, "stable": became_stable}
        if same_as is not None:
            detail["same_as"] = same_as
        if updated:
            detail["updated"] = updated
        self.append_event(
            conn,
            key,
            "apply",
            version=number,
            actor=applier.actor,
            reason=message,
            detail=detail,
            at=at,
        )
        return ApplyResult(
            d.name,
            "created",
            number,
            digest,
            parent,
            stable,
            tenant,
            new_route=new_route,
            same_as=same_as,
            updated=updated,
            variables=d.bundle.variables,
        )

    @staticmethod
    def _exists(conn: Connection, key: RouteKey) -> bool:
        found = conn.execute(select(routes.c.name).where(key.where(routes, "name"))).first()
        return found is not None

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
        query = select(r.scope, r.name, r.owner, r.risk_tier, v.number, v.digest).join(
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
