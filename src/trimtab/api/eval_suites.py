"""/api/evals/suites: apply the `evals:` section of a file; read the applied suites.

Applying needs a key of role operator or admin; reading, viewer, operator or admin. A
non-admin's suites belong to its tenant (and run its tenant's routes); an admin's are
shared. `trimtab eval run SUITE` without `--file` runs the applied suite: the caller's
tenant's, else the shared one of that name.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import yaml
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import (
    audit_event,
    json_response,
    operator,
    read_scope,
    reader,
    scoped_tenant,
)
from trimtab.api.errors import apply_retrying
from trimtab.api.eval_endpoints import (
    APPLY_EVAL_SUITES,
    EVAL_SUITE,
    GET_EVAL_SUITE,
    LIST_EVAL_SUITES,
    ONLINE_SCORES,
    SUITE_TENANT,
)
from trimtab.api.models import APPLY_MESSAGE_CHARS, SOURCE_CHARS
from trimtab.api.params import bad_param
from trimtab.audit.log import AuditLog
from trimtab.auth.keyring import KeyRing
from trimtab.bounds import safe_load_yaml
from trimtab.errors import Invalid, NotFound
from trimtab.evals.online import OnlineScoring, online_metric
from trimtab.evals.online_scorers import python_problem
from trimtab.evals.scorers import Judge, Python
from trimtab.evals.suite_store import SuiteApplied, SuiteStore
from trimtab.evals.suites import SuiteDefinition, SuitesError, parse_suites
from trimtab.registry.store import RouteStore
from trimtab.types import SHARED, Principal, Scope, new_request_id

log = logging.getLogger(__name__)


class EvalSuitesAPI:
    def __init__(
        self,
        store: SuiteStore,
        routes: RouteStore,
        keys: KeyRing,
        audit: AuditLog,
        online: OnlineScoring | None = None,
    ):
        self._store = store
        self._routes = routes
        self._keys = keys
        self._audit = audit
        self._online = online

    def routes(self) -> list[Route]:
        return [
            APPLY_EVAL_SUITES.route(self.apply),
            LIST_EVAL_SUITES.route(self.list_suites),
            GET_EVAL_SUITE.route(self.get_suite),
            ONLINE_SCORES.route(self.online_scores),
        ]

    # -- writing -------------------------------------------------------------------------

    def _unknown_routes(
        self, definitions: list[SuiteDefinition], principal: Principal, source: str
    ) -> list[str]:
        def unknown(route: str) -> bool:
            return self._routes.resolve(route, principal.tenant, principal.is_admin) is None

        out = [
            f"{source}: evals.{d.name}.route: unknown route '{d.route}'"
            for d in definitions
            if d.route is not None and unknown(d.route)
        ]
        for d in definitions:  # an online judge is called by this server: its route must be
            for spec in d.online.scorers if d.online is not None else ():
                if isinstance(spec, Judge) and unknown(spec.judge_route):
                    out.append(
                        f"{source}: evals.{d.name}.online.scorers: judge '{spec.name}': "
                        f"unknown judge_route '{spec.judge_route}'"
                    )
        return out

    def _python_problems(self, definitions: list[SuiteDefinition], source: str) -> list[str]:
        """Online python scorers this server may not run, or cannot import (the import
        happens here, once at apply, and again when online scoring loads the suite)."""
        modules = self._online.python_scorers if self._online is not None else ()
        out = []
        for d in definitions:
            for spec in d.online.scorers if d.online is not None else ():
                problem = python_problem(spec, modules) if isinstance(spec, Python) else None
                if problem is not None:
                    out.append(f"{source}: evals.{d.name}.online.scorers: {problem}")
        return out

    async def apply(self, request: Request) -> Response:
        rid = new_request_id()
        principal = operator(self._keys, request, "apply eval suites")
        body = await APPLY_EVAL_SUITES.json(request)
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise bad_param("message", "is required: say why these suites change")
        if len(message) > APPLY_MESSAGE_CHARS:
            raise bad_param("message", f"must be at most {APPLY_MESSAGE_CHARS} characters")
        message = message.strip()
        source = body.get("source", "request body")
        if not isinstance(source, str) or not source or len(source) > SOURCE_CHARS:
            raise bad_param("source", f"must be a file name of at most {SOURCE_CHARS} characters")
        text = body.get("yaml")
        if not isinstance(text, str):
            raise bad_param("yaml", "is required: the text of a file with an `evals:` section")
        try:
            data = safe_load_yaml(text)
        except yaml.YAMLError as exc:
            raise Invalid(f"{source}: not YAML: {exc}", code="invalid_suite") from None
        try:
            definitions = parse_suites(data, source)
        except SuitesError as exc:
            raise Invalid(str(exc), code="invalid_suite") from None
        problems = await run_in_threadpool(self._unknown_routes, definitions, principal, source)
        problems += await run_in_threadpool(self._python_problems, definitions, source)
        if problems:
            raise Invalid("\n".join(problems), code="invalid_suite")
        scope = SHARED if principal.is_admin else principal.tenant
        actor = principal.owner or principal.key_id

        def audit(conn: Connection, result: SuiteApplied) -> None:
            event = audit_event(
                request,
                principal,
                "eval_suite.apply",
                target=result.name,
                tenant=result.scope or None,
                detail={"status": result.status, "digest": result.digest, "message": message},
                request_id=rid,
            )
            self._audit.write(conn, event)

        def work() -> list[SuiteApplied]:
            return self._store.apply(definitions, scope=scope, actor=actor, on_change=audit)

        results = await apply_retrying(work, "suites")
        for r in results:
            if r.status != "unchanged":
                log.info("suite %s: %s by %s", r.name, r.status, actor or "anonymous (keys off)")
        return json_response({"suites": [r.view() for r in results], "message": message}, 200, rid)

    # -- reading -------------------------------------------------------------------------

    async def list_suites(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read eval suites")
        route = LIST_EVAL_SUITES.arg(request, "route")
        scope = read_scope(principal, SUITE_TENANT.of(request), "suites")
        rows = await run_in_threadpool(self._store.listed, scope)
        if not principal.is_admin:  # a tenant sees the shared suites too
            rows += await run_in_threadpool(self._store.listed, SHARED)
        if route is not None:
            rows = [r for r in rows if r.definition.route == route]
        return json_response({"data": [r.view() for r in rows]})

    async def get_suite(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read eval suites")
        name = EVAL_SUITE.of(request)
        named = SUITE_TENANT.of(request)
        read_scope(principal, named, "suites")  # a non-admin may name only its own tenant
        scopes: list[Scope] = [principal.tenant, SHARED] if named is None else [named]
        row = await run_in_threadpool(self._store.get, name or "", scopes)
        if row is None:
            raise NotFound(f"no eval suite named '{name}' (apply a file with an evals: section)")
        return json_response(row.view())

    async def online_scores(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read online scores")
        route = ONLINE_SCORES.arg(request, "route")
        if not route:
            raise bad_param("route", "is required: the route whose online scores to read")
        span = ONLINE_SCORES.arg(request, "window")
        bucket = ONLINE_SCORES.arg(request, "bucket")
        tenant = scoped_tenant(principal, ONLINE_SCORES.arg(request, "tenant"))
        suite = ONLINE_SCORES.arg(request, "suite")
        since = datetime.now(UTC) - span
        step = _BUCKETS[bucket]
        data = await run_in_threadpool(
            online_metric, self._store.engine, route, since, step, tenant, suite
        )
        stats = self._online.stats.view() if self._online is not None else {}
        return json_response(
            {
                "route": route,
                "window": request.query_params.get("window") or "24h",
                "bucket": bucket,
                "data": data,
                "scorer": stats,
            }
        )


_BUCKETS = {
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
}
