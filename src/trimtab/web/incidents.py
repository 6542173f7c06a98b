"""/ui/incidents and /ui/incidents/{id}: incidents newest first, and one with its impact,
its timeline (the route's changes, audit rows, alerts and the incident's own events, as
GET /api/incidents/{id}/timeline assembles them) and its postmortem. Operators add a
note, contain it (roll the route back, pause its rollout; an admin also switches a model
to its fallbacks and back, revokes a key, blocks a tenant: incidents/containment.py, the
API's own), change its severity, move it (acknowledge, mitigate, resolve, reopen), write
the postmortem from its draft, record the rules closing needs and close it — each with a
confirmation and a message, through the functions the API's handlers call (they write the
timeline event and the audit rows in one transaction); a shared incident only an admin.
A rule of kind dataset_case may be built from the incident's failed requests
(learning/incident_cases.py, as the API's `from_failed`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.responses import RedirectResponse, Response

from trimtab.errors import Forbidden, Invalid, NotFound, Unavailable
from trimtab.incidents.containment import (
    CONTAINMENTS,
    KEY_ACTIONS,
    MODEL_ACTIONS,
    Containment,
    invalid,
)
from trimtab.incidents.model import MOVES, RULE_KINDS
from trimtab.incidents.postmortem import draft
from trimtab.incidents.records import Incident
from trimtab.incidents.store import IncidentStore
from trimtab.incidents.timeline import assemble
from trimtab.learning.incident_cases import push_failed_cases
from trimtab.types import SHARED
from trimtab.web.context import Page

STATES = ("any", "open", "acknowledged", "mitigated", "resolved", "closed")
LIMIT = 100
MESSAGE_CHARS = 4000  # as the API's text fields (api/params.MAX_TEXT)
NAME_CHARS = 256  # a route, model, key or tenant, as the API's action body
REF_CHARS = 512  # a rule's reference, as the API's (api/incident_endpoints.REF_CHARS)
SEVERITIES = ("1", "2", "3", "4")
# what each containment is called in a refusal ("only an admin may ...")
_WORDS = {"rollback": "roll back routes", "pause_rollout": "pause rollouts",
          "revoke_key": "revoke keys", "block_tenant": "block tenants",
          "switch_model": "switch models", "restore_model": "restore models"}  # fmt: skip


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
    may_change = _may_change(page, found)
    text = found.postmortem
    if text is None and may_change and found.state != "closed":  # the draft, to edit
        text = await asyncio.to_thread(draft, store, page.deps.routes, found)
    return page.render(
        "incident.html.j2", incident=found.view(impact), postmortem=text,
        recorded=found.postmortem is not None, timeline=[e.view() for e in entries],
        may_change=may_change, moves=moves(found.state, found.times.acknowledged is not None),
        rule_kinds=RULE_KINDS, severities=SEVERITIES, closed=found.state == "closed",
        admin_actions=(*MODEL_ACTIONS, *KEY_ACTIONS) if page.viewer.is_admin else (),
    )  # fmt: skip


async def _changing(
    page: Page, action: str, *, reason: bool = True
) -> tuple[IncidentStore, Incident, str]:
    page.viewer.require_operator(action)
    store = _store(page)
    incident = await _visible(page, store)
    if not _may_change(page, incident):
        raise Forbidden(f"incident {incident.id} is shared: only an admin may {action}")
    if page.form.get("confirm") != "yes":
        raise Invalid(f"tick the confirmation box to {action}", param="confirm")
    if not reason:
        return store, incident, ""
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


class _Asked:
    """The containment form's fields as the containment reads them
    (incidents/containment.Asked), with the API's limits."""

    def __init__(self, page: Page) -> None:
        self._page = page

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self._page.field(name)
        if value is None:
            if required:
                raise invalid(name, "is required")
            return None
        if len(value) > NAME_CHARS or "\x00" in value:
            raise invalid(name, f"must be a name of 1 to {NAME_CHARS} characters")
        return value

    def version(self, name: str) -> int | None:
        value = self._page.field(name)
        if value is None:
            return None
        digits = value[1:] if value[:1] in ("v", "V") else value
        if not digits.isdigit() or int(digits) < 1:
            raise invalid(name, f"'{value}' is not a version like v2 or 2")
        return int(digits)


def _containment(page: Page) -> Containment:
    if page.deps.containment is None:
        raise Unavailable("containment is not served by this process", code="incidents_off")
    return page.deps.containment


async def contain(page: Page) -> Response:
    action = page.request.path_params["action"]
    if action not in CONTAINMENTS:
        raise NotFound(f"no containment '{action}'")
    _, incident, message = await _changing(page, _WORDS[action])
    p = page.viewer.principal
    await _containment(page).contain(
        action, incident, p, page.actor(), _Asked(page), message, asyncio.to_thread
    )
    return _back(incident)


async def severity(page: Page) -> Response:
    store, incident, message = await _changing(page, "change incident severities")
    chosen = page.field("severity", required=True)
    if chosen not in SEVERITIES:
        raise Invalid("'severity' must be 1, 2, 3 or 4 (1 the worst)", param="severity")
    await asyncio.to_thread(store.set_severity, incident.id, int(chosen), page.actor(), message)
    return _back(incident)


async def postmortem(page: Page) -> Response:
    """Record the postmortem as edited on the page (its draft, or the recorded one)."""
    store, incident, _ = await _changing(page, "write postmortems", reason=False)
    markdown = page.form.get("markdown") or ""
    if not markdown.strip() or "\x00" in markdown:
        raise Invalid("'markdown' must be the postmortem's non-empty text", param="markdown")
    by = page.actor()
    await asyncio.to_thread(store.set_postmortem, incident.id, markdown, by, False)
    return _back(incident)


async def rule(page: Page) -> Response:
    """Record a reusable rule the incident bought: its kind, what it is, why."""
    store, incident, message = await _changing(page, "record incident rules")
    kind = page.field("kind", required=True)
    if kind not in RULE_KINDS:
        raise Invalid(f"'kind' must be one of {', '.join(RULE_KINDS)}", param="kind")
    by = page.actor()
    detail = None
    if page.form.get("from_failed") == "yes":  # a dataset case from the failed requests
        if kind != "dataset_case":
            raise Invalid("'from failed requests' applies to kind dataset_case only",
                          param="from_failed")  # fmt: skip
        name = page.field("dataset") or None
        if name is not None and len(name) > NAME_CHARS:
            raise Invalid(f"'dataset' must be at most {NAME_CHARS} characters", param="dataset")
        ref, detail = await asyncio.to_thread(
            push_failed_cases, store, page.deps.datasets, incident, name, message, by
        )
    else:
        ref = page.field("ref", required=True) or ""
        if len(ref) > REF_CHARS or "\x00" in ref:
            raise Invalid(f"'ref' must be at most {REF_CHARS} characters", param="ref")
    await asyncio.to_thread(store.add_rule, incident.id, kind, ref, message, by, detail)
    return _back(incident)
