"""POST /api/erasures and GET /api/exports: one user's data erased or exported, admin only."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from trimtab.api.access import actor, admin, json_response
from trimtab.api.params import bad_param
from trimtab.api.privacy_endpoints import ERASE, EXPORT, TENANT_CHARS, USER_CHARS
from trimtab.audit.log import AuditLog
from trimtab.auth.keyring import KeyRing
from trimtab.privacy.erasure import ACTION, erase, export, jsonl
from trimtab.types import new_request_id

NDJSON = "application/x-ndjson"


class PrivacyAPI:
    def __init__(self, engine: Engine, audit: AuditLog, keys: KeyRing) -> None:
        self._engine = engine
        self._audit = audit
        self._keys = keys

    def routes(self) -> list[Route]:
        return [ERASE.route(self.erase), EXPORT.route(self.export)]

    async def erase(self, request: Request) -> Response:
        principal = admin(self._keys, request, "erase a user's data")
        rid = new_request_id()
        body = await ERASE.json(request)
        user = _text(body.get("user"), "user", USER_CHARS, required=True)
        if body.get("tenant") == "":  # not "every tenant" by accident: leave it out for that
            raise bad_param("tenant", "empty; leave tenant out to erase in every tenant")
        tenant = _text(body.get("tenant"), "tenant", TENANT_CHARS, required=False)
        assert user is not None
        who = actor(request, principal, rid)
        done = await run_in_threadpool(erase, self._engine, self._audit, who, user, tenant)
        out = {"user": user, "tenant": tenant, "erased": done.to_json(), "audit_action": ACTION}
        return json_response(out, request_id=rid)

    async def export(self, request: Request) -> Response:
        admin(self._keys, request, "export a user's data")
        user = EXPORT.arg(request, "user")
        if user is None:
            raise bad_param("user", "required: the user whose data to export")
        tenant = EXPORT.arg(request, "tenant")
        chunks = jsonl(export(self._engine, user, tenant))
        # the first chunk before the answer begins: a store that is down is a 503
        first = await run_in_threadpool(next, chunks, b"")

        async def body() -> AsyncIterator[bytes]:
            chunk = first
            while chunk:
                yield chunk
                chunk = await run_in_threadpool(next, chunks, b"")  # read off the event loop

        return StreamingResponse(
            body(), headers={"x-trimtab-request-id": new_request_id()}, media_type=NDJSON
        )


def _text(value: object, name: str, limit: int, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise bad_param(name, "required")
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise bad_param(name, f"must be a string of at most {limit} characters without NUL")
    return value
