"""The incident calls of `Client` and `AsyncClient` (/api/incidents), built once: each
client class takes the methods of its mixin here, which only sends the calls."""

from __future__ import annotations

from typing import Any, TypedDict, TypeVar

from trimtab.client._core import AsyncRuns, Call, Runs, body, listed, params, segment, typed

T = TypeVar("T")


class IncidentRule(TypedDict):
    id: int
    kind: str
    ref: str
    message: str
    detail: dict[str, Any] | None
    created_at: str
    created_by: str | None


class Incident(TypedDict, total=False):
    id: str
    tenant: str | None
    title: str
    type: str
    severity: int
    customer_impact: str
    state: str
    routes: list[str]
    models: list[str]
    tenants: list[str]
    summary: str | None
    opened_by: str | None
    opened_at: str
    first_bad_at: str | None
    detected_at: str
    acknowledged_at: str | None
    mitigated_at: str | None
    resolved_at: str | None
    closed_at: str | None
    dedup_key: str | None
    durations_s: dict[str, float | None]
    postmortem_at: str | None
    rules: list[IncidentRule]
    missing_to_close: list[str]
    impact: dict[str, Any]  # GET and open only: measured at the moment of the call


class IncidentEvent(TypedDict):
    id: int
    at: str
    kind: str
    actor: str | None
    message: str | None
    detail: dict[str, Any] | None


class TimelineEntry(TypedDict):
    at: str
    source: str  # route | audit | budget | telemetry | incident
    kind: str
    summary: str
    actor: str | None
    route: str | None
    detail: dict[str, Any] | None


class IncidentActed(TypedDict):
    incident: Incident
    event: IncidentEvent
    result: dict[str, Any]


class Postmortem(TypedDict):
    incident: str
    markdown: str
    recorded: bool
    recorded_at: str | None


class RuleAdded(TypedDict):
    incident: Incident
    rule: IncidentRule


def _path(incident_id: str, rest: str = "") -> str:
    return "/api/incidents/" + segment(incident_id) + (f"/{rest}" if rest else "")


def open_incident(
    type: str,
    message: str,
    routes: list[str] | None,
    models: list[str] | None,
    tenants: list[str] | None,
    severity: int | None,
    customer_impact: str | None,
    title: str | None,
) -> Call[Incident]:
    fields = {
        "type": type,
        "message": message,
        "routes": routes,
        "models": models,
        "tenants": tenants,
        "severity": severity,
        "customer_impact": customer_impact,
        "title": title,
    }
    return Call("POST", "/api/incidents", typed(Incident), body=body(fields))


def incidents(
    state: str | None, route: str | None, tenant: str | None, limit: int | None
) -> Call[list[Incident]]:
    query = params({"state": state, "route": route, "tenant": tenant, "limit": limit})
    return Call("GET", "/api/incidents", listed(Incident), query)


def incident(incident_id: str) -> Call[Incident]:
    return Call("GET", _path(incident_id), typed(Incident))


def timeline(incident_id: str) -> Call[list[TimelineEntry]]:
    return Call("GET", _path(incident_id, "timeline"), listed(TimelineEntry))


def note(incident_id: str, message: str) -> Call[IncidentEvent]:
    return Call(
        "POST", _path(incident_id, "notes"), typed(IncidentEvent), body={"message": message}
    )


def act(incident_id: str, action: str, fields: dict[str, Any]) -> Call[IncidentActed]:
    return Call(
        "POST",
        _path(incident_id, "actions"),
        typed(IncidentActed),
        body=body({"action": action, **fields}),
    )


def set_severity(incident_id: str, severity: int, message: str) -> Call[Incident]:
    return Call(
        "POST",
        _path(incident_id, "severity"),
        typed(Incident),
        body={"severity": severity, "message": message},
    )


def record_postmortem(incident_id: str, markdown: str | None) -> Call[Postmortem]:
    return Call(
        "POST",
        _path(incident_id, "postmortem"),
        typed(Postmortem),
        body=body({"markdown": markdown}),
    )


def postmortem(incident_id: str) -> Call[Postmortem]:
    return Call("GET", _path(incident_id, "postmortem"), typed(Postmortem))


def add_rule(
    incident_id: str,
    kind: str,
    message: str,
    ref: str | None,
    from_failed: bool,
    dataset: str | None,
) -> Call[RuleAdded]:
    fields = {
        "kind": kind,
        "message": message,
        "ref": ref,
        "from_failed": from_failed or None,
        "dataset": dataset,
    }
    return Call("POST", _path(incident_id, "rules"), typed(RuleAdded), body=body(fields))


def close(incident_id: str, message: str | None) -> Call[Incident]:
    return Call(
        "POST", _path(incident_id, "close"), typed(Incident), body=body({"message": message})
    )


