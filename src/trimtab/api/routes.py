"""/api/routes: apply routes files; read routes, versions, diffs and timelines.

Writing needs a key of role operator or admin; reading, viewer, operator or admin. A key
sees shared routes and its own tenant's (an admin sees all); a route it may not see
answers 404, as if it did not exist. Route names are per tenant: `/api/routes/NAME` is the
caller's tenant's route NAME, else the shared one; `?tenant=T` picks tenant T's (an admin
may pick any) and `?tenant=` the shared one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import audit_event, json_response, operator, reader
from trimtab.api.endpoints import (
    APPLY_ROUTES,
    DIFF,
    GET_ROUTE,
    GET_VERSION,
    LIST_ROUTES,
    LIST_VERSIONS,
    ROUTE,
    ROUTE_TENANT,
    TIMELINE,
)
from trimtab.api.errors import change
from trimtab.api.models import APPLY_MESSAGE_CHARS, SOURCE_CHARS
from trimtab.api.params import bad_param
from trimtab.audit.log import AuditLog
from trimtab.auth.keyring import KeyRing
from trimtab.errors import Forbidden, Invalid, NotFound, Unavailable
from trimtab.registry.apply import ApplyResult, RouteForbidden
from trimtab.registry.diff import diff_bundles
from trimtab.registry.rows import RouteRow, VersionRow, label
from trimtab.registry.scope import Applier
from trimtab.registry.spec import RouteDefinition, RoutesError, load_routes, parse_routes
from trimtab.registry.store import RouteStore
from trimtab.rollouts.table import RouteCache
from trimtab.types import Principal, new_request_id

log = logging.getLogger(__name__)

_APPLY_ATTEMPTS = 3


def acted_by(principal: Principal) -> str | None:
    """Whom a change is attributed to: the acting key's owner, else its id."""
    return principal.owner or principal.key_id


