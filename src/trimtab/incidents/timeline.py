"""An incident's timeline, assembled from what trimtab already records about the affected
routes, models and tenants around the incident's start:

- the routes' own timelines (`route_events`, registry/timeline.py): applies, new
  versions, rollout starts, stages, pauses, decisions, promotions, rollbacks, gate refusals;
- the audit log (audit/log.py): key changes of the affected tenants, SLO applies and the
  other administrative changes, except those the routes' timelines or the incident already
  hold (route.*, rollout.*, incident.*);
- budget events (alerts/events.py) of the affected tenants, models and routes;
- alerts (the alert store's `alerts` table) labelled with an affected route, model or
  tenant, or with the incident's dedup key: opened, acknowledged, resolved;
- breaker trips: the alert of a breaker (alerts/probes.py) names the models its deployment
  serves, so the trips of the deployments serving an affected model (named by the
  incident, or one that served an affected route in the window: `rollups_minute`) are
  here, as `breaker_tripped` when the alert opened and `breaker_closed` when it resolved;
- the incident's own entries (`incident_events`): its opening, each alert attached, notes,
  actions taken from it, acknowledgements, state changes, the postmortem and its rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, not_, or_, select

from trimtab.alerts.events import list_events
from trimtab.alerts.model import Alert
from trimtab.alerts.store import to_alert
from trimtab.incidents.records import Incident
from trimtab.incidents.store import IncidentStore
from trimtab.store.engine import as_utc
from trimtab.store.tables import alerts, audit_log, rollups, route_events

BEFORE = timedelta(hours=2)  # how far before the start the timeline looks for causes
_LIMIT = 1000  # entries per source
_COVERED = ("route.", "rollout.", "incident.")  # audit actions another source already shows


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    source: str  # route | audit | budget | alert | telemetry | incident
    kind: str
    summary: str
    actor: str | None = None
    route: str | None = None
    detail: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "source": self.source,
            "kind": self.kind,
            "summary": self.summary,
            "actor": self.actor,
            "route": self.route,
            "detail": self.detail,
        }


def _route_summary(kind: str, version: int | None, reason: str | None, detail: Any) -> str:
    v = f"v{version}" if version is not None else ""
    d = detail if isinstance(detail, dict) else {}
    said = {
        "apply": f"{v} applied" + (" (stable)" if d.get("stable") else ""),
        "rollout_start": f"rollout to {v} started",
        "rollout_stage": f"rollout of {v} moved to {d.get('percent', '?')} %",
        "pause": f"rollout of {v} paused",
        "resume": f"rollout of {v} resumed",
        "promote": f"{v} promoted to stable",
        "abort": f"rollout of {v} aborted",
        "decision": f"canary decision on {v}",
        "gate": f"release gate checked for {v}",
        "gate_override": f"release gate overridden for {v}",
    }.get(kind)
    if kind == "rollback":
        if d.get("to") == version and d.get("from") not in (None, version):
            said = f"rolled back from v{d['from']} to {v}"
        elif d.get("to") == version:  # a rollout ended: its stable version stays
            said = f"rollout rolled back: {v} serves every request"
        else:  # the controller's: logged with the candidate
            said = f"rollout of {v} rolled back"
    text = said or f"{kind} {v}".strip()
    return f"{text}: {reason}" if reason else text


def _route_entries(
    engine: Engine, incident: Incident, start: datetime, end: datetime
) -> list[Entry]:
    if not incident.routes:
        return []
    e = route_events.c
    query = (
        select(route_events)
        .where(e.route.in_(sorted(incident.routes)), e.at >= start, e.at <= end)
        .order_by(e.at, e.id)
        .limit(_LIMIT)
    )
    if incident.scope:  # a tenant's incident: its own routes and the shared ones
        query = query.where(e.scope.in_((incident.scope, "")))
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        Entry(
            at=as_utc(r["at"]),
            source="route",
            kind=r["kind"],
            summary=f"{r['route']}: "
            + _route_summary(r["kind"], r["version"], r["reason"], r["detail"]),
            actor=r["actor"],
            route=r["route"],
            detail={"version": r["version"], **(r["detail"] or {})},
        )
        for r in rows
    ]


def _audit_entries(
    engine: Engine, incident: Incident, start: datetime, end: datetime
) -> list[Entry]:
    c = audit_log.c
    related: list[Any] = []
    if incident.routes:
        related.append(c.target.in_(sorted(incident.routes)))
    if incident.models:
        related.append(c.target.in_(sorted(incident.models)))
    tenants = set(incident.tenants) | ({incident.scope} if incident.scope else set())
    if tenants:
        related.append(c.tenant.in_(sorted(tenants)))
    elif not incident.scope:
        related.append(c.action.like("key.%"))  # a shared incident: every key change
    if not related:
        return []
    query = (
        select(audit_log)
        .where(c.at >= start, c.at <= end, or_(*related))
        .where(*(not_(c.action.like(prefix + "%")) for prefix in _COVERED))
        .order_by(c.at, c.id)
        .limit(_LIMIT)
    )
    if incident.scope:
        query = query.where(c.tenant == incident.scope)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        Entry(
            at=as_utc(r["at"]),
            source="audit",
            kind=r["action"],
            summary=f"{r['action']} {r['target'] or ''}".strip(),
            actor=r["actor"] or r["actor_key_id"],
            detail=r["detail"],
        )
        for r in rows
    ]


def _budget_entries(
    engine: Engine, incident: Incident, start: datetime, end: datetime
) -> list[Entry]:
    scopes = {f"tenant:{t}" for t in incident.tenants}
    if incident.scope:
        scopes.add(f"tenant:{incident.scope}")
    scopes |= {f"model:{m}" for m in incident.models}
    scopes |= {f"route:{r}" for r in incident.routes}
    events = list_events(engine, start, scopes, _LIMIT)
    out = []
    for ev in events:
        at = datetime.fromisoformat(ev["at"])
        if at > end:
            continue
        share = round(float(ev["threshold"]) * 100)
        out.append(
            Entry(
                at=at,
                source="budget",
                kind="budget",
                summary=(
                    f"budget {ev['scope']} ({ev['period']}) crossed {share} %: "
                    f"{ev['spent_usd']:.2f} of {ev['limit_usd']:.2f} USD"
                ),
                detail=ev,
            )
        )
    return out


def _alert_entries(
    engine: Engine, incident: Incident, start: datetime, end: datetime
) -> list[Entry]:
    """The alerts of the affected routes, models and tenants (by their labels) that were
    open at some moment of the window."""
    a = alerts.c
    query = (
        select(alerts)
        .where(a.started_at <= end, or_(a.resolved_at.is_(None), a.resolved_at >= start))
        .order_by(a.started_at, a.id)
        .limit(_LIMIT)
    )
    with engine.connect() as conn:
        found = [to_alert(r) for r in conn.execute(query).mappings()]
    wanted = (
        [("route", r) for r in incident.routes]
        + [("model", m) for m in incident.models]
        + [("tenant", t) for t in incident.tenants]
    )
    models = set(incident.models) | _served_models(engine, incident, start, end)
    out = []
    for alert in found:
        labels = alert.labels
        if incident.scope and labels.get("tenant") not in (None, incident.scope):
            continue
        # a breaker's deployment may serve several models: `models` names them all
        served = alert.source == "breaker" and bool(models & set(_models(labels)))
        if (
            alert.dedup_key != incident.dedup_key
            and not served
            and not any(labels.get(k) == v for k, v in wanted)
        ):
            continue
        what = f"{alert.severity} alert {alert.dedup_key}"
        detail = {"alert": alert.id, "labels": dict(labels), "source": alert.source}
        if alert.source == "breaker":
            out += _breaker_entries(alert, start, end, detail)
            continue
        if start <= alert.started_at <= end:
            out.append(Entry(alert.started_at, "alert", "alert_opened",
                             f"{what} opened: {alert.summary}", None, labels.get("route"),
                             detail))  # fmt: skip
        if alert.acked_at is not None and start <= alert.acked_at <= end:
            out.append(Entry(alert.acked_at, "alert", "alert_acknowledged",
                             f"{what} acknowledged", alert.acked_by, labels.get("route"),
                             detail))  # fmt: skip
        if alert.resolved_at is not None and start <= alert.resolved_at <= end:
            out.append(Entry(alert.resolved_at, "alert", "alert_resolved",
                             f"{what} resolved", None, labels.get("route"), detail))  # fmt: skip
    return out


def _served_models(engine: Engine, incident: Incident, start: datetime, end: datetime) -> set[str]:
    """The models that served the affected routes in the window (a route request's rollup
    model is its version's), whose breakers' trips belong on the timeline too."""
    if not incident.routes:
        return set()
    r = rollups.c
    query = (
        select(r.model)
        .where(r.route.in_(sorted(incident.routes)), r.minute >= start, r.minute <= end)
        .distinct()
    )
    if incident.scope:  # a tenant's incident: its own traffic
        query = query.where(r.tenant == incident.scope)
    with engine.connect() as conn:
        return {m for m in conn.scalars(query) if m}


def _models(labels: Mapping[str, str]) -> list[str]:
    return [m for m in labels.get("models", labels.get("model", "")).split(",") if m]


def _breaker_entries(
    alert: Alert, start: datetime, end: datetime, detail: dict[str, Any]
) -> list[Entry]:
    """A breaker's alert as its trip and its closing (an acknowledgement as any alert's)."""
    deployment = alert.labels.get("deployment", alert.dedup_key.removeprefix("breaker/"))
    serving = ", ".join(_models(alert.labels)) or "no configured model"
    what = f"breaker of {deployment} (serving {serving})"
    out = []
    if start <= alert.started_at <= end:
        # not the alert's summary: that is its latest signal's (half-open, probing)
        out.append(Entry(alert.started_at, "alert", "breaker_tripped",
                         f"{what} tripped: its requests go elsewhere", None, None,
                         detail))  # fmt: skip
    if alert.acked_at is not None and start <= alert.acked_at <= end:
        out.append(Entry(alert.acked_at, "alert", "alert_acknowledged",
                         f"{alert.severity} alert {alert.dedup_key} acknowledged",
                         alert.acked_by, None, detail))  # fmt: skip
    if alert.resolved_at is not None and start <= alert.resolved_at <= end:
        out.append(Entry(alert.resolved_at, "alert", "breaker_closed", f"{what} closed",
                         None, None, detail))  # fmt: skip
    return out


def _incident_entries(store: IncidentStore, incident: Incident) -> list[Entry]:
    out = []
    for ev in store.events(incident.id):
        summary = ev.kind + (f": {ev.message}" if ev.message else "")
        if ev.kind == "action" and ev.detail:
            summary = f"action {ev.detail.get('action')}" + (
                f": {ev.message}" if ev.message else ""
            )
        out.append(Entry(ev.at, "incident", ev.kind, summary, ev.actor, None, ev.detail))
    return out


def assemble(store: IncidentStore, incident: Incident, now: datetime) -> list[Entry]:
    """Every entry from `BEFORE` the incident's start (its first bad minute, else its
    detection) to its end (closing, else now), oldest first."""
    start, _ = incident.window(now)
    start = min(start, incident.opened_at) - BEFORE
    end = incident.closed_at or now
    engine = store.engine
    entries = [
        *_route_entries(engine, incident, start, end),
        *_audit_entries(engine, incident, start, end),
        *_budget_entries(engine, incident, start, end),
        *_alert_entries(engine, incident, start, end),
        *_incident_entries(store, incident),
    ]
    first_bad = incident.times.first_bad
    if first_bad is not None:
        entries.append(
            Entry(first_bad, "telemetry", "first_bad_minute",
                  "first minute with failed requests on the affected routes (the rollups)")
        )  # fmt: skip
    order = {"route": 0, "audit": 1, "budget": 2, "alert": 3, "telemetry": 4, "incident": 5}
    return sorted(entries, key=lambda e: (e.at, order[e.source]))
