"""A rollout as the store holds it (`RolloutRow`), and the JSON-safe view of its statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trimtab.canary.plans import Plan
from trimtab.registry.scope import RouteKey
from trimtab.store.engine import as_utc

ACTIVE = ("running", "paused")


@dataclass(frozen=True, slots=True)
class RolloutRow:
    id: str
    route: str
    scope: str  # the route's: its tenant, "" when shared
    stable_version: int
    candidate_version: int
    plan_name: str
    plan: Plan
    stage: int
    stage_started_at: datetime
    status: str
    started_at: datetime
    started_by: str | None
    ended_at: datetime | None
    reason: str | None
    last_decision: dict[str, Any] | None
    # when each stage so far began (rollouts from before 0005: the current stage only)
    stage_starts: tuple[datetime, ...] = ()

    @classmethod
    def of(cls, row: Any) -> RolloutRow:
        return cls(
            id=row.id,
            route=row.route,
            scope=row.scope,
            stable_version=row.stable_version,
            candidate_version=row.candidate_version,
            plan_name=row.plan_name,
            # a plan stored before plans had an assignment kept the first version given
            plan=Plan.model_validate({"assignment": "first_seen", **row.plan}),
            stage=row.stage,
            stage_started_at=as_utc(row.stage_started_at),
            status=row.status,
            started_at=as_utc(row.started_at),
            started_by=row.started_by,
            ended_at=as_utc(row.ended_at) if row.ended_at else None,
            reason=row.reason,
            last_decision=row.last_decision,
            stage_starts=tuple(as_utc(datetime.fromisoformat(t)) for t in row.stage_starts or ()),
        )

    @property
    def key(self) -> RouteKey:
        return RouteKey(self.scope, self.route)

    def windows(self) -> tuple[tuple[datetime, datetime | None], ...]:
        """The analysis windows: one per stage so far, ``(start, end)``, the current
        stage's open (``end`` None). Each has one traffic split, so the tests can weigh
        each on its own while the evidence adds up over the whole rollout."""
        starts = self.stage_starts if len(self.stage_starts) == self.stage + 1 else ()
        if not starts:
            return ((self.stage_started_at, None),)
        ends: list[datetime | None] = [*starts[1:], None]
        return tuple(zip(starts, ends, strict=True))

    @property
    def percent(self) -> float:
        return self.plan.stages[self.stage].percent

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "tenant": self.key.tenant,
            "stable_version": self.stable_version,
            "candidate_version": self.candidate_version,
            "plan": self.plan_name,
            "stages": [s.model_dump() for s in self.plan.stages],
            "assignment": self.plan.assignment,
            "metrics": {
                name: rule.model_dump(exclude_none=True) for name, rule in self.plan.metrics.items()
            },
            "stage": self.stage,
            "percent": self.percent,
            "stage_started_at": self.stage_started_at.isoformat(),
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "started_by": self.started_by,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "reason": self.reason,
            "last_decision": self.last_decision,
        }


def finite(value: Any) -> Any:
    """JSON-safe statistics: infinities and NaN become None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
