"""An incident as the store reads it: its record, its rules and its timeline entries, and
the mapping from their rows (`incidents`, `incident_rules`, `incident_events`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trimtab.incidents.impact import Affected, window_of
from trimtab.incidents.model import Impact, Times, close_missing
from trimtab.store.engine import as_utc


def _utc(value: Any) -> datetime | None:
    return as_utc(value) if value is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    kind: str
    ref: str
    message: str
    detail: dict[str, Any] | None
    created_at: datetime
    created_by: str | None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "ref": self.ref,
            "message": self.message,
            "detail": self.detail,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the incident's own timeline."""

    id: int
    at: datetime
    kind: str  # opened, alert, note, action, acknowledge, mitigate, resolve, ...
    actor: str | None
    message: str | None
    detail: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    scope: str
    title: str
    type: str
    severity: int
    customer_impact: str
    state: str
    routes: tuple[str, ...]
    models: tuple[str, ...]
    tenants: tuple[str, ...]
    summary: str | None
    opened_by: str | None
    opened_at: datetime
    times: Times
    closed_at: datetime | None
    dedup_key: str | None
    postmortem: str | None
    postmortem_at: datetime | None
    rules: tuple[Rule, ...] = field(default=())

    @property
    def affected(self) -> Affected:
        return Affected(self.routes, self.models, self.tenants, self.scope)

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        t = self.times
        return window_of(t.first_bad, t.detected, t.resolved, now)

    def missing_to_close(self) -> list[str]:
        return close_missing(self.state, self.postmortem is not None, len(self.rules))

    def view(self, impact: Impact | None = None) -> dict[str, Any]:
        t = self.times
        out: dict[str, Any] = {
            "id": self.id,
            "tenant": self.scope or None,
            "title": self.title,
            "type": self.type,
            "severity": self.severity,
            "customer_impact": self.customer_impact,
            "state": self.state,
            "routes": list(self.routes),
            "models": list(self.models),
            "tenants": list(self.tenants),
            "summary": self.summary,
            "opened_by": self.opened_by,
            "opened_at": self.opened_at.isoformat(),
            "first_bad_at": _iso(t.first_bad),
            "detected_at": t.detected.isoformat(),
            "acknowledged_at": _iso(t.acknowledged),
            "mitigated_at": _iso(t.mitigated),
            "resolved_at": _iso(t.resolved),
            "closed_at": _iso(self.closed_at),
            "dedup_key": self.dedup_key,
            "durations_s": t.durations(),
            "postmortem_at": _iso(self.postmortem_at),
            "rules": [r.view() for r in self.rules],
            "missing_to_close": self.missing_to_close(),
        }
        if impact is not None:
            out["impact"] = impact.view()
        return out


def incident_of(row: Any, rules: Sequence[Rule] = ()) -> Incident:
    return Incident(
        id=row.id,
        scope=row.scope,
        title=row.title,
        type=row.type,
        severity=row.severity,
        customer_impact=row.customer_impact,
        state=row.state,
        routes=tuple(row.routes or ()),
        models=tuple(row.models or ()),
        tenants=tuple(row.tenants or ()),
        summary=row.summary,
        opened_by=row.opened_by,
        opened_at=as_utc(row.opened_at),
        times=Times(
            first_bad=_utc(row.first_bad_at),
            detected=as_utc(row.detected_at),
            acknowledged=_utc(row.acknowledged_at),
            mitigated=_utc(row.mitigated_at),
            resolved=_utc(row.resolved_at),
        ),
        closed_at=_utc(row.closed_at),
        dedup_key=row.dedup_key,
        postmortem=row.postmortem,
        postmortem_at=_utc(row.postmortem_at),
        rules=tuple(rules),
    )


def rule_of(row: Any) -> Rule:
    return Rule(
        row.id, row.kind, row.ref, row.message, row.detail, as_utc(row.created_at), row.created_by
    )
