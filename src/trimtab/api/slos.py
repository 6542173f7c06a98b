"""/api/slos: apply the `slos:` section of a file (pruning the SLOs it no longer names, on
request), delete an SLO, read each SLO's status.

Applying and deleting need a key of role operator or admin; reading, viewer, operator or
admin. A
non-admin's SLOs belong to its tenant and judge only its tenant's traffic (the selector's
`tenant` is set to it; naming another is a 403); an admin's are shared and judge what the
selector says. A non-admin reads its tenant's SLOs; an admin reads all, or one tenant's
with `?tenant=T` (`?tenant=` the shared ones). The status is computed from the per-minute
rollups at the moment of the request (slo/status.py).

An eval-score SLO's suite is resolved at the apply, not at each read: a file's SLI without
`suite_scope` is stored with the one its suite was found in (`tenant`: the SLO's tenant's
own; `shared`), so a tenant suite of the name applied later takes effect at the next apply
of the SLO, which reports it updated (a new digest, audited `slo.apply`).

A deleted SLO goes with its open burn alerts: each is resolved, its summary saying why, in
the transaction that deletes the SLO and writes its audit row (`slo.delete`), and the sinks
that heard of it hear of the end. The evaluator reads the SLOs each cycle, so it judges a
deleted one no more; its gauges go at once (and at the next refresh in other processes).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.alerts.model import AlertChange
from trimtab.alerts.service import AlertService
from trimtab.api.access import audit_event, json_response, operator, read_scope, reader
from trimtab.api.endpoints import APPLY_SLOS, DELETE_SLO, GET_SLO, LIST_SLOS, SLO, SLO_TENANT
from trimtab.api.errors import apply_retrying, change
from trimtab.api.models import APPLY_MESSAGE_CHARS, SOURCE_CHARS
from trimtab.api.params import bad_param
from trimtab.api.report_endpoints import SLO_REPORT
from trimtab.audit.log import AuditLog
from trimtab.auth.keyring import KeyRing
from trimtab.errors import Forbidden, Invalid, NotFound
from trimtab.evals.suite_store import SuiteRow, SuiteStore
from trimtab.registry.store import RouteStore
from trimtab.slo.evaluator import read_statuses, slo_ref
from trimtab.slo.gauges import SloGauges
from trimtab.slo.report_data import read_report
from trimtab.slo.spec import Sli, SloDefinition, SlosError, SuiteScope, load_slos
from trimtab.slo.store import SloApplied, SloRemoved, SloRow, SloStore
from trimtab.types import SHARED, Principal, Scope, new_request_id

AlertsChanged = Callable[[Sequence[AlertChange]], None]

log = logging.getLogger(__name__)


class SlosAPI:
    """The SLO endpoints (their gauges in /metrics are `slo/gauges.SloGauges`)."""

    def __init__(
        self,
        store: SloStore,
        routes: RouteStore,
        keys: KeyRing,
        audit: AuditLog,
        alerts: AlertService,
        alerts_changed: AlertsChanged,
        gauges: SloGauges | None = None,
    ) -> None:
        self._store = store
        self._routes = routes
        self._keys = keys
        self._audit = audit
        self._alerts = alerts
        self._alerts_changed = alerts_changed  # the outbox and incidents hear at once
        self._gauges = gauges

    def routes(self) -> list[Route]:
        return [
            APPLY_SLOS.route(self.apply),
            SLO_REPORT.route(self.report),  # before GET_SLO: `report` is no SLO's name
            LIST_SLOS.route(self.list_slos),
            GET_SLO.route(self.get_slo),
            DELETE_SLO.route(self.delete_slo),
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
        self,
        definitions: list[SloDefinition],
        principal: Principal,
        source: str,
        planned: frozenset[str] = frozenset(),
    ) -> list[str]:
        """The SLOs naming a route the caller cannot see, other than the `planned` ones
        (a dry run's: the routes the same apply would create first)."""
        problems = []
        for d in definitions:
            route = d.selector.route
            if route is None or route in planned:
                continue
            tenant = d.selector.tenant or principal.tenant
            if self._routes.resolve(route, tenant, principal.is_admin) is None:
                problems.append(f"{source}: slos.{d.name}.route: unknown route '{route}'")
        return problems

    def _suites_meant(
        self,
        definitions: list[SloDefinition],
        source: str,
        planned: frozenset[str] = frozenset(),
        planned_scope: Scope = SHARED,
    ) -> tuple[list[str], dict[str, Scope]]:
        """The eval-score SLOs naming a suite or scorer that is not there, and the scope of
        the suite each of the others means, by SLO name (`_suite_meant`)."""
        problems: list[str] = []
        meant: dict[str, Scope] = {}
        suites = SuiteStore(self._store.engine)
        for d in definitions:
            if d.sli.kind != "eval_score" or d.sli.suite is None:
                continue
            scope, problem = _suite_meant(d, suites, source, planned, planned_scope)
            if problem is not None:
                problems.append(problem)
            elif scope is not None:
                meant[d.name] = scope
        return problems, meant

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
        prune, dry_run = (_flag(body, "prune"), _flag(body, "dry_run"))
        to_create = frozenset(body.get("planned_routes", ()))
        if to_create and not dry_run:
            raise bad_param(
                "planned_routes", "goes with dry_run: an apply checks the routes that exist"
            )
        planned_suites = frozenset(body.get("planned_suites", ()))
        if planned_suites and not dry_run:
            raise bad_param(
                "planned_suites", "goes with dry_run: an apply checks the suites that exist"
            )
        try:
            parsed = load_slos(text, source)
        except SlosError as exc:
            raise Invalid(str(exc), code="invalid_slos") from None
        definitions = [self._owned(d, principal) for d in parsed]
        problems = await run_in_threadpool(
            self._unknown_routes, definitions, principal, source, to_create
        )
        scope = SHARED if principal.is_admin else principal.tenant
        suite_problems, meant = await run_in_threadpool(
            self._suites_meant, definitions, source, planned_suites, scope
        )
        problems += suite_problems
        if problems:
            raise Invalid("\n".join(problems), code="invalid_slos")
        definitions = [_pinned(d, meant.get(d.name)) for d in definitions]
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

        if dry_run:
            planned, gone = await run_in_threadpool(
                lambda: self._store.plan(definitions, scope=scope, prune=prune)
            )
            return json_response(self._applied(planned, gone, {}, message, True), 200, rid)
        reason = f"the SLO was deleted: `{source}` no longer names it ({message})"
        remove = self._removing(request, principal, rid, "apply --prune", reason)

        def work() -> tuple[list[SloApplied], list[SloRemoved], dict[str, list[AlertChange]]]:
            resolved: dict[str, list[AlertChange]] = {}
            with self._alerts.transaction() as conn:
                applied = self._store.apply(
                    definitions, scope=scope, actor=actor, on_change=audit, conn=conn
                )
                keep = [d.name for d in definitions]
                gone = (
                    self._store.prune(keep, scope, on_remove=remove(resolved), conn=conn)
                    if prune
                    else []
                )
            return applied, gone, resolved

        results, gone, resolved = await apply_retrying(work, "SLOs")
        for r in results:
            if r.status != "unchanged":
                log.info("slo %s: %s by %s", r.name, r.status, actor or "anonymous (keys off)")
        self._deleted(gone, resolved, actor)
        return json_response(self._applied(results, gone, resolved, message, False), 200, rid)

    @staticmethod
    def _applied(
        results: list[SloApplied],
        gone: list[SloRemoved],
        resolved: dict[str, list[AlertChange]],
        message: str,
        dry_run: bool,
    ) -> dict[str, Any]:
        return {
            "slos": [r.view() for r in results],
            "pruned": [_removed_view(g, resolved) for g in gone],
            "dry_run": dry_run,
            "message": message,
        }

    def _removing(
        self, request: Request, principal: Principal, rid: str, how: str, reason: str
    ) -> Callable[[dict[str, list[AlertChange]]], Callable[[Connection, SloRemoved], None]]:
        """What deleting an SLO does in its transaction: the audit row (`slo.delete`) and
        its open burn alerts resolved with `reason` (into `resolved`, by SLO reference)."""

        def into(
            resolved: dict[str, list[AlertChange]],
        ) -> Callable[[Connection, SloRemoved], None]:
            def on_remove(conn: Connection, gone: SloRemoved) -> None:
                ref = slo_ref(gone.row)
                changes = self._alerts.resolve_in(conn, "slo_burn", f"slo_burn/{ref}/", reason)
                resolved[ref] = changes
                event = audit_event(
                    request,
                    principal,
                    "slo.delete",
                    target=gone.row.definition.name,
                    tenant=gone.row.scope or None,
                    detail={
                        "slo_tenant": gone.row.scope or None,  # None: a shared SLO
                        "digest": gone.digest,
                        "by": how,
                        "alerts_resolved": [c.alert.id for c in changes],
                        "definition": gone.row.definition.to_json(),
                    },
                    request_id=rid,
                )
                self._audit.write(conn, event)

            return on_remove

        return into

    def _deleted(
        self, gone: list[SloRemoved], resolved: dict[str, list[AlertChange]], actor: str | None
    ) -> None:
        """After the commit: the alert pipeline hears of the resolutions, the gauges drop
        the deleted SLOs' series."""
        changes = [c for g in gone for c in resolved.get(slo_ref(g.row), [])]
        if changes:
            self._alerts_changed(changes)
        for g in gone:
            log.info("slo %s: deleted by %s", slo_ref(g.row), actor or "anonymous (keys off)")
        if self._gauges is not None and gone:
            dropped = {(g.row.scope, g.row.definition.name) for g in gone}
            kept = [(sc, st) for sc, st in self._gauges.latest if (sc, st.slo.name) not in dropped]
            self._gauges.show(kept)
            self._gauges.latest = kept

    async def delete_slo(self, request: Request) -> Response:
        rid = new_request_id()
        principal = operator(self._keys, request, "delete SLOs")
        name = SLO.of(request)
        asked = read_scope(principal, SLO_TENANT.of(request), "SLOs")
        scope = asked if asked is not None else SHARED  # an admin's: the shared one
        actor = principal.owner or principal.key_id
        reason = f"the SLO was deleted by {actor or 'a key (keys off)'}: it is judged no more"
        remove = self._removing(request, principal, rid, "delete", reason)

        def work() -> tuple[SloRemoved | None, dict[str, list[AlertChange]]]:
            resolved: dict[str, list[AlertChange]] = {}
            with self._alerts.transaction() as conn:
                gone = self._store.delete(name, scope, on_remove=remove(resolved), conn=conn)
            return gone, resolved

        gone, resolved = await change(work)
        if gone is None:
            where = f"tenant '{scope}'" if scope else "the shared scope"
            raise NotFound(f"no SLO named '{name}' in {where}", code="slo_not_found")
        self._deleted([gone], resolved, actor)
        return json_response(_removed_view(gone, resolved), 200, rid)

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


def _suite_meant(
    d: SloDefinition,
    suites: SuiteStore,
    source: str,
    planned: frozenset[str],
    planned_scope: Scope,
) -> tuple[Scope | None, str | None]:
    """The scope of the suite an eval-score SLO means, else the problem: the suite of the
    scope its SLI says (`suite_scope`, else the SLO's tenant's own of that name, else the
    shared one), scoring production answers (`online:`) with that scorer. A `planned`
    suite (a dry run's: one the same apply creates or replaces first in `planned_scope`)
    is taken as there, its scorers unchecked: its own apply checks them."""
    sli, tenant, at = d.sli, d.selector.tenant, f"{source}: slos.{d.name}.sli"
    assert sli.suite is not None  # an eval-score SLI's, parsed
    if sli.suite_scope == "tenant" and tenant is None:
        return None, (
            f"{at}.suite_scope: 'tenant' is the SLO's tenant's own suite, and the SLO "
            "has no tenant (give it `tenant:`, or `suite_scope: shared`)"
        )
    scopes = [SHARED] if sli.suite_scope == "shared" or tenant is None else [tenant]
    if sli.suite_scope is None and tenant is not None:
        scopes.append(SHARED)
    found = suites.get(sli.suite, scopes)
    if sli.suite in planned and planned_scope in scopes:
        first = scopes.index(planned_scope)
        if found is None or first <= scopes.index(found.scope):
            return planned_scope, None
    if found is None:
        if len(scopes) > 1:
            why = f"neither tenant '{tenant}' nor the shared scope has one of that name"
        else:
            why = f"tenant '{tenant}' has none" if scopes[0] else "no shared suite"
            why += " of that name"
        return None, f"{at}.suite: unknown suite '{sli.suite}' ({why})"
    return found.scope, _scoring_problem(found, sli, at)


def _scoring_problem(found: SuiteRow, sli: Sli, at: str) -> str | None:
    """Why the suite `found` cannot be the SLI's: it scores no production answers, or not
    with the SLI's scorer; None when it can."""
    whose = f"tenant '{found.scope}'" if found.scope else "the shared scope"
    online = found.definition.online
    if online is None:
        return (
            f"{at}.suite: suite '{sli.suite}' of {whose} scores no production answers "
            "(it has no `online:`)"
        )
    if sli.scorer not in (names := [sc.name for sc in online.scorers]):
        return (
            f"{at}.scorer: suite '{sli.suite}' of {whose} scores production answers "
            f"with {', '.join(names)}, not '{sli.scorer}'"
        )
    return None


def _pinned(d: SloDefinition, scope: Scope | None) -> SloDefinition:
    """`d` with its SLI's `suite_scope` set to the scope its suite was found in (`scope`,
    None for an SLO naming no suite) when the file left it out, so the stored SLO keeps
    reading that suite until it is applied again. An SLO without a tenant can only mean
    the shared suite, so it is stored as written (its digest does not move)."""
    if scope is None or d.sli.suite_scope is not None or d.selector.tenant is None:
        return d
    pin: SuiteScope = "shared" if scope == SHARED else "tenant"
    return dataclasses.replace(d, sli=dataclasses.replace(d.sli, suite_scope=pin))


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise bad_param(name, "must be a boolean")
    return value


def _removed_view(gone: SloRemoved, resolved: dict[str, list[AlertChange]]) -> dict[str, Any]:
    changes = resolved.get(slo_ref(gone.row), [])
    return {**gone.view(), "alerts_resolved": [c.alert.id for c in changes]}
