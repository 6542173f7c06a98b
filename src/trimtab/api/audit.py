"""GET /api/audit: the audit log, for admins, newest first, cursor-paginated."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import admin, json_response
from trimtab.api.endpoints import LIST_AUDIT
from trimtab.api.params import bad_param
from trimtab.audit.log import AuditFilter, AuditLog, BadCursor, view
from trimtab.auth.keyring import KeyRing


class AuditAPI:
    def __init__(self, audit: AuditLog, keys: KeyRing) -> None:
        self._audit = audit
        self._keys = keys

    def routes(self) -> list[Route]:
        return [LIST_AUDIT.route(self.list_events)]

    async def list_events(self, request: Request) -> Response:
        admin(self._keys, request, "read the audit log")
        arg = LIST_AUDIT.arg
        filters = AuditFilter(
            since=arg(request, "since"),
            until=arg(request, "until"),
            action=arg(request, "action"),
            actor=arg(request, "actor"),
            tenant=arg(request, "tenant"),
            target=arg(request, "target"),
        )
        limit = arg(request, "limit")
        try:
            rows, cursor = await run_in_threadpool(
                self._audit.query, filters, limit, arg(request, "cursor")
            )
        except BadCursor as exc:
            raise bad_param("cursor", str(exc)) from None
        return json_response({"data": [view(r) for r in rows], "next_cursor": cursor})
