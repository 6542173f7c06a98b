"""/api/incidents: open, read, note, act on (state moves and containment), postmortem,
rules and close.

Writing needs a key of role operator or admin; reading, viewer, operator or admin. As for
SLOs (api/slos.py), a non-admin's incidents belong to its tenant and measure only its
tenant's traffic; an admin's are shared, as are those an alert without a tenant opens. A
non-admin reads and changes its tenant's incidents only (another's answers 404, as if it
did not exist); shared ones need an admin to change. Every write is audited in its
transaction (incidents/store.py); a containment is done by incidents/containment.py (the
console's too) through its owner's store — the rollback and pause of the rollouts store,
the revocation of the key store, the model switch of the gateway's — each with its own
audit row, and then recorded on the incident as `incident.contain`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import actor, json_response, operator, reader
from trimtab.api.errors import change
from trimtab.api.incident_endpoints import (
    ACTIONS,
    CLOSE_INCIDENT,
    GET_INCIDENT,
    GET_POSTMORTEM,
    INCIDENT,
    INCIDENT_ACTION,
    INCIDENT_NOTE,
    INCIDENT_POSTMORTEM,
    INCIDENT_RULE,
    INCIDENT_SEVERITY,
    INCIDENT_TENANT,
    INCIDENT_TIMELINE,
    LIST_INCIDENTS,
    NAMES,
    OPEN_INCIDENT,
    REF_CHARS,
    STATE_MOVES,
    TITLE_CHARS,
)
from trimtab.api.params import MAX_TEXT, bad_param, text_field
from trimtab.api.schema import parse_version
from trimtab.audit.log import Actor
from trimtab.auth.keyring import KeyRing
from trimtab.errors import Forbidden, NotFound
from trimtab.evals.store import DatasetStore
from trimtab.incidents.containment import Containment
from trimtab.incidents.model import (
    IMPACTS,
    INCIDENT_TYPES,
    RULE_KINDS,
    CustomerImpact,
    IncidentType,
)
from trimtab.incidents.postmortem import draft
from trimtab.incidents.records import Event, Incident
from trimtab.incidents.store import IncidentStore, Opening
from trimtab.incidents.timeline import assemble
from trimtab.learning.incident_cases import push_failed_cases
from trimtab.registry.store import RouteStore
from trimtab.types import SHARED, Principal, new_request_id

log = logging.getLogger(__name__)


def _event_view(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "kind": e.kind,
        "actor": e.actor,
        "message": e.message,
        "detail": e.detail,
    }


def _names(body: dict[str, Any], field: str) -> list[str]:
    value = body.get(field, [])
    if not isinstance(value, list) or len(value) > NAMES:
        raise bad_param(field, f"must be a list of at most {NAMES} names")
    for name in value:
        if not isinstance(name, str) or not name or len(name) > 256 or "\x00" in name:
            raise bad_param(field, "each entry must be a name of 1 to 256 characters")
    return sorted(set(value))


class _Asked:
    """An action's JSON body as the containment reads it (incidents/containment.Asked)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body

    def text(self, name: str, *, required: bool = False) -> str | None:
        return text_field(self._body, name, required=required, limit=256)

    def version(self, name: str) -> int | None:
        return parse_version(name, str(self._body.get(name) or ""))


