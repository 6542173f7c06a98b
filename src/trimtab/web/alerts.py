"""/ui/alerts: open alerts (firing and acknowledged), newest first, and acknowledge for
operators — the alert service's reads and its acknowledgement, with the API's visibility
rule (api/alerts.py: a non-admin sees the alerts labelled with its tenant or one of its
tenant's routes) and its audit row in the acknowledgement's transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import Connection
from starlette.responses import RedirectResponse, Response

from trimtab.alerts.model import Alert
from trimtab.alerts.service import AlertService
from trimtab.errors import Invalid, NotFound, Unavailable
from trimtab.web.context import Page

STATES = {"open": ("firing", "acknowledged"), "firing": ("firing",),
          "acknowledged": ("acknowledged",), "resolved": ("resolved",), "all": ()}  # fmt: skip
LIMIT = 200
_SCAN = 5000  # a non-admin's list is filtered from this many newest alerts, as the API's
MESSAGE_CHARS = 2000


def visible(page: Page) -> Callable[[Alert], bool]:
    p = page.viewer.principal
    if p.is_admin:
        return lambda _a: True
    own = page.deps.tenant_routes(p.tenant)

    def visible(alert: Alert) -> bool:
        if "tenant" in alert.labels:
            return alert.labels["tenant"] == p.tenant
        return alert.labels.get("route") in own

    return visible


def _service(page: Page) -> AlertService:
    if page.deps.alerts is None:
        raise Unavailable("alerts are not served by this process", code="alerts_unavailable")
    return page.deps.alerts


async def index(page: Page) -> Response:
    service = _service(page)
    state = page.param("state") or "open"
    if state not in STATES:
        raise Invalid(f"state '{state}' is not one of {', '.join(STATES)}", param="state")
    scan = LIMIT if page.viewer.is_admin else _SCAN
    found = await asyncio.to_thread(lambda: service.alerts(states=STATES[state], limit=scan))
    seen = visible(page)
    alerts = [a for a in found if seen(a)][:LIMIT]
    return page.render("alerts.html.j2", alerts=alerts, state=state, states=list(STATES))


async def acknowledge(page: Page) -> Response:
    page.viewer.require_operator("acknowledge alerts")
    service = _service(page)
    alert_id = page.request.path_params["alert_id"]
    if not alert_id.isdigit():
        raise NotFound(f"no alert {alert_id}", code="alert_not_found")
    alert = await asyncio.to_thread(service.get, int(alert_id))
    if not visible(page)(alert):
        raise NotFound(f"no alert {alert_id}", code="alert_not_found")
    if page.form.get("confirm") != "yes":
        raise Invalid("tick the confirmation box to acknowledge the alert", param="confirm")
    message = page.field("message", required=True)
    assert message is not None
    if len(message) > MESSAGE_CHARS or "\x00" in message:
        raise Invalid(f"'message' must be at most {MESSAGE_CHARS} characters", param="message")
    p = page.viewer.principal
    by = page.actor()

    def audit(conn: Connection, acked: Alert) -> None:
        event = by.event(
            "alert.ack", target=str(acked.id), tenant=acked.labels.get("tenant"),
            detail={"dedup_key": acked.dedup_key, "message": message, "via": "console"},
        )  # fmt: skip
        page.deps.audit.write(conn, event)

    result = await asyncio.to_thread(
        service.acknowledge, alert.id, p.owner or p.key_id, message, audit
    )
    if result.change == "acknowledged" and page.deps.alerts_changed is not None:
        page.deps.alerts_changed([result])  # incidents and the outbox hear of it at once
    return RedirectResponse("/ui/alerts", 303)
