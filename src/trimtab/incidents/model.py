"""What an incident is, pure: its types, states, the severity matrix, its measured
durations and the first bad minute. No I/O: the store and the rollups feed it plain data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

IncidentType = Literal[
    "toxic_output",
    "pii_leak",
    "cross_tenant_leak",
    "runaway_agent_loop",
    "vendor_outage",
    "quality_regression",
    "cost_spike",
    "other",
]
INCIDENT_TYPES: tuple[IncidentType, ...] = get_args(IncidentType)

State = Literal["open", "mitigated", "resolved", "closed"]
STATES: tuple[State, ...] = get_args(State)
ACTIVE: tuple[State, ...] = ("open", "mitigated")  # an alert's second page attaches to these

CustomerImpact = Literal["low", "medium", "high", "critical"]
IMPACTS: tuple[CustomerImpact, ...] = get_args(CustomerImpact)

BlastRadius = Literal["contained", "limited", "broad", "widespread"]
RADII: tuple[BlastRadius, ...] = get_args(BlastRadius)

RuleKind = Literal["slo", "guardrail", "limit", "dataset_case", "gate_requirement"]
RULE_KINDS: tuple[RuleKind, ...] = get_args(RuleKind)

# What each type does to a customer when nothing else is known: a leak of data is always
# critical, wrong or harmful answers high, a loop, a cost spike or a slow drift medium.
DEFAULT_IMPACT: dict[IncidentType, CustomerImpact] = {
    "toxic_output": "high",
    "pii_leak": "critical",
    "cross_tenant_leak": "critical",
    "runaway_agent_loop": "medium",
    "vendor_outage": "high",
    "quality_regression": "medium",
    "cost_spike": "medium",
    "other": "medium",
}

# The blast radius is the larger of two shares over the incident's window: the route's
# requests that failed, and the route's tenants that saw a failure.
RADIUS_BOUNDS: tuple[tuple[float, BlastRadius], ...] = (
    (0.01, "contained"),  # below 1 %
    (0.10, "limited"),  # below 10 %
    (0.50, "broad"),  # below 50 %
)

# severity (1 worst .. 4) by customer impact (rows) and blast radius (columns, RADII order)
MATRIX: dict[CustomerImpact, tuple[int, int, int, int]] = {
    "critical": (2, 1, 1, 1),
    "high": (3, 2, 2, 1),
    "medium": (4, 3, 3, 2),
    "low": (4, 4, 4, 3),
}
SEVERITIES = (1, 2, 3, 4)


def radius(traffic_share: float | None, tenant_share: float | None) -> BlastRadius | None:
    """The blast radius of the larger share; None when there was no traffic to measure."""
    shares = [s for s in (traffic_share, tenant_share) if s is not None]
    if not shares:
        return None
    worst = max(shares)
    for bound, name in RADIUS_BOUNDS:
        if worst < bound:
            return name
    return "widespread"


def severity(impact: CustomerImpact, blast: BlastRadius | None) -> int:
    """The matrix's severity. Unmeasured (no traffic yet): judged as `limited`, so a leak
    opened before any rollup still pages as a SEV1."""
    return MATRIX[impact][RADII.index(blast or "limited")]


# an alert's source names the incident type when its labels do not
SOURCE_TYPES: dict[str, IncidentType] = {
    "runaway_agent_loop": "runaway_agent_loop",
    "budget": "cost_spike",
    "cost_forecast": "cost_spike",
    "breaker": "vendor_outage",
    "canary_rollback": "quality_regression",
}


def type_of(labels: dict[str, str], source: str | None) -> IncidentType:
    """An alert's incident type: its label `incident_type` when it is one, else its source's
    (a breaker trip is a vendor outage, a budget crossing a cost spike), else `other`."""
    named = labels.get("incident_type")
    for t in INCIDENT_TYPES:
        if named == t:
            return t
    return SOURCE_TYPES.get(source or "", "other")


def first_bad_minute(
    bad_minutes: Iterable[datetime], detected: datetime, gap: timedelta = timedelta(minutes=10)
) -> datetime | None:
    """The first minute of the run of bad minutes that led to the detection: walking back
    from `detected`, the earliest bad minute not separated from the next by more than
    `gap` of good or silent minutes. Bad minutes after the detection are not its start."""
    before = sorted((m for m in bad_minutes if m <= detected), reverse=True)
    if not before or detected - before[0] > gap:
        return None
    first = before[0]
    for minute in before[1:]:
        if first - minute > gap:
            break
        first = minute
    return first


@dataclass(frozen=True, slots=True)
class Times:
    """An incident's clock: when it went bad, was detected, acknowledged, mitigated,
    resolved."""

    first_bad: datetime | None
    detected: datetime
    acknowledged: datetime | None = None
    mitigated: datetime | None = None
    resolved: datetime | None = None

    def durations(self) -> dict[str, float | None]:
        """Seconds: to detect (first bad minute -> detection), then to acknowledge,
        mitigate and resolve, each from the detection; `impact` is first bad minute (else
        detection) -> resolution. None: not happened yet (or no bad minute was seen)."""

        def span(a: datetime | None, b: datetime | None) -> float | None:
            return None if a is None or b is None else max(0.0, (b - a).total_seconds())

        return {
            "detect": span(self.first_bad, self.detected),
            "acknowledge": span(self.detected, self.acknowledged),
            "mitigate": span(self.detected, self.mitigated),
            "resolve": span(self.detected, self.resolved),
            "impact": span(self.first_bad or self.detected, self.resolved),
        }


@dataclass(frozen=True, slots=True)
class Impact:
    """What the incident touched over its window, from the rollups (users from the request
    rows of the failed requests: the rollups carry no user)."""

    start: datetime
    end: datetime
    requests: int  # every request of the affected routes (or models) in the window
    failed: int  # of those, answered 5xx or timed out
    tenants: int  # tenants with any request
    tenants_failed: int  # tenants with a failed request
    users_failed: int  # distinct users of the failed requests
    spend_usd: float  # spent on the affected routes in the window
    failed_spend_usd: float  # of which on failed requests
    scoped: bool = False  # one tenant's incident: its tenant share says nothing (always 1)

    @property
    def traffic_share(self) -> float | None:
        return self.failed / self.requests if self.requests else None

    @property
    def tenant_share(self) -> float | None:
        if self.scoped or not self.tenants:
            return None
        return self.tenants_failed / self.tenants

    @property
    def radius(self) -> BlastRadius | None:
        return radius(self.traffic_share, self.tenant_share)

    def view(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "requests": self.requests,
            "failed": self.failed,
            "tenants": self.tenants,
            "tenants_failed": self.tenants_failed,
            "users_failed": self.users_failed,
            "spend_usd": round(self.spend_usd, 6),
            "failed_spend_usd": round(self.failed_spend_usd, 6),
            "traffic_share": self.traffic_share,
            "tenant_share": self.tenant_share,
            "blast_radius": self.radius,
        }


# which state each move leads to, from which states
MOVES: dict[str, tuple[tuple[State, ...], State | None]] = {
    "acknowledge": (("open", "mitigated"), None),  # sets the time only
    "mitigate": (("open",), "mitigated"),
    "resolve": (("open", "mitigated"), "resolved"),
    "reopen": (("mitigated", "resolved"), "open"),
    "close": (("resolved",), "closed"),
}


def close_missing(state: str, has_postmortem: bool, rules: int) -> list[str]:
    """What closing still needs, each with the command that provides it."""
    missing = []
    if state not in ("resolved", "closed"):
        missing.append(f"the incident resolved (it is {state}: trimtab incident resolve ID)")
    if not has_postmortem:
        missing.append("a postmortem (trimtab incident postmortem ID)")
    if rules < 1:
        missing.append(
            "at least one reusable rule (trimtab incident rule ID --kind "
            + "|".join(RULE_KINDS)
            + " --ref ... -m ...)"
        )
    return missing
