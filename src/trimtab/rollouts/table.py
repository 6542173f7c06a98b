"""The gateway's in-memory routes: what `route:NAME` resolves to, without touching the store.

`RouteTable` holds an immutable snapshot (RouteKey -> RouteEntry) that is replaced as a
whole, so a request sees either the old or the new snapshot, never a mix. `RouteCache`
rebuilds it from the store every `refresh_s` in a background task (the queries run in a
thread) and at once after a change made through this process's API. Versions are
immutable, so a refresh reads only the small `routes` rows and fetches the bundle of a
version it has not seen yet. When the store does not answer, the last snapshot keeps
serving.

Route names are per tenant: `route:NAME` from a caller of tenant T is T's own route NAME
when T has one, else the shared route NAME (a tenant's own route shadows a shared one).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from trimtab.canary.assignment import on_candidate
from trimtab.refresher import Refresher
from trimtab.registry.bundle import Bundle
from trimtab.registry.scope import RouteKey, visible
from trimtab.registry.store import RouteStore
from trimtab.types import SHARED

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Version:
    """One immutable version of a route, as the gateway serves it."""

    route: str
    number: int
    digest: str
    bundle: Bundle

    @property
    def label(self) -> str:
        """The name telemetry records it under: "v1", "v2", ..."""
        return f"v{self.number}"


@dataclass(frozen=True, slots=True)
class Canary:
    """A rollout in progress: `percent` of callers are served the candidate; with
    `remember`, each caller keeps the version it was first given (the plan's
    `assignment: first_seen`), else the one its bucket gives at the current stage."""

    rollout_id: str
    candidate: Version
    percent: float
    remember: bool = False


@dataclass(frozen=True, slots=True)
class RouteEntry:
    name: str
    tenant: str | None  # None: shared by every tenant
    owner: str
    risk_tier: int
    stable: Version
    canary: Canary | None = None
    storage_bodies: str | None = None  # the route's storage.bodies (privacy/storage.py)

    @property
    def key(self) -> RouteKey:
        return RouteKey.of(self.tenant, self.name)


class RouteTable:
    """A snapshot of every route with a stable version, swapped atomically."""

    def __init__(self, entries: Mapping[RouteKey, RouteEntry] | None = None) -> None:
        self._routes: Mapping[RouteKey, RouteEntry] = MappingProxyType(dict(entries or {}))

    def install(self, entries: Mapping[RouteKey, RouteEntry]) -> None:
        """Replace the whole snapshot (one reference assignment: atomic for readers)."""
        self._routes = MappingProxyType(dict(entries))

    def get(self, name: str, tenant: str | None = None) -> RouteEntry | None:
        """What `route:NAME` means to a caller of `tenant`: its tenant's own route, else
        the shared one (tenant None: the shared one)."""
        if tenant is not None and tenant != SHARED:
            own = self._routes.get(RouteKey(tenant, name))
            if own is not None:
                return own
        return self._routes.get(RouteKey(SHARED, name))

    def entries(self) -> Mapping[RouteKey, RouteEntry]:
        return self._routes

    def names(self, tenant: str | None = None) -> list[str]:
        """Route names, sorted, each once; with `tenant`, those a caller of that tenant
        may call."""
        return sorted(
            {
                key.name
                for key, entry in self._routes.items()
                if tenant is None or visible(entry.tenant, tenant, admin=False)
            }
        )

    def version_for(
        self, route: str | RouteEntry, sticky_key: str | None = None, tenant: str | None = None
    ) -> Version:
        """The version that serves this request: during a rollout, the candidate for the
        callers whose bucket falls within the stage's percentage (rollouts/assignment.py);
        the gateway first looks up a remembered assignment. `route` is an entry, or a name
        as a caller of `tenant` means it. Raises KeyError if unknown."""
        entry = route if isinstance(route, RouteEntry) else self.get(route, tenant)
        if entry is None:
            raise KeyError(route)
        canary = entry.canary
        if (
            canary is not None
            and sticky_key is not None
            and on_candidate(canary.rollout_id, sticky_key, canary.percent)
        ):
            return canary.candidate
        return entry.stable


def warn_unserved(table: RouteTable, models: Collection[str]) -> list[str]:
    """Log a WARNING for each route whose stable version serves a model missing from
    `models` (e.g. applied under another configuration): every call to it would fail.
    Returns the warnings."""
    out = []
    for key, entry in sorted(table.entries().items(), key=lambda kv: (kv[0].scope, kv[0].name)):
        model = entry.stable.bundle.model
        if model in models:
            continue
        tenant = entry.tenant if entry.tenant is not None else "shared (every tenant)"
        message = (
            f"route '{key.name}' (tenant {tenant}): its stable version "
            f"{entry.stable.label} serves model '{model}', which this gateway does not "
            f"configure; calls to route:{key.name} will fail until a version with a "
            "configured model is applied, or the model is configured"
        )
        log.warning("%s", message)
        out.append(message)
    return out


class RouteCache(Refresher):
    """Keeps a RouteTable in step with the store."""

    def __init__(self, store: RouteStore, table: RouteTable, *, refresh_s: float = 1.0) -> None:
        super().__init__("route store", refresh_s)
        self._store = store
        self.table = table

    async def reload(self) -> None:
        self.table.install(await asyncio.to_thread(self._load, self.table.entries()))

    def _load(self, current: Mapping[RouteKey, RouteEntry]) -> dict[RouteKey, RouteEntry]:
        rows = self._store.stable_rows()
        canaries = self._store.canary_rows()
        known = {(e.key, e.stable.number): e.stable for e in current.values()}
        known.update(
            {
                (e.key, e.canary.candidate.number): e.canary.candidate
                for e in current.values()
                if e.canary
            }
        )
        wanted = [(r.key, r.number, r.digest) for r in rows]
        wanted += [(c.key, c.number, c.digest) for c in canaries]
        missing = [
            (key, number)
            for key, number, digest in wanted
            if (key, number) not in known or known[(key, number)].digest != digest
        ]
        fetched = self._store.bundles(missing) if missing else {}

        def version(key: RouteKey, number: int, digest: str) -> Version | None:
            bundle = fetched.get((key, number))
            if bundle is not None:
                return Version(key.name, number, digest, bundle)
            return known.get((key, number))

        by_route = {c.key: c for c in canaries}
        out: dict[RouteKey, RouteEntry] = {}
        for r in rows:
            stable = version(r.key, r.number, r.digest)
            if stable is None:
                continue
            canary = None
            c = by_route.get(r.key)
            if c is not None:
                candidate = version(c.key, c.number, c.digest)
                if candidate is not None:
                    canary = Canary(c.rollout_id, candidate, c.percent, c.remember)
            entry = RouteEntry(
                r.name, r.key.tenant, r.owner, r.risk_tier, stable, canary, r.storage_bodies
            )
            out[r.key] = entry
        return out

    def problem(self) -> str | None:
        """A readiness problem, or None when the routes are current."""
        age = self.age_s()
        outage = self.outage()
        if outage is not None:
            if math.isinf(age):
                return f"{outage}; no routes"
            return f"{outage}; routes are served from a snapshot {age:.0f}s old"
        if self.stalled():
            return f"route table not refreshed for {age:.0f}s"
        return None
