"""Incidents in the store: open (by hand or from a page), notes, actions, state moves, the
postmortem and the rules; every write lands on the incident's own timeline
(`incident_events`) and the audit log, in one transaction.

A page-severity alert opens an incident with `open_from_alert`; a second page with the
same dedup key while that incident is open or mitigated attaches to it (the unique
`open_dedup_key` makes that hold across processes). The severity comes from the matrix
(incidents/model.py) over the blast radius measured from the rollups (incidents/impact.py).
What is read is in incidents/records.py; what every write does in its transaction (the row
lock, the timeline entry, the audit row, the state moves) in incidents/writes.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from trimtab.audit.log import Actor
from trimtab.errors import Conflict, NotFound
from trimtab.incidents.impact import LOOKBACK, Affected, bad_minutes, measure, window_of
from trimtab.incidents.model import (
    ACTIVE,
    DEFAULT_IMPACT,
    CustomerImpact,
    Impact,
    IncidentType,
    first_bad_minute,
    severity,
    type_of,
)
from trimtab.incidents.records import Event, Incident, Rule, incident_of, rule_of
from trimtab.incidents.writes import add_event, apply_move, audit, lock, new_row_id
from trimtab.store.engine import as_utc
from trimtab.store.tables import incident_events, incident_rules, incidents

ALERTS = Actor.system("alerts")
_ATTEMPTS = 3


def new_incident_id() -> str:
    return "inc_" + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Opening:
    """What opening an incident says. `severity` None: from the matrix over the blast
    radius measured now; `impact` None: the type's default customer impact."""

    title: str
    type: IncidentType
    routes: Sequence[str] = ()
    models: Sequence[str] = ()
    tenants: Sequence[str] = ()
    severity: int | None = None
    impact: CustomerImpact | None = None
    summary: str | None = None
    detected_at: datetime | None = None  # the alert's start; None: now
    dedup_key: str | None = None


