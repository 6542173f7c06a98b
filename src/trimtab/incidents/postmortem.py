"""The postmortem draft of an incident, as markdown, rendered with Jinja2 from
incidents/templates/postmortem.md.j2 (package data).

The draft fills what the record knows: the summary, the impact with its numbers, the
timeline, contributing factors read from it (a change shortly before the first bad minute,
a slow detection), what went well (containment from the incident, a quick detection) and
the action items with their owners (the affected routes' owners). Its wording is blameless:
it names systems and conditions, never who acted (the timeline's entries carry no actor).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2

from trimtab.durations import clock
from trimtab.incidents.model import Impact
from trimtab.incidents.records import Incident
from trimtab.incidents.store import IncidentStore
from trimtab.incidents.timeline import Entry, assemble
from trimtab.registry.store import RouteStore

_TEMPLATES = Path(__file__).parent / "templates"
CHANGES = ("apply", "rollout_start", "rollout_stage", "promote", "resume", "gate_override")
QUICK_DETECTION = timedelta(minutes=5)

_CONDITIONS = {
    "vendor_outage": "The upstream provider of the affected model answered with errors or "
    "timed out, and requests on the route had no healthy path to take.",
    "quality_regression": "A change in what the route serves lowered the quality of its "
    "answers without failing a check that ran before it reached users.",
    "cost_spike": "Spend on the affected scope rose faster than its budget and limits were "
    "set to absorb.",
    "runaway_agent_loop": "An agent kept calling the model in a loop that no limit stopped "
    "early enough.",
    "toxic_output": "Harmful output reached users: no guardrail on the route caught it.",
    "pii_leak": "Personal data left the system where it should not have: no detector or "
    "redaction applied on that path.",
    "cross_tenant_leak": "Data of one tenant reached another: an isolation boundary did not "
    "hold on that path.",
}


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{value * 100:.3g} %"


def _duration(seconds: Any) -> str:
    return "not yet" if seconds is None else clock(seconds)


def _cell(value: Any) -> str:
    """Text safe in a markdown table cell: no pipe, no line break."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["percent"] = _percent
    env.filters["duration"] = _duration
    env.filters["cell"] = _cell
    return env


def factors(incident: Incident, timeline: Sequence[Entry]) -> list[str]:
    """Contributing factors the record shows: the type's condition, each change on an
    affected route in the two hours before the first bad minute, a slow detection, a
    rollout that kept sending traffic to a failing candidate."""
    out = []
    condition = _CONDITIONS.get(incident.type)
    if condition:
        out.append(condition)
    start = incident.times.first_bad or incident.times.detected
    minute_end = start + timedelta(minutes=1) if incident.times.first_bad else start
    for e in timeline:
        if e.source != "route" or e.kind not in CHANGES:
            continue
        if e.at <= start:
            lead = _duration((start - e.at).total_seconds())
            out.append(f"A change preceded the first bad minute by {lead}: {e.summary}.")
        elif e.at < minute_end:  # the rollups count by minute: within it is before its errors
            out.append(f"A change landed within the first bad minute: {e.summary}.")
    detect = incident.times.durations()["detect"]
    if detect is not None and detect > QUICK_DETECTION.total_seconds():
        out.append(
            f"Detection took {_duration(detect)} after the first bad minute: the alerting on "
            "this route did not fire sooner."
        )
    if incident.times.first_bad is None:
        out.append(
            "The rollups show no failed request before the detection: the condition was not "
            "one the gateway records as an error (quality, safety or cost), or it had not "
            "started yet."
        )
    return out


