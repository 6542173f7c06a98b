"""/ui/incidents and /ui/incidents/{id}: incidents newest first, and one with its impact,
its timeline (the route's changes, audit rows, alerts and the incident's own events, as
GET /api/incidents/{id}/timeline assembles them) and its postmortem — read-only here:
notes, containment actions and closing go through the API and `trimtab incident`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.responses import Response

from trimtab.errors import Forbidden, Invalid, NotFound, Unavailable
from trimtab.incidents.store import IncidentStore
from trimtab.incidents.timeline import assemble
from trimtab.web.context import Page

STATES = ("any", "open", "acknowledged", "mitigated", "resolved", "closed")
LIMIT = 100


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


async def detail(page: Page) -> Response:
    store = _store(page)
    incident_id = page.request.path_params["incident_id"]
    found = await asyncio.to_thread(store.get, incident_id)
    p = page.viewer.principal
    if found is None or not (p.is_admin or found.scope == p.tenant):
        raise NotFound(f"no incident '{incident_id}'")
    impact = await asyncio.to_thread(store.impact, found)
    entries = await asyncio.to_thread(assemble, store, found, datetime.now(UTC))
    return page.render(
        "incident.html.j2", incident=found.view(impact), postmortem=found.postmortem,
        timeline=[e.view() for e in entries],
    )  # fmt: skip