class RoutesAPI:
    def __init__(
        self,
        store: RouteStore,
        cache: RouteCache,
        keys: KeyRing,
        audit: AuditLog,
        models: Collection[str],
    ) -> None:
        self._store = store
        self._cache = cache
        self._keys = keys
        self._audit = audit
        self._models = frozenset(models)
        self._apply_lock = asyncio.Lock()  # one apply at a time in this process

    def routes(self) -> list[Route]:
        return [
            APPLY_ROUTES.route(self.apply),
            LIST_ROUTES.route(self.list_routes),
            GET_ROUTE.route(self.get_route),
            LIST_VERSIONS.route(self.list_versions),
            GET_VERSION.route(self.get_version),
            DIFF.route(self.diff),
            TIMELINE.route(self.timeline),
        ]

    # -- who may -------------------------------------------------------------------------

    async def _route(self, request: Request, principal: Principal) -> RouteRow:
        name, asked = ROUTE.of(request), ROUTE_TENANT.of(request)
        row = await run_in_threadpool(
            self._store.resolve, name, principal.tenant, principal.is_admin, asked
        )
        if row is None:
            raise NotFound(f"no route named '{name}'")
        return row

    # -- writing -------------------------------------------------------------------------

    async def _definitions(self, request: Request) -> tuple[list[RouteDefinition], str]:
        body = await APPLY_ROUTES.json(request)
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise bad_param("message", "is required: say why these routes change")
        if len(message) > APPLY_MESSAGE_CHARS:
            raise bad_param("message", f"must be at most {APPLY_MESSAGE_CHARS} characters")
        source = body.get("source", "request body")
        if not isinstance(source, str) or not source or len(source) > SOURCE_CHARS:
            raise bad_param("source", f"must be a file name of at most {SOURCE_CHARS} characters")
        text, routes = body.get("yaml"), body.get("routes")
        if (text is None) == (routes is None):
            raise bad_param("yaml", "give either 'yaml' (the text of a routes file) or 'routes'")
        try:
            if text is not None:
                if not isinstance(text, str):
                    raise bad_param("yaml", "must be the text of a routes file")
                definitions = load_routes(text, source, self._models)
            else:
                definitions = parse_routes({"routes": routes}, source, self._models)
        except RoutesError as exc:
            raise Invalid(str(exc), code="invalid_routes") from None
        return definitions, message.strip()

    async def apply(self, request: Request) -> Response:
        rid = new_request_id()
        principal = operator(self._keys, request, "apply routes")
        definitions, message = await self._definitions(request)
        applier = Applier(acted_by(principal), principal.tenant, principal.is_admin)

        def audit(conn: Connection, result: ApplyResult) -> None:
            event = audit_event(
                request,
                principal,
                "route.apply",
                target=result.route,
                tenant=result.tenant,
                detail={
                    "status": result.status,
                    "version": result.version,
                    "digest": result.digest,
                    "updated": result.updated,
                    "message": message,
                },
                request_id=rid,
            )
            self._audit.write(conn, event)

        def work() -> list[ApplyResult]:
            return self._store.apply(definitions, applier=applier, message=message, on_change=audit)

        async with self._apply_lock:
            results = await self._apply(work)
        await self._cache.refresh()  # this process serves the change from now on
        for r in results:
            if r.status != "unchanged":
                by = applier.actor or "anonymous (keys off)"
                log.info("route %s: %s v%s by %s", r.route, r.status, r.version, by)
        return json_response({"routes": [r.view() for r in results], "message": message}, 200, rid)

    async def _apply(self, work: Callable[[], list[ApplyResult]]) -> list[ApplyResult]:
        failure = "IntegrityError"
        for _ in range(_APPLY_ATTEMPTS):
            try:
                return await change(work, conflicts=True)
            except IntegrityError as exc:
                # another gateway created the same route or version meanwhile: the next
                # attempt sees it. The same refusal every time is not a race.
                failure = type(exc.orig).__name__
                continue
            except RouteForbidden as exc:
                raise Forbidden(str(exc)) from None
        raise Unavailable(
            f"the store refused these routes {_APPLY_ATTEMPTS} times ({failure}); nothing changed",
            code="store_unavailable",
        )

    # -- reading -------------------------------------------------------------------------

    async def list_routes(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read routes")
        rows = await run_in_threadpool(
            self._store.list_routes, principal.tenant, principal.is_admin
        )
        return json_response({"data": [r.view() for r in rows]})

    async def get_route(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read routes")
        row = await self._route(request, principal)
        stable = None
        if row.stable_version is not None:
            version = await run_in_threadpool(self._store.version, row.key, row.stable_version)
            stable = None if version is None else version.view(row.stable_version)
        return json_response({**row.view(), "stable": stable})

    async def list_versions(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read routes")
        row = await self._route(request, principal)
        versions = await run_in_threadpool(self._store.versions, row.key)
        data = [v.view(row.stable_version, with_bundle=False) for v in versions]
        return json_response({"route": row.name, "data": data})

    async def _version(self, row: RouteRow, number: int, param: str) -> VersionRow:
        version = await run_in_threadpool(self._store.version, row.key, number)
        if version is None:
            latest = label(row.latest_version) or "none"
            raise NotFound(
                f"route '{row.name}' has no version v{number} (latest: {latest})",
                param=param,
            )
        return version

    async def get_version(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read routes")
        number = GET_VERSION.arg(request, "number")
        row = await self._route(request, principal)
        assert number is not None
        version = await self._version(row, number, "version")
        return json_response(version.view(row.stable_version))

    async def diff(self, request: Request) -> Response:
        """?from=&to=: `to` defaults to the newest version, `from` to `to`'s parent."""
        principal = reader(self._keys, request, "read routes")
        first = DIFF.arg(request, "from")
        second = DIFF.arg(request, "to")
        row = await self._route(request, principal)
        if second is None:
            second = row.latest_version
            if second is None:
                raise NotFound(f"route '{row.name}' has no versions")
        after = await self._version(row, second, "to")
        if first is None:
            if after.parent is None:
                raise bad_param("from", f"v{second} has no parent version; give from=")
            first = after.parent
        before = await self._version(row, first, "from")
        changes = diff_bundles(before.bundle, after.bundle, f"v{first}", f"v{second}")
        return json_response({"route": row.name, **changes.view()})

    async def timeline(self, request: Request) -> Response:
        """?after=<event id>&limit=: a route's events, oldest first."""
        principal = reader(self._keys, request, "read routes")
        after = TIMELINE.arg(request, "after")
        limit = TIMELINE.arg(request, "limit")
        row = await self._route(request, principal)
        events = await run_in_threadpool(self._store.events, row.key, after, limit + 1)
        more = len(events) > limit
        events = events[:limit]
        next_after = events[-1].id if more else None
        return json_response(
            {"route": row.name, "data": [e.view() for e in events], "next_after": next_after}
        )
