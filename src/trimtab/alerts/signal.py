"""What a condition says to the alert pipeline: a signal, firing or cleared.

Everything that can go wrong (an SLO's burn, a budget threshold, a canary rollback, a
breaker trip, telemetry spilling, the key store unreachable) speaks to alerts in this one
shape. A producer says what it sees now; the alert store turns signals into alerts: the
first firing signal with a dedup key opens an alert, later ones update it, and a cleared
signal resolves it. Pure data: producers build signals without importing the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

Severity = Literal["page", "ticket", "info"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

Source = Literal[
    "slo_burn",
    "budget",
    "canary_rollback",
    "breaker",
    "telemetry_spill",
    "keystore",
    "runaway_agent_loop",
    "guardrail",
    "cost_forecast",
]
SOURCES: tuple[Source, ...] = get_args(Source)


@dataclass(frozen=True, slots=True)
class Signal:
    """One observation of one condition.

    `dedup_key` names the condition (say `slo_burn/support-latency/page`): every signal
    with the same key is the same alert. `firing=False` says the condition has cleared.
    `labels` are what routing and silences match on (route, model, tenant, version, slo,
    owner); `details` is the evidence (burn rates with their windows, event counts, the
    interval), shown and sent as is.
    """

    source: Source
    dedup_key: str
    severity: Severity
    firing: bool
    summary: str
    at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, object] = field(default_factory=dict)
    # when the condition ends by itself (a budget's period): the alert resolves then
    expires_at: datetime | None = None
