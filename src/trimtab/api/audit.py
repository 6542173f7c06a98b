"""GET /api/audit: the audit log, for admins, newest first, cursor-paginated."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import admin, json_response
from trimtab.api.params import bad_param, parse_int, parse_time
from trimtab.audit.log import AuditFilter, AuditLog, BadCursor, view
from trimtab.auth.keyring import KeyRing


class AuditAPI:
    def __init__(self, audit: AuditLog, keys: KeyRing) -> None:
        self._audit = audit
        self._keys = keys

    def routes(self) -> list[Route]:
        return [Route("/api/audit", self.list_events, methods=["GET"])]

    async def list_events(self, request: Request) -> Response:
        admin(self._keys, request, "read the audit log")
        q = request.query_params
        filters = AuditFilter(
            since=parse_time("since", q.get("since")),
            until=parse_time("until", q.get("until")),
            action=q.get("action") or None,
            actor=q.get("actor") or None,
            tenant=q.get("tenant") or None,
            target=q.get("target") or None,
        )
        limit = parse_int("limit", q.get("limit"), 50, 1, 1000)
        try:
            rows, cursor = await run_in_threadpool(
                self._audit.query, filters, limit, q.get("cursor")
            )
        except BadCursor as exc:
            raise bad_param("cursor", str(exc)) from None
        return json_response({"data": [view(r) for r in rows], "next_cursor": cursor})
