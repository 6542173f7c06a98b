"""/ui/incidents and /ui/incidents/{id}: incidents newest first, and one with its impact,
its timeline (the route's changes, audit rows, alerts and the incident's own events, as
GET /api/incidents/{id}/timeline assembles them) and its postmortem. Operators add a
note and move it (acknowledge, mitigate, resolve, reopen, close), each with a
confirmation and a message, through the store functions the API's handlers call (they
write the timeline event and the audit row in one transaction); a shared incident only
an admin. Containment actions and the postmortem go through the API and `trimtab incident`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.responses import RedirectResponse, Response

from trimtab.errors import Forbidden, Invalid, NotFound, Unavailable
from trimtab.incidents.model import MOVES
from trimtab.incidents.store import Incident, IncidentStore
from trimtab.incidents.timeline import assemble
from trimtab.types import SHARED
from trimtab.web.context import Page

STATES = ("any", "open", "acknowledged", "mitigated", "resolved", "closed")
LIMIT = 100
MESSAGE_CHARS = 4000  # as the API's text fields (api/params.MAX_TEXT)


def _store(page: Page) -> IncidentStore:
    if page.deps.incidents is None:
        raise Unavailable("incidents are not served by this process", code="incidents_off")
    return page.deps.incidents


async def index(page: Page) -> Response:
    store = _store(page)
    p = page.viewer.principal
    asked = page.request.query_params.get("tenant")
    if p.is_admin:
        scope = asked
    else:  # the API's rule (api/incidents.py)
        if asked is not None and asked != p.tenant:
            raise Forbidden(f"a key of tenant '{p.tenant}' may not read the incidents of '{asked}'")
        scope = p.tenant
    state = page.param("state") or "any"
    if state not in STATES:
        raise Invalid(f"state '{state}' is not one of {', '.join(STATES)}", param="state")
    found = await asyncio.to_thread(
        store.listed, scope, None if state == "any" else state, page.param("route"), LIMIT
    )
    return page.render("incidents.html.j2", incidents=[i.view() for i in found], state=state,
                       states=STATES)  # fmt: skip


async def _visible(page: Page, store: IncidentStore) -> Incident:
    incident_id = page.request.path_params["incident_id"]
    found = await asyncio.to_thread(store.get, incident_id)
    p = page.viewer.principal
    if found is None or not (p.is_admin or found.scope == p.tenant):
        raise NotFound(f"no incident '{incident_id}'")
    return found


def _may_change(page: Page, incident: Incident) -> bool:
    """The API's rule: operators and admins; a shared incident only an admin."""
    return page.viewer.can_operate and (page.viewer.is_admin or incident.scope != SHARED)


def moves(state: str, acknowledged: bool) -> list[str]:
    """The moves open to an incident in `state`, in the order a response goes (one is
    acknowledged once)."""
    open_to = [m for m, (sources, _to) in MOVES.items() if state in sources]
    return [m for m in open_to if not (m == "acknowledge" and acknowledged)]


async def detail(page: Page) -> Response:
    store = _store(page)
    found = await _visible(page, store)
    impact = await asyncio.to_thread(store.impact, found)
    entries = await asyncio.to_thread(assemble, store, found, datetime.now(UTC))
    return page.render(
        "incident.html.j2", incident=found.view(impact), postmortem=found.postmortem,
        timeline=[e.view() for e in entries], may_change=_may_change(page, found),
        moves=moves(found.state, found.times.acknowledged is not None),
    )  # fmt: skip


async def _changing(page: Page, action: str) -> tuple[IncidentStore, Incident, str]:
    page.viewer.require_operator(action)
    store = _store(page)
    incident = await _visible(page, store)
    if not _may_change(page, incident):
        raise Forbidden(f"incident {incident.id} is shared: only an admin may {action}")
    if page.form.get("confirm") != "yes":
        raise Invalid(f"tick the confirmation box to {action}", param="confirm")
    message = page.field("message", required=True)
    assert message is not None
    if len(message) > MESSAGE_CHARS or "\x00" in message:
        raise Invalid(f"'message' must be at most {MESSAGE_CHARS} characters", param="message")
    return store, incident, message


def _back(incident: Incident) -> Response:
    return RedirectResponse(f"/ui/incidents/{incident.id}", 303)


async def note(page: Page) -> Response:
    store, incident, message = await _changing(page, "add notes to incidents")
    await asyncio.to_thread(store.note, incident.id, message, page.actor())
    return _back(incident)


async def move(page: Page) -> Response:
    name = page.request.path_params["move"]
    if name not in MOVES:
        raise NotFound(f"no incident action '{name}'")
    store, incident, message = await _changing(page, f"{name} incidents")
    await asyncio.to_thread(store.move, incident.id, name, page.actor(), message)
    return _back(incident)
