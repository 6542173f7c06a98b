"""Who hears of an alert and through which sinks, pure.

The owner is the alert's `owner` label (a route's `owner:`, put there by the producer or
looked up by the service); an on-call rotation declared for that owner names the person
on call at the alert's start (people handing over daily or weekly from `start`), or an
external schedule passed through to PagerDuty. The sinks are those of every `routing`
rule whose matchers the labels meet (every sink when no rule matches, or none is declared),
kept only where the sink takes the alert's severity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from trimtab.config import AlertsConfig, RotationConfig

_EVERY = {"daily": timedelta(days=1), "weekly": timedelta(weeks=1)}


@dataclass(frozen=True, slots=True)
class Recipient:
    owner: str | None
    on_call: str | None  # the person on call, or None
    schedule: str | None  # an external schedule (PagerDuty), passed through
    routing_key: str | None  # pagerduty: the owner's own service, if it has one

    def name(self) -> str | None:
        return self.on_call or self.schedule or self.owner


def on_call(rotation: RotationConfig, at: datetime) -> str | None:
    """The person on call at `at`: hand-overs every day or week from `rotation.start`,
    going round the list (before the first hand-over, the last person holds it)."""
    if not rotation.people or rotation.start is None:
        return None
    turns = (at - rotation.start) // _EVERY[rotation.every]
    return rotation.people[turns % len(rotation.people)]


def recipient(config: AlertsConfig, owner: str | None, at: datetime) -> Recipient:
    rotation = config.rotations.get(owner) if owner else None
    if rotation is None:
        return Recipient(owner, None, None, None)
    return Recipient(owner, on_call(rotation, at), rotation.schedule, rotation.routing_key)


def _matches(match: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    for label, want in match.items():
        have = labels.get(label, "")
        if want.startswith("~"):
            if re.fullmatch(want[1:], have) is None:
                return False
        elif have != want:
            return False
    return True


def sinks_for(config: AlertsConfig, labels: Mapping[str, str], severity: str) -> list[str]:
    """The sinks an alert with these labels (severity and source among them) goes to."""
    chosen: list[str] = []
    for rule in config.routing:
        if _matches(rule.match, labels):
            chosen.extend(s for s in rule.sinks if s not in chosen)
    if not chosen:
        chosen = list(config.sinks)
    return [name for name in chosen if severity in config.sinks[name].severities]
