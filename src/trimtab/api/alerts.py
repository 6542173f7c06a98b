"""/api/alerts and /api/silences: read alerts, acknowledge them, silence them.

Reading needs a key of role viewer, operator or admin; acknowledging and silencing,
operator or admin, and each is audited in the transaction that makes it. A non-admin sees
only the alerts labelled with its tenant or one of its tenant's own routes, acknowledges
only those, and its silences are confined to its tenant (a `tenant=T` matcher is added;
it sees and ends only silences so confined: alerts/tenancy.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.alerts.model import Alert, AlertChange, Silence
from trimtab.alerts.outbox_store import outbox_rows
from trimtab.alerts.service import AlertService
from trimtab.alerts.tenancy import confined, silence_visible
from trimtab.api.access import audit_event, json_response, operator, reader
from trimtab.api.alert_endpoints import (
    ACK_ALERT,
    CREATE_SILENCE,
    DELETE_SILENCE,
    GET_ALERT,
    LIST_ALERTS,
    LIST_SILENCES,
    MATCHERS_MAX,
    MESSAGE_CHARS,
)
from trimtab.api.errors import change
from trimtab.api.params import NUL, bad_param
from trimtab.audit.log import AuditLog
from trimtab.auth.keyring import KeyRing
from trimtab.durations import parse_duration
from trimtab.errors import NotFound
from trimtab.types import Principal, new_request_id

TenantRoutes = Callable[[str], set[str]]
_SCAN = 5000  # a non-admin's list is filtered from this many newest alerts


def _message(body: dict[str, Any]) -> str:
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        raise bad_param("message", "is required: say why")
    if len(message) > MESSAGE_CHARS or NUL in message:
        raise bad_param("message", f"must be at most {MESSAGE_CHARS} characters, without NUL")
    return message.strip()


class AlertsAPI:
    def __init__(
        self,
        service: AlertService,
        keys: KeyRing,
        audit: AuditLog,
        tenant_routes: TenantRoutes,
        changed: Callable[[Sequence[AlertChange]], None] | None = None,
    ) -> None:
        self._service = service
        self._changed = changed  # the runtime's listeners (incidents) and the outbox
        self._keys = keys
        self._audit = audit
        self._tenant_routes = tenant_routes

    def routes(self) -> list[Route]:
        return [
            LIST_ALERTS.route(self.list_alerts),
            GET_ALERT.route(self.get_alert),
            ACK_ALERT.route(self.ack),
            LIST_SILENCES.route(self.list_silences),
            CREATE_SILENCE.route(self.create_silence),
            DELETE_SILENCE.route(self.delete_silence),
        ]

    # -- who sees what ------------------------------------------------------------------

    def _visible(self, principal: Principal) -> Callable[[Alert], bool]:
        if principal.is_admin:
            return lambda _a: True
        tenant = principal.tenant
        own = self._tenant_routes(tenant)

        def visible(alert: Alert) -> bool:
            labels = alert.labels
            if "tenant" in labels:
                return labels["tenant"] == tenant
            return labels.get("route") in own

        return visible

    async def _alert(self, principal: Principal, alert_id: int) -> Alert:
        alert = await run_in_threadpool(self._service.get, alert_id)
        if not self._visible(principal)(alert):
            raise NotFound(f"no alert {alert_id}", code="alert_not_found")
        return alert

    # -- alerts -------------------------------------------------------------------------

    async def list_alerts(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read alerts")
        state = LIST_ALERTS.arg(request, "state")
        severity = LIST_ALERTS.arg(request, "severity")
        limit = LIST_ALERTS.arg(request, "limit")
        states = {"all": (), "open": ("firing", "acknowledged")}.get(state, (state,))
        severities = () if severity == "all" else (severity,)
        visible = self._visible(principal)
        scan = limit if principal.is_admin else _SCAN
        found = await run_in_threadpool(
            lambda: self._service.alerts(states=states, severities=severities, limit=scan)
        )
        data = [a.to_json() for a in found if visible(a)][:limit]
        return json_response({"data": data})

    async def get_alert(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read alerts")
        alert = await self._alert(principal, GET_ALERT.arg(request, "alert_id"))
        rows = await run_in_threadpool(outbox_rows, self._service.engine, alert.id)
        deliveries = [  # never the body: a PagerDuty one carries its routing key
            {k: r[k] for k in ("sink", "event", "status", "attempts", "last_error")}
            | {"created_at": r["created_at"], "delivered_at": r["delivered_at"]}
            for r in rows
        ]
        return json_response(alert.to_json() | {"deliveries": deliveries})

    async def ack(self, request: Request) -> Response:
        rid = new_request_id()
        principal = operator(self._keys, request, "acknowledge alerts")
        alert = await self._alert(principal, ACK_ALERT.arg(request, "alert_id"))
        message = _message(await ACK_ALERT.json(request))
        by = principal.owner or principal.key_id

        def audit(conn: Connection, acked: Alert) -> None:
            event = audit_event(
                request,
                principal,
                "alert.ack",
                target=str(acked.id),
                tenant=acked.labels.get("tenant"),
                detail={"dedup_key": acked.dedup_key, "message": message},
                request_id=rid,
            )
            self._audit.write(conn, event)

        result = await change(self._service.acknowledge, alert.id, by, message, audit)
        if result.change == "acknowledged" and self._changed is not None:
            self._changed([result])
        return json_response(result.alert.to_json(), 200, rid)

    # -- silences -----------------------------------------------------------------------

    async def list_silences(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read silences")
        every = LIST_SILENCES.arg(request, "state") == "all"
        limit = LIST_SILENCES.arg(request, "limit")
        found = await run_in_threadpool(
            lambda: self._service.silences(expired_too=every, limit=limit)
        )
        now = self._service.now()
        data = [s.to_json(now) for s in found if silence_visible(principal, s)]
        return json_response({"data": data})

    async def create_silence(self, request: Request) -> Response:
        rid = new_request_id()
        principal = operator(self._keys, request, "silence alerts")
        body = await CREATE_SILENCE.json(request)
        message = _message(body)
        matchers = body.get("matchers")
        if (
            not isinstance(matchers, list)
            or not matchers
            or len(matchers) > MATCHERS_MAX
            or not all(isinstance(m, str) and NUL not in m for m in matchers)
        ):
            raise bad_param(
                "matchers", f"must be a list of 1 to {MATCHERS_MAX} texts like route=support"
            )
        matchers = confined(principal, matchers)
        text = body.get("duration")
        duration = parse_duration(text) if isinstance(text, str) else None
        if duration is None or duration <= timedelta(0):
            raise bad_param("duration", "must be a duration like 30m, 2h or 1d")
        by = principal.owner or principal.key_id

        def audit(conn: Connection, silence: Silence) -> None:
            event = audit_event(
                request,
                principal,
                "silence.create",
                target=str(silence.id),
                tenant=None if principal.is_admin else principal.tenant,
                detail={
                    "matchers": [str(m) for m in silence.matchers],
                    "ends_at": silence.ends_at.isoformat(),
                    "message": message,
                },
                request_id=rid,
            )
            self._audit.write(conn, event)

        silence = await change(self._service.silence, matchers, duration, by, message, audit)
        return json_response(silence.to_json(self._service.now()), 201, rid)

    async def delete_silence(self, request: Request) -> Response:
        rid = new_request_id()
        principal = operator(self._keys, request, "end silences")
        silence_id = DELETE_SILENCE.arg(request, "silence_id")
        mine = await run_in_threadpool(self._service.get_silence, silence_id)
        if mine is None or not silence_visible(principal, mine):
            raise NotFound(f"no silence {silence_id}", code="silence_not_found")

        def audit(conn: Connection, ended: Silence) -> None:
            event = audit_event(
                request,
                principal,
                "silence.delete",
                target=str(ended.id),
                tenant=None if principal.is_admin else principal.tenant,
                detail={"matchers": [str(m) for m in ended.matchers]},
                request_id=rid,
            )
            self._audit.write(conn, event)

        ended = await change(self._service.unsilence, silence_id, audit)
        return json_response(ended.to_json(self._service.now()), 200, rid)
