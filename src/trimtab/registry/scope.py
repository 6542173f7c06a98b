"""Where a route lives and who reaches it.

A route is named within its scope: the tenant that owns it, or none for a route shared by
every tenant (`RouteKey`). Two tenants may each have a route `faq`; a caller's `faq` is
its own tenant's when there is one, else the shared one (`RouteStore.resolve`). A caller
sees shared routes and its tenant's (`visible`); an `Applier` writes its tenant's, an
admin any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_

from trimtab.types import SHARED


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
