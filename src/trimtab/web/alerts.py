"""/ui/alerts: open alerts (firing and acknowledged), newest first, and acknowledge for
operators — the alert service's reads and its acknowledgement, with the API's visibility
rule (api/alerts.py: a non-admin sees the alerts labelled with its tenant or one of its
tenant's routes) and its audit row in the acknowledgement's transaction. Below them the
active silences; operators create one (matchers, a duration, a comment) and expire one,
with the API's tenant rules (alerts/tenancy.py) and audit rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import Connection
from starlette.responses import RedirectResponse, Response

from trimtab.alerts.model import Alert, Silence
from trimtab.alerts.service import AlertService
from trimtab.alerts.tenancy import confined, silence_visible
from trimtab.durations import parse_duration
from trimtab.errors import Invalid, NotFound, Unavailable
from trimtab.web.context import Page

STATES = {"open": ("firing", "acknowledged"), "firing": ("firing",),
          "acknowledged": ("acknowledged",), "resolved": ("resolved",), "all": ()}  # fmt: skip
LIMIT = 200
_SCAN = 5000  # a non-admin's list is filtered from this many newest alerts, as the API's
MESSAGE_CHARS = 2000
MATCHERS_MAX = 20  # as the API's (api/alert_endpoints.py)
SILENCES_LIMIT = 100


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
    listed = await asyncio.to_thread(lambda: service.silences(limit=SILENCES_LIMIT))
    p = page.viewer.principal
    silences = [s for s in listed if silence_visible(p, s)]
    return page.render(
        "alerts.html.j2", alerts=alerts, state=state, states=list(STATES), silences=silences,
        confined=None if p.is_admin else f"tenant={p.tenant}",
    )  # fmt: skip


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


def _confirmed(page: Page, action: str) -> str:
    if page.form.get("confirm") != "yes":
        raise Invalid(f"tick the confirmation box to {action}", param="confirm")
    comment = page.field("comment", required=True)
    assert comment is not None
    if len(comment) > MESSAGE_CHARS or "\x00" in comment:
        raise Invalid(f"'comment' must be at most {MESSAGE_CHARS} characters", param="comment")
    return comment


def parse_matchers(text: str) -> list[str]:
    """The form's matchers: one a line or separated by commas, like `route=support`."""
    found = [m.strip() for line in text.splitlines() for m in line.split(",")]
    matchers = [m for m in found if m]
    if not matchers or len(matchers) > MATCHERS_MAX or any("\x00" in m for m in matchers):
        raise Invalid(
            f"give 1 to {MATCHERS_MAX} matchers like route=support, one a line", param="matchers"
        )
    return matchers


async def silence(page: Page) -> Response:
    page.viewer.require_operator("silence alerts")
    service = _service(page)
    p = page.viewer.principal
    comment = _confirmed(page, "create the silence")
    matchers = confined(p, parse_matchers(page.field("matchers", required=True) or ""))
    text = page.field("duration", required=True) or ""
    duration = parse_duration(text)
    if duration is None:
        raise Invalid(f"'duration' must be like 30m, 2h or 1d, not '{text}'", param="duration")
    by = page.actor()

    def audit(conn: Connection, made: Silence) -> None:
        event = by.event(
            "silence.create", target=str(made.id), tenant=None if p.is_admin else p.tenant,
            detail={"matchers": [str(m) for m in made.matchers],
                    "ends_at": made.ends_at.isoformat(), "message": comment, "via": "console"},
        )  # fmt: skip
        page.deps.audit.write(conn, event)

    owner = p.owner or p.key_id
    await asyncio.to_thread(service.silence, matchers, duration, owner, comment, audit)
    return RedirectResponse("/ui/alerts#silences", 303)


async def expire(page: Page) -> Response:
    page.viewer.require_operator("end silences")
    service = _service(page)
    p = page.viewer.principal
    silence_id = page.request.path_params["silence_id"]
    found = None
    if silence_id.isdigit():
        found = await asyncio.to_thread(service.get_silence, int(silence_id))
    if found is None or not silence_visible(p, found):
        raise NotFound(f"no silence {silence_id}", code="silence_not_found")
    if page.form.get("confirm") != "yes":
        raise Invalid("tick the confirmation box to expire the silence", param="confirm")
    by = page.actor()

    def audit(conn: Connection, ended: Silence) -> None:
        event = by.event(
            "silence.delete", target=str(ended.id), tenant=None if p.is_admin else p.tenant,
            detail={"matchers": [str(m) for m in ended.matchers], "via": "console"},
        )  # fmt: skip
        page.deps.audit.write(conn, event)

    await asyncio.to_thread(service.unsilence, found.id, audit)
    return RedirectResponse("/ui/alerts#silences", 303)
