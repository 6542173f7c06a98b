"""The alert model, pure: alerts, what a signal did to one, silences and their matchers.

An alert is one condition (its dedup key) from the first firing signal until a cleared one
(or its expiry): later firing signals update it (count, last seen, details), never open a
second. States: firing -> acknowledged -> resolved, or firing -> resolved.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from trimtab.alerts.signal import Severity, Source

AlertState = Literal["firing", "acknowledged", "resolved"]
STATES: tuple[AlertState, ...] = get_args(AlertState)
OPEN_STATES: tuple[AlertState, ...] = ("firing", "acknowledged")

# what one signal (or an operator) did to an alert; sinks hear of opened, escalated,
# acknowledged and resolved; an update of an open alert is recorded and sent nowhere
Change = Literal["opened", "updated", "escalated", "acknowledged", "resolved", "unchanged"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "ticket": 1, "page": 2}

Op = Literal["=", "!=", "=~"]
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(=~|!=|=)\s*(.*?)\s*$")
LABEL_MAX = 256


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    dedup_key: str
    source: Source
    severity: Severity
    state: AlertState
    summary: str
    labels: Mapping[str, str]
    details: Mapping[str, object]
    owner: str | None
    on_call: str | None
    silenced: bool
    count: int
    started_at: datetime
    updated_at: datetime
    acked_at: datetime | None = None
    acked_by: str | None = None
    ack_comment: str | None = None
    resolved_at: datetime | None = None
    expires_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        def at(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "dedup_key": self.dedup_key,
            "source": self.source,
            "severity": self.severity,
            "state": self.state,
            "summary": self.summary,
            "labels": dict(self.labels),
            "details": dict(self.details),
            "owner": self.owner,
            "on_call": self.on_call,
            "silenced": self.silenced,
            "count": self.count,
            "started_at": at(self.started_at),
            "updated_at": at(self.updated_at),
            "acked_at": at(self.acked_at),
            "acked_by": self.acked_by,
            "ack_comment": self.ack_comment,
            "resolved_at": at(self.resolved_at),
            "expires_at": at(self.expires_at),
        }


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What observing one signal (or acknowledging) did: the alert as it now is."""

    alert: Alert
    change: Change


class MatcherError(ValueError):
    """A label matcher that cannot be used (its text, and why)."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """`label=value`, `label!=value` or `label=~regex` (the whole value must match)."""

    label: str
    op: Op
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        m = _MATCHER.match(text)
        if m is None:
            raise MatcherError(f"matcher {text!r} is not label=value, label!=value or label=~regex")
        label, op, value = m.group(1), m.group(2), m.group(3)
        if len(label) > LABEL_MAX or len(value) > LABEL_MAX:
            raise MatcherError(f"matcher {text!r} is longer than {LABEL_MAX} characters")
        matcher = cls(label, op, value)  # type: ignore[arg-type]
        if op == "=~":
            try:
                re.compile(value)
            except re.error as exc:
                raise MatcherError(f"matcher {text!r}: bad regular expression: {exc}") from exc
        return matcher

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Matcher:
        return cls.parse(f"{data['label']}{data['op']}{data['value']}")

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        return re.fullmatch(self.value, have) is not None

    def to_json(self) -> dict[str, str]:
        return {"label": self.label, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str | None
    comment: str
    created_at: datetime

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "active": self.active(now),
            "created_by": self.created_by,
            "comment": self.comment,
            "created_at": self.created_at.isoformat(),
        }


def silenced_by(
    silences: Sequence[Silence], labels: Mapping[str, str], now: datetime
) -> Silence | None:
    """The first active silence whose matchers all match `labels`."""
    for silence in silences:
        if silence.active(now) and silence.matches(labels):
            return silence
    return None


def match_labels(alert_labels: Mapping[str, str], severity: str, source: str) -> dict[str, str]:
    """What silences and routing match on: the alert's labels plus severity and source."""
    return {**alert_labels, "severity": severity, "source": source}


def backoff_s(
    attempt: int, base_s: float, max_s: float, rand: random.Random | None = None
) -> float:
    """The wait after failed attempt `attempt` (1, 2, ...): base x 2^(n-1) capped at `max_s`,
    of which a random half is taken off ("equal jitter"), so processes retrying one sink
    spread out; never more than `max_s`, never less than half the capped step."""
    step = min(max_s, base_s * 2 ** min(attempt - 1, 60))
    r = rand.random() if rand is not None else random.random()
    return float(step / 2 + r * step / 2)