class IncidentStore:
    """Reads and writes `incidents`, `incident_events` and `incident_rules`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- opening -----------------------------------------------------------------------

    def open(
        self, opening: Opening, *, scope: str, by: Actor, now: datetime | None = None
    ) -> Incident:
        """Open an incident: its first bad minute and blast radius from the rollups, its
        severity from the matrix unless given."""
        at = now or datetime.now(UTC)
        detected = opening.detected_at or at
        affected = Affected(opening.routes, opening.models, opening.tenants, scope)
        first_bad = first_bad_minute(
            bad_minutes(self.engine, affected, detected - LOOKBACK, detected), detected
        )
        start, end = window_of(first_bad, detected, None, at)
        impact = measure(self.engine, affected, start, end)
        customer = opening.impact or DEFAULT_IMPACT[opening.type]
        matrix = severity(customer, impact.radius)
        sev = opening.severity if opening.severity is not None else matrix
        incident_id = new_incident_id()
        detail = {
            "severity": sev,
            "matrix_severity": matrix,
            "customer_impact": customer,
            "blast_radius": impact.radius,
            "impact": impact.view(),
            "type": opening.type,
            "routes": list(opening.routes),
            "models": list(opening.models),
            "tenants": list(opening.tenants),
            "dedup_key": opening.dedup_key,
        }
        with self.engine.begin() as conn:
            conn.execute(
                insert(incidents).values(
                    id=incident_id,
                    scope=scope,
                    title=opening.title,
                    type=opening.type,
                    severity=sev,
                    customer_impact=customer,
                    state="open",
                    routes=sorted(set(opening.routes)),
                    models=sorted(set(opening.models)),
                    tenants=sorted(set(opening.tenants)),
                    summary=opening.summary,
                    opened_by=by.name or None,
                    opened_at=at,
                    first_bad_at=first_bad,
                    detected_at=detected,
                    dedup_key=opening.dedup_key,
                    open_dedup_key=opening.dedup_key,
                )
            )
            add_event(conn, incident_id, "opened", by, opening.summary or opening.title, detail, at)
            audit(conn, by, "incident.open", incident_id, scope, detail)
        found = self.get(incident_id)
        assert found is not None
        return found

    def open_from_alert(
        self,
        *,
        dedup_key: str,
        labels: Mapping[str, str],
        severity: str,
        summary: str,
        started_at: datetime,
        source: str | None = None,
        by: Actor = ALERTS,
        now: datetime | None = None,
    ) -> tuple[Incident, bool] | None:
        """A page opens an incident, or attaches to the open one of the same dedup key, else
        to the open one a page opened on the same route (True: opened). Tickets and infos
        open nothing (None). The labels name the route, model and tenant; `incident_type`
        (else the alert's source) the type."""
        if severity != "page":
            return None
        at = now or datetime.now(UTC)
        names = dict(labels)
        for _ in range(_ATTEMPTS):
            current = self._open_for(dedup_key) or self._open_on_route(names)
            if current is not None:
                self._attach(current, dedup_key, names, summary, started_at, by, at)
                found = self.get(current)
                assert found is not None
                return found, False
            tenant = names.get("tenant")
            opening = Opening(
                title=summary[:512] or dedup_key,
                type=type_of(names, source),
                routes=[names["route"]] if names.get("route") else [],
                models=[names["model"]] if names.get("model") else [],
                tenants=[tenant] if tenant else [],
                impact="high",
                summary=summary,
                detected_at=started_at,
                dedup_key=dedup_key,
            )
            try:
                return self.open(opening, scope=tenant or "", by=by, now=at), True
            except IntegrityError:
                continue  # another process opened it meanwhile: attach to that one
        raise Conflict(f"could not open or find the incident of alert '{dedup_key}'")

    def acknowledge_from_alert(
        self, dedup_key: str, by: Actor, at: datetime | None = None
    ) -> Incident | None:
        """The alert of `dedup_key` was acknowledged: so is its open incident, if it was
        not yet (None: no open incident for it)."""
        incident_id = self._open_for(dedup_key)
        if incident_id is None:
            return None
        when = at or datetime.now(UTC)
        with self.engine.begin() as conn:
            lock(conn, incident_id)
            apply_move(conn, incident_id, "acknowledge", by, "the alert was acknowledged", when,
                       quiet=True)  # fmt: skip
        return self.require(incident_id)

    def _open_on_route(self, labels: Mapping[str, str]) -> str | None:
        """The open or mitigated incident a page opened on the same route of the same
        scope: another rule of the same SLO (6h/30m after 1h/5m), the candidate's page
        beside the route's, another SLO of the route — one condition of one route, one
        incident."""
        route = labels.get("route")
        if not route:
            return None
        c = incidents.c
        query = (
            select(c.id, c.routes)
            .where(c.state.in_(ACTIVE), c.dedup_key.is_not(None))
            .where(c.scope == (labels.get("tenant") or ""))
            .order_by(c.opened_at)
        )
        with self.engine.connect() as conn:
            for incident_id, routes in conn.execute(query):
                if route in (routes or ()):
                    return str(incident_id)
        return None

    def _open_for(self, dedup_key: str) -> str | None:
        query = select(incidents.c.id).where(incidents.c.open_dedup_key == dedup_key)
        with self.engine.connect() as conn:
            found: str | None = conn.execute(query).scalar()
        return found

    def _attach(
        self,
        incident_id: str,
        dedup_key: str,
        labels: dict[str, str],
        summary: str,
        started_at: datetime,
        by: Actor,
        at: datetime,
    ) -> None:
        detail = {"dedup_key": dedup_key, "labels": labels, "started_at": started_at.isoformat()}
        with self.engine.begin() as conn:
            add_event(conn, incident_id, "alert", by, summary, detail, at)
            audit(conn, by, "incident.alert", incident_id, None, detail)

    # -- reading -----------------------------------------------------------------------

    def get(self, incident_id: str) -> Incident | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
            if row is None:
                return None
            rules = conn.execute(
                select(incident_rules)
                .where(incident_rules.c.incident_id == incident_id)
                .order_by(incident_rules.c.id)
            ).all()
        return incident_of(row, [rule_of(r) for r in rules])

    def require(self, incident_id: str) -> Incident:
        found = self.get(incident_id)
        if found is None:
            raise NotFound(f"no incident '{incident_id}'")
        return found

    def listed(
        self, scope: str | None, state: str | None = None, route: str | None = None,
        limit: int = 100,
    ) -> list[Incident]:  # fmt: skip
        """Incidents, newest first: one scope's (None: every scope's)."""
        c = incidents.c
        query = select(incidents).order_by(c.opened_at.desc(), c.id.desc())
        if scope is not None:
            query = query.where(c.scope == scope)
        if state is not None:
            query = query.where(c.state == state)
        if route is None:  # else the routes (a JSON list) are matched below, up to `limit`
            query = query.limit(limit)
        found: list[Incident] = []
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                if route is None or route in (r.routes or ()):
                    found.append(incident_of(r))
                    if len(found) >= limit:
                        break
        return found

    def events(self, incident_id: str) -> list[Event]:
        e = incident_events.c
        query = select(incident_events).where(e.incident_id == incident_id).order_by(e.id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Event(r.id, as_utc(r.at), r.kind, r.actor, r.message, r.detail) for r in rows]

    def impact(self, incident: Incident, now: datetime | None = None) -> Impact:
        start, end = incident.window(now or datetime.now(UTC))
        return measure(self.engine, incident.affected, start, end)

    # -- writing -----------------------------------------------------------------------

    def note(self, incident_id: str, message: str, by: Actor, now: datetime | None = None) -> Event:
        at = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            scope = lock(conn, incident_id)
            event = add_event(conn, incident_id, "note", by, message, None, at)
            audit(conn, by, "incident.note", incident_id, scope, {"message": message})
        return event

    def record_action(
        self,
        incident_id: str,
        action: str,
        by: Actor,
        message: str | None,
        detail: dict[str, Any],
        now: datetime | None = None,
        mitigates: bool = False,
    ) -> Event:
        """A containment action taken from the incident (its effect already committed by
        its owner's store, with that store's own audit row): on the timeline, audited as
        `incident.contain`; `mitigates` also marks the incident mitigated when it was open."""
        at = now or datetime.now(UTC)
        full = {"action": action, **detail}
        with self.engine.begin() as conn:
            scope = lock(conn, incident_id)
            event = add_event(conn, incident_id, "action", by, message, full, at)
            audit(conn, by, "incident.contain", incident_id, scope, full)
            if mitigates:
                apply_move(conn, incident_id, "mitigate", by, None, at, quiet=True)
        return event

    def move(
        self,
        incident_id: str,
        move: str,
        by: Actor,
        message: str | None = None,
        now: datetime | None = None,
    ) -> Incident:
        """acknowledge, mitigate, resolve, reopen or close (close: only with a postmortem
        and a rule, once resolved; a 409 naming what is missing)."""
        at = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            lock(conn, incident_id)
            apply_move(conn, incident_id, move, by, message, at)
        return self.require(incident_id)

    def set_severity(
        self, incident_id: str, sev: int, by: Actor, message: str, now: datetime | None = None
    ) -> Incident:
        """Change the severity (1 the worst) with why: a 409 once closed, or when it is
        that already."""
        at = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            scope = lock(conn, incident_id)
            row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
            if row.state == "closed":
                raise Conflict(f"incident {incident_id} is closed", code="incident_state")
            if row.severity == sev:
                raise Conflict(f"incident {incident_id} is SEV{sev} already", code="unchanged")
            conn.execute(
                update(incidents).where(incidents.c.id == incident_id).values(severity=sev)
            )
            detail = {"from": row.severity, "to": sev, "message": message}
            add_event(conn, incident_id, "severity", by, message, detail, at)
            audit(conn, by, "incident.severity", incident_id, scope, detail)
        return self.require(incident_id)

    def set_postmortem(
        self, incident_id: str, markdown: str, by: Actor, drafted: bool, now: datetime | None = None
    ) -> Incident:
        at = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            scope = lock(conn, incident_id)
            conn.execute(
                update(incidents)
                .where(incidents.c.id == incident_id)
                .values(postmortem=markdown, postmortem_at=at)
            )
            detail = {"drafted": drafted, "chars": len(markdown)}
            add_event(conn, incident_id, "postmortem", by, None, detail, at)
            audit(conn, by, "incident.postmortem", incident_id, scope, detail)
        return self.require(incident_id)

    def add_rule(
        self,
        incident_id: str,
        kind: str,
        ref: str,
        message: str,
        by: Actor,
        detail: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Rule:
        at = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            scope = lock(conn, incident_id)
            rule_id = new_row_id(conn.execute(
                insert(incident_rules).values(
                    incident_id=incident_id, kind=kind, ref=ref, message=message,
                    detail=detail, created_at=at, created_by=by.name or None,
                )
            ))  # fmt: skip
            info = {"rule": rule_id, "kind": kind, "ref": ref, "message": message, **(detail or {})}
            add_event(conn, incident_id, "rule", by, message, info, at)
            audit(conn, by, "incident.rule", incident_id, scope, info)
        return Rule(int(rule_id), kind, ref, message, detail, at, by.name or None)