class IncidentMethods:
    """`Client`'s incident calls."""

    def open_incident(
        self: Runs,
        type: str,
        message: str,
        *,
        routes: list[str] | None = None,
        models: list[str] | None = None,
        tenants: list[str] | None = None,
        severity: int | None = None,
        customer_impact: str | None = None,
        title: str | None = None,
    ) -> Incident:
        """Open an incident; its first bad minute, impact and severity (unless given) are
        measured from the rollups."""
        return self._run(
            open_incident(type, message, routes, models, tenants, severity, customer_impact, title)
        )

    def incidents(
        self: Runs,
        *,
        state: str | None = None,
        route: str | None = None,
        tenant: str | None = None,
        limit: int | None = None,
    ) -> list[Incident]:
        return self._run(incidents(state, route, tenant, limit))

    def incident(self: Runs, incident_id: str) -> Incident:
        return self._run(incident(incident_id))

    def incident_timeline(self: Runs, incident_id: str) -> list[TimelineEntry]:
        return self._run(timeline(incident_id))

    def incident_note(self: Runs, incident_id: str, message: str) -> IncidentEvent:
        return self._run(note(incident_id, message))

    def incident_action(self: Runs, incident_id: str, action: str, **fields: Any) -> IncidentActed:
        """acknowledge | mitigate | resolve | reopen, or a containment: rollback (route=,
        to=), pause_rollout (route=), revoke_key (key_id=), block_tenant (tenant=);
        `message=` says why."""
        return self._run(act(incident_id, action, fields))

    def set_incident_severity(
        self: Runs, incident_id: str, severity: int, message: str
    ) -> Incident:
        """Change the severity (1 the worst), saying why."""
        return self._run(set_severity(incident_id, severity, message))

    def record_postmortem(self: Runs, incident_id: str, markdown: str | None = None) -> Postmortem:
        """Record `markdown` as the postmortem, or (None) a draft from the record."""
        return self._run(record_postmortem(incident_id, markdown))

    def incident_postmortem(self: Runs, incident_id: str) -> Postmortem:
        return self._run(postmortem(incident_id))

    def add_incident_rule(
        self: Runs,
        incident_id: str,
        kind: str,
        message: str,
        *,
        ref: str | None = None,
        from_failed: bool = False,
        dataset: str | None = None,
    ) -> RuleAdded:
        return self._run(add_rule(incident_id, kind, message, ref, from_failed, dataset))

    def close_incident(self: Runs, incident_id: str, message: str | None = None) -> Incident:
        return self._run(close(incident_id, message))


class AsyncIncidentMethods:
    """`AsyncClient`'s incident calls."""

    async def open_incident(
        self: AsyncRuns,
        type: str,
        message: str,
        *,
        routes: list[str] | None = None,
        models: list[str] | None = None,
        tenants: list[str] | None = None,
        severity: int | None = None,
        customer_impact: str | None = None,
        title: str | None = None,
    ) -> Incident:
        """Open an incident; its first bad minute, impact and severity (unless given) are
        measured from the rollups."""
        return await self._run(
            open_incident(type, message, routes, models, tenants, severity, customer_impact, title)
        )

    async def incidents(
        self: AsyncRuns,
        *,
        state: str | None = None,
        route: str | None = None,
        tenant: str | None = None,
        limit: int | None = None,
    ) -> list[Incident]:
        return await self._run(incidents(state, route, tenant, limit))

    async def incident(self: AsyncRuns, incident_id: str) -> Incident:
        return await self._run(incident(incident_id))

    async def incident_timeline(self: AsyncRuns, incident_id: str) -> list[TimelineEntry]:
        return await self._run(timeline(incident_id))

    async def incident_note(self: AsyncRuns, incident_id: str, message: str) -> IncidentEvent:
        return await self._run(note(incident_id, message))

    async def incident_action(
        self: AsyncRuns, incident_id: str, action: str, **fields: Any
    ) -> IncidentActed:
        """acknowledge | mitigate | resolve | reopen, or a containment: rollback (route=,
        to=), pause_rollout (route=), revoke_key (key_id=), block_tenant (tenant=);
        `message=` says why."""
        return await self._run(act(incident_id, action, fields))

    async def set_incident_severity(
        self: AsyncRuns, incident_id: str, severity: int, message: str
    ) -> Incident:
        """Change the severity (1 the worst), saying why."""
        return await self._run(set_severity(incident_id, severity, message))

    async def record_postmortem(
        self: AsyncRuns, incident_id: str, markdown: str | None = None
    ) -> Postmortem:
        """Record `markdown` as the postmortem, or (None) a draft from the record."""
        return await self._run(record_postmortem(incident_id, markdown))

    async def incident_postmortem(self: AsyncRuns, incident_id: str) -> Postmortem:
        return await self._run(postmortem(incident_id))

    async def add_incident_rule(
        self: AsyncRuns,
        incident_id: str,
        kind: str,
        message: str,
        *,
        ref: str | None = None,
        from_failed: bool = False,
        dataset: str | None = None,
    ) -> RuleAdded:
        return await self._run(add_rule(incident_id, kind, message, ref, from_failed, dataset))

    async def close_incident(
        self: AsyncRuns, incident_id: str, message: str | None = None
    ) -> Incident:
        return await self._run(close(incident_id, message))
