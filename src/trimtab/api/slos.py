"""/api/slos: apply the `slos:` section of a file; read each SLO's status.

Applying needs a key of role operator or admin; reading, viewer, operator or admin. A
non-admin's SLOs belong to its tenant and judge only its tenant's traffic (the selector's
`tenant` is set to it; naming another is a 403); an admin's are shared and judge what the
selector says. A non-admin reads its tenant's SLOs; an admin reads all, or one tenant's
with `?tenant=T` (`?tenant=` the shared ones). The status is computed from the per-minute
rollups at the moment of the request (slo/status.py).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import audit_event, json_response, operator, read_scope, reader
from trimtab.api.endpoints import APPLY_SLOS, GET_SLO, LIST_SLOS, SLO, SLO_TENANT
from trimtab.api.errors import apply_retrying
from trimtab.api.models import APPLY_MESSAGE_CHARS, SOURCE_CHARS
from trimtab.api.params import bad_param
from trimtab.api.report_endpoints import SLO_REPORT
from trimtab.audit.log import AuditLog
from trimtab.auth.keyring import KeyRing
from trimtab.errors import Forbidden, Invalid, NotFound
from trimtab.registry.store import RouteStore
from trimtab.slo.evaluator import read_statuses
from trimtab.slo.report_data import read_report
from trimtab.slo.spec import SloDefinition, SlosError, load_slos
from trimtab.slo.store import SloApplied, SloRow, SloStore
from trimtab.types import SHARED, Principal, new_request_id

log = logging.getLogger(__name__)


class SlosAPI:
    """The SLO endpoints (their gauges in /metrics are `slo/gauges.SloGauges`)."""

    def __init__(self, store: SloStore, routes: RouteStore, keys: KeyRing, audit: AuditLog) -> None:
        self._store = store
        self._routes = routes
        self._keys = keys
        self._audit = audit

    def routes(self) -> list[Route]:
        return [
            APPLY_SLOS.route(self.apply),
            SLO_REPORT.route(self.report),  # before GET_SLO: `report` is no SLO's name
            LIST_SLOS.route(self.list_slos),
            GET_SLO.route(self.get_slo),
        ]

    # -- writing -------------------------------------------------------------------------

    def _owned(self, d: SloDefinition, principal: Principal) -> SloDefinition:
        """A non-admin's SLO judges its own tenant's traffic only."""
        if principal.is_admin:
            return d
        tenant = d.selector.tenant
        if tenant is not None and tenant != principal.tenant:
            raise Forbidden(
                f"SLO '{d.name}': a key of tenant '{principal.tenant}' may only judge its "
                f"own tenant's traffic, not that of tenant '{tenant}'"
            )
        return dataclasses.replace(
            d, selector=dataclasses.replace(d.selector, tenant=principal.tenant)
        )

    def _unknown_routes(
        self, definitions: list[SloDefinition], principal: Principal, source: str
    ) -> list[str]:
        problems = []
        for d in definitions:
            route = d.selector.route
            if route is None:
                continue
            tenant = d.selector.tenant or principal.tenant
            if self._routes.resolve(route, tenant, principal.is_admin) is None:
                problems.append(f"{source}: slos.{d.name}.route: unknown route '{route}'")
        return problems

    async def apply(self, request: Request) -> Response:
        rid = new_request_id()
        principal = operator(self._keys, request, "apply SLOs")
        body = await APPLY_SLOS.json(request)
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise bad_param("message", "is required: say why these SLOs change")
        if len(message) > APPLY_MESSAGE_CHARS:
            raise bad_param("message", f"must be at most {APPLY_MESSAGE_CHARS} characters")
        message = message.strip()
        source = body.get("source", "request body")
        if not isinstance(source, str) or not source or len(source) > SOURCE_CHARS:
            raise bad_param("source", f"must be a file name of at most {SOURCE_CHARS} characters")
        text = body.get("yaml")
        if not isinstance(text, str):
            raise bad_param("yaml", "is required: the text of a file with an `slos:` section")
        try:
            parsed = load_slos(text, source)
        except SlosError as exc:
            raise Invalid(str(exc), code="invalid_slos") from None
        definitions = [self._owned(d, principal) for d in parsed]
        problems = await run_in_threadpool(self._unknown_routes, definitions, principal, source)
        if problems:
            raise Invalid("\n".join(problems), code="invalid_slos")
        scope = SHARED if principal.is_admin else principal.tenant
        actor = principal.owner or principal.key_id

        def audit(conn: Connection, result: SloApplied) -> None:
            event = audit_event(
                request,
                principal,
                "slo.apply",
                target=result.name,
                tenant=result.scope or None,
                detail={"status": result.status, "digest": result.digest, "message": message},
                request_id=rid,
            )
            self._audit.write(conn, event)

        def work() -> list[SloApplied]:
            return self._store.apply(definitions, scope=scope, actor=actor, on_change=audit)

        results = await apply_retrying(work, "SLOs")
        for r in results:
            if r.status != "unchanged":
                log.info("slo %s: %s by %s", r.name, r.status, actor or "anonymous (keys off)")
        return json_response({"slos": [r.view() for r in results], "message": message}, 200, rid)

    # -- reading -------------------------------------------------------------------------

    def _statuses(self, rows: list[SloRow]) -> list[dict[str, object]]:
        """Each SLO's status; the availability and error-rate SLOs of one selector share one
        query (the evaluator's reads: ten times fewer at 10 million requests,
        docs/benchmarks.md)."""
        now = datetime.now(UTC)
        statuses = read_statuses(self._store.engine, [r.definition for r in rows], now)
        return [st.view(r.scope or None) for r, st in zip(rows, statuses, strict=True)]

    async def list_slos(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read SLOs")
        route = LIST_SLOS.arg(request, "route")
        scope = read_scope(principal, SLO_TENANT.of(request), "SLOs")
        rows = await run_in_threadpool(self._store.listed, scope)
        if route is not None:
            rows = [r for r in rows if r.definition.selector.route == route]
        data = await run_in_threadpool(self._statuses, rows)
        return json_response({"data": data})

    async def get_slo(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read SLOs")
        name = SLO.of(request)
        scope = read_scope(principal, SLO_TENANT.of(request), "SLOs")
        row = await run_in_threadpool(self._store.get, name, scope)
        if row is None:
            raise NotFound(f"no SLO named '{name}'")
        (view,) = await run_in_threadpool(self._statuses, [row])
        return json_response(view)

    async def report(self, request: Request) -> Response:
        """The SLA report of a month (slo/report.py); a tenant's KPIs only its traffic."""
        principal = reader(self._keys, request, "read SLOs")
        month = SLO_REPORT.arg(request, "month")
        route = SLO_REPORT.arg(request, "route")
        scope = read_scope(principal, SLO_TENANT.of(request), "SLOs")
        rows = await run_in_threadpool(self._store.listed, scope)
        if route is not None:
            rows = [r for r in rows if r.definition.selector.route == route]
        traffic = scope or None  # an admin's shared or every SLO: every tenant's traffic
        result = await run_in_threadpool(read_report, self._store.engine, rows, month, traffic)
        return json_response(result.view())