def went_well(incident: Incident, timeline: Sequence[Entry]) -> list[str]:
    out = []
    detect = incident.times.durations()["detect"]
    if detect is not None and detect <= QUICK_DETECTION.total_seconds():
        out.append(f"Detection came {_duration(detect)} after the first bad minute.")
    if incident.dedup_key:
        out.append("A page-severity alert opened the incident automatically.")
    for e in timeline:
        if e.source == "incident" and e.kind == "action" and e.detail:
            out.append(f"Containment from the incident: {_action_words(e.detail)}.")
        if e.source == "route" and e.kind == "rollback" and e.actor == "controller":
            out.append(f"The rollout controller rolled back on its own: {e.summary}.")
    mitigate = incident.times.durations()["mitigate"]
    if mitigate is not None:
        out.append(f"Mitigated {_duration(mitigate)} after the detection.")
    return out


def _action_words(detail: Mapping[str, Any]) -> str:
    action = detail.get("action")
    if action == "rollback":
        return f"route {detail.get('route')} rolled back to v{detail.get('stable_version')}"
    if action == "pause_rollout":
        return f"the rollout on route {detail.get('route')} paused"
    if action == "revoke_key":
        return f"key {detail.get('key_id')} revoked"
    if action == "block_tenant":
        return f"the keys of tenant {detail.get('tenant')} revoked ({detail.get('revoked')})"
    if action == "switch_model":
        return f"model {detail.get('model')} switched to its fallbacks"
    if action == "restore_model":
        return f"model {detail.get('model')} restored"
    return str(action)


def action_items(incident: Incident, owners: Mapping[str, str]) -> list[dict[str, str]]:
    """One item per recorded rule, owned by the affected routes' owners; without a rule,
    the item that closing needs."""
    owner = ", ".join(sorted({owners[r] for r in incident.routes if r in owners})) or "unassigned"
    items = [
        {"action": r.message, "kind": r.kind, "owner": owner, "ref": r.ref} for r in incident.rules
    ]
    if not items:
        items.append(
            {
                "action": "Record a reusable rule this incident buys (SLO, guardrail, limit, "
                "dataset case or gate requirement)",
                "kind": "rule",
                "owner": owner,
                "ref": "trimtab incident rule",
            }
        )
    return items


def summary(incident: Incident, impact: Impact) -> str:
    where = ", ".join(incident.routes) or ", ".join(incident.models) or "the affected scope"
    text = (
        f"A {incident.type.replace('_', ' ')} (SEV{incident.severity}) affected {where}: "
        f"{impact.failed} of {impact.requests} requests failed"
    )
    if impact.tenants:
        text += f", for {impact.tenants_failed} of {impact.tenants} tenants"
    text += "."
    said = (incident.summary or "").strip()
    if said:
        text += f" {said[0].upper()}{said[1:]}" + ("" if said.endswith((".", "!", "?")) else ".")
    return text


def render(
    incident: Incident,
    impact: Impact,
    timeline: Sequence[Entry],
    owners: Mapping[str, str],
) -> str:
    view = incident.view()
    return (
        _environment()
        .get_template("postmortem.md.j2")
        .render(
            incident=view,
            summary=summary(incident, impact),
            impact=impact.view(),
            scope_word="routes" if incident.routes else "models" if incident.models else "scope",
            durations=view["durations_s"],
            timeline=[
                {"at": e.at.isoformat(timespec="seconds"), "source": e.source, "summary": e.summary}
                for e in timeline
            ],
            factors=factors(incident, timeline),
            went_well=went_well(incident, timeline),
            actions=action_items(incident, owners),
            rules=[r.view() for r in incident.rules],
        )
    )


def draft(store: IncidentStore, routes: RouteStore, incident: Incident) -> str:
    """The draft from the incident's record now: its impact, its assembled timeline and the
    owners of its routes (what `GET /api/incidents/{id}/postmortem` answers before one is
    recorded, and what the console shows to edit)."""
    now = datetime.now(UTC)
    impact = store.impact(incident, now)
    entries = assemble(store, incident, now)
    owners: dict[str, str] = {}
    for name in incident.routes:
        row = routes.resolve(name, incident.scope, admin=False)
        if row is not None:
            owners[name] = row.owner
    return render(incident, impact, entries, owners)
