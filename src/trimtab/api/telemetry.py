"""GET /api/requests, /api/requests/{id} and /api/metrics/summary."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import json_response, reader, scoped_tenant
from trimtab.api.params import bad_param, parse_int, parse_status, parse_time, parse_window
from trimtab.auth.keyring import KeyRing
from trimtab.errors import NotFound
from trimtab.telemetry.queries import BadCursor, RequestFilter, get_request, list_requests, view
from trimtab.telemetry.rollups import GROUPABLE, Rollup, group, minute_of
from trimtab.telemetry.store import TelemetryStore

_FILTERS = ("model", "provider", "user", "session", "feature", "route", "version")


class TelemetryAPI:
    """The read side of telemetry, scoped to the caller's tenant."""

    def __init__(self, engine: Engine, store: TelemetryStore, keys: KeyRing) -> None:
        self._engine = engine
        self._store = store
        self._keys = keys

    def routes(self) -> list[Route]:
        return [
            Route("/api/requests", self.list_requests, methods=["GET"]),
            Route("/api/requests/{request_id}", self.get_request, methods=["GET"]),
            Route("/api/metrics/summary", self.summary, methods=["GET"]),
        ]

    async def list_requests(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        q = request.query_params
        tenant = scoped_tenant(principal, q.get("tenant"))
        filters = RequestFilter(
            since=parse_time("since", q.get("since")),
            until=parse_time("until", q.get("until")),
            tenant=tenant,
            status=parse_status(q.get("status")),
            **{name: q.get(name) or None for name in _FILTERS},
        )
        limit = parse_int("limit", q.get("limit"), 50, 1, 1000)
        try:
            rows, cursor = await run_in_threadpool(
                list_requests, self._engine, filters, limit, q.get("cursor")
            )
        except BadCursor as exc:
            raise bad_param("cursor", str(exc)) from None
        return json_response({"data": [view(r) for r in rows], "next_cursor": cursor})

    async def get_request(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        rid = request.path_params["request_id"]
        row = await run_in_threadpool(get_request, self._engine, rid)
        if row is None or not (principal.is_admin or row["tenant"] == principal.tenant):
            # another tenant's request is reported exactly like a missing one
            raise NotFound(f"no request with id '{rid}'")
        return json_response(view(row))

    async def summary(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        q = request.query_params
        window = parse_window(q.get("window"))
        group_by = q.get("group_by") or "model"
        if group_by not in GROUPABLE:
            raise bad_param("group_by", f"'{group_by}' is not one of {', '.join(GROUPABLE)}")
        tenant = scoped_tenant(principal, q.get("tenant"))
        now = datetime.now(UTC)
        since = minute_of((now - window).timestamp())
        rows = await run_in_threadpool(self._store.rollups_since, since, tenant)
        groups = group(rows, group_by)
        total = Rollup()
        for _, rollup in rows:
            total.merge(rollup)
        return json_response(
            {
                "window": q.get("window") or "1h",
                "group_by": group_by,
                "from": since.isoformat(),
                "to": now.isoformat(),
                "tenant": tenant,
                "groups": groups,
                "total": total.summary(),
            }
        )
