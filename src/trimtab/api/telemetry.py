"""GET /api/requests, /api/requests/{id} and /api/metrics/summary."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import json_response, reader, scoped_tenant
from trimtab.api.endpoints import GET_REQUEST, LIST_REQUESTS, SUMMARY
from trimtab.api.params import bad_param
from trimtab.auth.keyring import KeyRing
from trimtab.errors import NotFound
from trimtab.telemetry.queries import (
    MAX_SEARCH,
    BadCursor,
    RequestFilter,
    get_request,
    list_requests,
    view,
)
from trimtab.telemetry.rollups import Rollup, group, minute_of
from trimtab.telemetry.store import TelemetryStore
from trimtab.types import is_eval_feature

_FILTERS = ("model", "provider", "user", "session", "feature", "route", "version")


class TelemetryAPI:
    """The read side of telemetry, scoped to the caller's tenant."""

    def __init__(self, engine: Engine, store: TelemetryStore, keys: KeyRing) -> None:
        self._engine = engine
        self._store = store
        self._keys = keys

    def routes(self) -> list[Route]:
        return [
            LIST_REQUESTS.route(self.list_requests),
            GET_REQUEST.route(self.get_request),
            SUMMARY.route(self.summary),
        ]

    async def list_requests(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        arg = LIST_REQUESTS.arg
        tenant = scoped_tenant(principal, arg(request, "tenant"))
        filters = RequestFilter(
            since=arg(request, "since"),
            until=arg(request, "until"),
            tenant=tenant,
            status=arg(request, "status"),
            text=_search(arg(request, "q")),
            **{name: arg(request, name) for name in _FILTERS},
        )
        limit = arg(request, "limit")
        try:
            rows, cursor = await run_in_threadpool(
                list_requests, self._engine, filters, limit, arg(request, "cursor")
            )
        except BadCursor as exc:
            raise bad_param("cursor", str(exc)) from None
        return json_response({"data": [view(r) for r in rows], "next_cursor": cursor})

    async def get_request(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        rid = GET_REQUEST.arg(request, "request_id")
        row = await run_in_threadpool(get_request, self._engine, rid)
        if row is None or not (principal.is_admin or row["tenant"] == principal.tenant):
            # another tenant's request is reported exactly like a missing one
            raise NotFound(f"no request with id '{rid}'")
        return json_response(view(row))

    async def summary(self, request: Request) -> Response:
        principal = reader(self._keys, request)
        window = SUMMARY.arg(request, "window")
        group_by = SUMMARY.arg(request, "group_by")
        tenant = scoped_tenant(principal, SUMMARY.arg(request, "tenant"))
        now = datetime.now(UTC)
        since = minute_of((now - window).timestamp())
        rows = await run_in_threadpool(self._store.rollups_since, since, tenant)
        rows = [(k, r) for k, r in rows if not is_eval_feature(k[4])]  # production only
        groups = group(rows, group_by)
        total = Rollup()
        for _, rollup in rows:
            total.merge(rollup)
        return json_response(
            {
                "window": request.query_params.get("window") or "1h",
                "group_by": group_by,
                "from": since.isoformat(),
                "to": now.isoformat(),
                "tenant": tenant,
                "groups": groups,
                "total": total.summary(),
            }
        )


def _search(text: str | None) -> str | None:
    if text is not None and len(text) > MAX_SEARCH:
        raise bad_param("q", f"at most {MAX_SEARCH} characters, got {len(text)}")
    return text
