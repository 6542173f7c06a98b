"""Applying a routes file: each definition becomes a new version of its route only when
the bundle's digest differs from the route's newest version.

Versions are numbered 1, 2, ... per route, and a route's first version becomes its stable
version. Every change writes a row to the route's timeline in the same transaction;
`RouteStore.apply` runs the whole file in one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from trimtab.errors import Forbidden
from trimtab.registry.scope import Applier, RouteKey
from trimtab.registry.spec import RouteDefinition
from trimtab.registry.timeline import append_event
from trimtab.store.tables import route_versions, routes
from trimtab.types import SHARED


class RouteForbidden(Forbidden):
    """The caller's key may not make this change (a shared route, or another tenant's
    namespace)."""


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


OnChange = Callable[[Connection, ApplyResult], None]


def scope_for(conn: Connection, d: RouteDefinition, applier: Applier) -> str:
    """Where a definition goes: an operator's to its own tenant; an admin's to the
    file's `tenant:`, else, as names resolve, to the admin's tenant's route of that
    name if there is one, else to the shared one."""
    if applier.admin:
        if d.tenant is not None:
            return d.tenant
        own = RouteKey(applier.tenant, d.name)
        return own.scope if _exists(conn, own) else SHARED
    if d.tenant is not None and d.tenant != applier.tenant:
        raise RouteForbidden(
            f"route '{d.name}': a key of tenant '{applier.tenant}' may only create "
            f"routes of its own tenant, not of tenant '{d.tenant}'"
        )
    return applier.tenant


def apply_one(
    conn: Connection, d: RouteDefinition, applier: Applier, message: str, at: datetime
) -> ApplyResult:
    key = RouteKey(scope_for(conn, d, applier), d.name)
    row = (
        conn.execute(select(routes).where(key.where(routes, "name")).with_for_update())
        .mappings()
        .first()
    )
    new_route = row is None
    updated: dict[str, list[Any]] = {}
    tenant = key.tenant
    if row is None:
        if not applier.admin and _exists(conn, RouteKey(SHARED, d.name)):
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
                storage_bodies=d.storage_bodies,
                created_at=at,
                created_by=applier.actor,
                updated_at=at,
            )
        )
        stable: int | None = None
    else:
        for name, value in (
            ("owner", d.owner),
            ("risk_tier", d.risk_tier),
            ("storage_bodies", d.storage_bodies),
        ):
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
        values: dict[str, Any] = {
            "owner": d.owner,
            "risk_tier": d.risk_tier,
            "storage_bodies": d.storage_bodies,
        }
        if updated:
            conn.execute(
                update(routes).where(key.where(routes, "name")).values(**values, updated_at=at)
            )
            append_event(
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
        .values(
            owner=d.owner,
            risk_tier=d.risk_tier,
            storage_bodies=d.storage_bodies,
            updated_at=at,
            stable_version=stable,
        )
    )
    detail: dict[str, Any] = {"digest": digest, "parent": parent, "stable": became_stable}
    if same_as is not None:
        detail["same_as"] = same_as
    if updated:
        detail["updated"] = updated
    append_event(
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


def _exists(conn: Connection, key: RouteKey) -> bool:
    found = conn.execute(select(routes.c.name).where(key.where(routes, "name"))).first()
    return found is not None