class IncidentsAPI:
    def __init__(
        self,
        store: IncidentStore,
        routes: RouteStore,
        ring: KeyRing,
        datasets: DatasetStore,
        containment: Containment,
    ) -> None:
        self._store = store
        self._routes = routes
        self._ring = ring
        self._datasets = datasets
        self._containment = containment

    def routes(self) -> list[Route]:
        return [
            OPEN_INCIDENT.route(self.open),
            LIST_INCIDENTS.route(self.list_incidents),
            GET_INCIDENT.route(self.get_incident),
            INCIDENT_TIMELINE.route(self.timeline),
            INCIDENT_NOTE.route(self.note),
            INCIDENT_ACTION.route(self.act),
            INCIDENT_SEVERITY.route(self.set_severity),
            INCIDENT_POSTMORTEM.route(self.record_postmortem),
            GET_POSTMORTEM.route(self.get_postmortem),
            INCIDENT_RULE.route(self.add_rule),
            CLOSE_INCIDENT.route(self.close),
        ]

    # -- who may -------------------------------------------------------------------------

    async def _visible(self, request: Request, principal: Principal) -> Incident:
        incident_id = INCIDENT.of(request)
        found = await run_in_threadpool(self._store.get, incident_id)
        if found is None or not (principal.is_admin or found.scope == principal.tenant):
            raise NotFound(f"no incident '{incident_id}'")
        return found

    async def _changeable(self, request: Request, action: str) -> tuple[Principal, Incident]:
        principal = operator(self._ring, request, action)
        incident = await self._visible(request, principal)
        if not principal.is_admin and incident.scope == SHARED:
            raise Forbidden(f"incident {incident.id} is shared: only an admin may {action}")
        return principal, incident

    # -- opening and reading -------------------------------------------------------------

    async def open(self, request: Request) -> Response:
        rid = new_request_id()
        principal = operator(self._ring, request, "open incidents")
        body = await OPEN_INCIDENT.json(request)
        message = text_field(body, "message", required=True)
        assert message is not None
        kind = body.get("type")
        if kind not in INCIDENT_TYPES:
            raise bad_param("type", f"{kind!r} is not one of {', '.join(INCIDENT_TYPES)}")
        incident_type: IncidentType = kind
        impact = body.get("customer_impact")
        if impact is not None and impact not in IMPACTS:
            raise bad_param("customer_impact", f"{impact!r} is not one of {', '.join(IMPACTS)}")
        customer: CustomerImpact | None = impact
        sev = body.get("severity")
        if sev is not None and (type(sev) is not int or sev not in (1, 2, 3, 4)):
            raise bad_param("severity", "must be 1, 2, 3 or 4 (1 the worst)")
        routes = _names(body, "routes")
        models = _names(body, "models")
        tenants = _names(body, "tenants")
        if not principal.is_admin:
            others = [t for t in tenants if t != principal.tenant]
            if others:
                raise Forbidden(
                    f"a key of tenant '{principal.tenant}' may open incidents about its own "
                    f"tenant only, not '{others[0]}'"
                )
        for name in routes:
            found = await run_in_threadpool(
                self._routes.resolve, name, principal.tenant, principal.is_admin
            )
            if found is None:
                raise NotFound(f"routes: no route '{name}'")
        title = text_field(body, "title", limit=TITLE_CHARS)
        if title is None:
            where = ", ".join(routes or models or tenants) or "trimtab"
            title = f"{incident_type.replace('_', ' ')} on {where}"
        opening = Opening(
            title=title,
            type=incident_type,
            routes=routes,
            models=models,
            tenants=tenants,
            severity=sev,
            impact=customer,
            summary=message,
        )
        scope = SHARED if principal.is_admin else principal.tenant
        by = actor(request, principal, rid)
        incident = await change(lambda: self._store.open(opening, scope=scope, by=by))
        log.info("incident %s opened by %s: %s", incident.id, by.name or "anonymous", title)
        impact_now = await run_in_threadpool(self._store.impact, incident)
        return json_response(incident.view(impact_now), 201, rid)

    async def list_incidents(self, request: Request) -> Response:
        principal = reader(self._ring, request, "read incidents")
        asked = INCIDENT_TENANT.of(request)
        if principal.is_admin:
            scope = asked
        else:
            if asked is not None and asked != principal.tenant:
                raise Forbidden(
                    f"a key of tenant '{principal.tenant}' may not read the incidents of "
                    + (f"tenant '{asked}'" if asked else "the shared scope")
                )
            scope = principal.tenant
        state = LIST_INCIDENTS.arg(request, "state")
        route = LIST_INCIDENTS.arg(request, "route")
        limit = LIST_INCIDENTS.arg(request, "limit")
        found = await run_in_threadpool(
            self._store.listed, scope, None if state == "any" else state, route, limit
        )
        return json_response({"data": [i.view() for i in found]})

    async def get_incident(self, request: Request) -> Response:
        principal = reader(self._ring, request, "read incidents")
        incident = await self._visible(request, principal)
        impact = await run_in_threadpool(self._store.impact, incident)
        return json_response(incident.view(impact))

    async def timeline(self, request: Request) -> Response:
        principal = reader(self._ring, request, "read incidents")
        incident = await self._visible(request, principal)
        entries = await run_in_threadpool(assemble, self._store, incident, datetime.now(UTC))
        return json_response({"incident": incident.id, "data": [e.view() for e in entries]})

    # -- notes and actions ---------------------------------------------------------------

    async def note(self, request: Request) -> Response:
        rid = new_request_id()
        principal, incident = await self._changeable(request, "add notes to incidents")
        body = await INCIDENT_NOTE.json(request)
        message = text_field(body, "message", required=True)
        assert message is not None
        by = actor(request, principal, rid)
        event = await change(self._store.note, incident.id, message, by)
        return json_response(_event_view(event), 201, rid)

    async def act(self, request: Request) -> Response:
        rid = new_request_id()
        principal, incident = await self._changeable(request, "act on incidents")
        body = await INCIDENT_ACTION.json(request)
        action = body.get("action")
        if action not in ACTIONS:
            raise bad_param("action", f"{action!r} is not one of {', '.join(ACTIONS)}")
        message = text_field(body, "message")
        by = actor(request, principal, rid)
        if action in STATE_MOVES:
            await change(self._store.move, incident.id, action, by, message)
            result: dict[str, Any] = {}
            event = (await run_in_threadpool(self._store.events, incident.id))[-1]
        else:
            done = await self._containment.contain(
                action, incident, principal, by, _Asked(body), message, change
            )
            result, event = done.result, done.event
        updated = await run_in_threadpool(self._store.require, incident.id)
        return json_response(
            {"incident": updated.view(), "event": _event_view(event), "result": result},
            200,
            rid,
        )

    async def set_severity(self, request: Request) -> Response:
        rid = new_request_id()
        principal, incident = await self._changeable(request, "change incident severities")
        body = await INCIDENT_SEVERITY.json(request)
        sev = body.get("severity")
        if type(sev) is not int or sev not in (1, 2, 3, 4):
            raise bad_param("severity", "must be 1, 2, 3 or 4 (1 the worst)")
        message = text_field(body, "message", required=True)
        assert message is not None
        by = actor(request, principal, rid)
        updated = await change(self._store.set_severity, incident.id, sev, by, message)
        return json_response(updated.view(), 200, rid)

    # -- postmortem, rules, close --------------------------------------------------------

    def _draft(self, incident: Incident) -> str:
        return draft(self._store, self._routes, incident)

    async def record_postmortem(self, request: Request) -> Response:
        rid = new_request_id()
        principal, incident = await self._changeable(request, "write postmortems")
        body = await INCIDENT_POSTMORTEM.json(request)
        markdown = body.get("markdown")
        if markdown is not None and (not isinstance(markdown, str) or not markdown.strip()):
            raise bad_param("markdown", "must be the postmortem's non-empty markdown text")
        drafted = markdown is None
        text = markdown if isinstance(markdown, str) else None
        if text is None:
            text = await run_in_threadpool(self._draft, incident)
        by = actor(request, principal, rid)
        updated = await change(self._store.set_postmortem, incident.id, text, by, drafted)
        view = {
            "incident": incident.id,
            "markdown": text,
            "recorded": True,
            "recorded_at": updated.postmortem_at.isoformat() if updated.postmortem_at else None,
        }
        return json_response(view, 200, rid)

    async def get_postmortem(self, request: Request) -> Response:
        principal = reader(self._ring, request, "read incidents")
        incident = await self._visible(request, principal)
        if incident.postmortem is not None:
            at = incident.postmortem_at
            view = {
                "incident": incident.id,
                "markdown": incident.postmortem,
                "recorded": True,
                "recorded_at": at.isoformat() if at else None,
            }
        else:
            text = await run_in_threadpool(self._draft, incident)
            view = {"incident": incident.id, "markdown": text, "recorded": False,
                    "recorded_at": None}  # fmt: skip
        return json_response(view)

    async def add_rule(self, request: Request) -> Response:
        rid = new_request_id()
        principal, incident = await self._changeable(request, "record incident rules")
        body = await INCIDENT_RULE.json(request)
        kind = body.get("kind")
        if kind not in RULE_KINDS:
            raise bad_param("kind", f"{kind!r} is not one of {', '.join(RULE_KINDS)}")
        message = text_field(body, "message", required=True, limit=MAX_TEXT)
        assert message is not None
        ref = text_field(body, "ref", limit=REF_CHARS)
        from_failed = body.get("from_failed", False)
        if not isinstance(from_failed, bool):
            raise bad_param("from_failed", "must be a boolean")
        by = actor(request, principal, rid)
        detail: dict[str, Any] | None = None
        if from_failed:
            if kind != "dataset_case":
                raise bad_param("from_failed", "applies to kind dataset_case only")
            ref, detail = await self._dataset_case(incident, body, by, message)
        if ref is None:
            raise bad_param("ref", "is required: what the rule is (an SLO, a limit, ...)")
        chosen = ref
        rule = await change(
            lambda: self._store.add_rule(incident.id, kind, chosen, message, by, detail)
        )
        updated = await run_in_threadpool(self._store.require, incident.id)
        return json_response({"incident": updated.view(), "rule": rule.view()}, 201, rid)

    async def _dataset_case(
        self, incident: Incident, body: dict[str, Any], by: Actor, message: str
    ) -> tuple[str, dict[str, Any]]:
        """Push the incident's failed requests as the next version of a dataset (its
        scope's): the rule's reference is `name@vN` (learning/incident_cases.py)."""
        name = text_field(body, "dataset", limit=128)
        return await change(
            push_failed_cases, self._store, self._datasets, incident, name, message, by
        )

    async def close(self, request: Request) -> Response:
        rid = new_request_id()
        principal, incident = await self._changeable(request, "close incidents")
        body = await CLOSE_INCIDENT.json(request)
        message = text_field(body, "message")
        by = actor(request, principal, rid)
        closed = await change(self._store.move, incident.id, "close", by, message)
        return json_response(closed.view(), 200, rid)
