"""The registry's rows as read back: routes, versions, timeline events, and the small rows
of the gateway's snapshot (each stable version, each rollout in progress)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trimtab.registry.bundle import Bundle
from trimtab.registry.scope import RouteKey
from trimtab.store.engine import as_utc
from trimtab.types import SHARED


def label(number: int | None) -> str | None:
    """How versions are named in telemetry and on the command line: v1, v2, ..."""
    return None if number is None else f"v{number}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


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
class StableRow:
    """A route as the gateway serves it: its metadata and its stable version's digest."""

    scope: str
    name: str
    owner: str
    risk_tier: int
    number: int
    digest: str
    storage_bodies: str | None = None  # the route's storage.bodies, None: none of its own

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
    # the plan's assignment (canary/plans.py): a rollout stored before plans had one kept
    # the first version given, and keeps doing so
    remember: bool = False
