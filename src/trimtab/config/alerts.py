"""`alerts:`: budget thresholds and webhooks, the sinks, on-call rotations, routing and the
outbox (docs/alerts.md)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from trimtab.config.strict import Strict


class WebhookConfig(Strict):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    retries: int = Field(default=5, ge=0)
    timeout_s: float = Field(default=5.0, gt=0)


AlertSeverity = Literal["page", "ticket", "info"]
ALERT_SEVERITIES: tuple[AlertSeverity, ...] = ("page", "ticket", "info")


class AlertSinkConfig(Strict):
    """Where alerts go (docs/alerts.md): a JSON webhook, Slack, PagerDuty or Alertmanager."""

    kind: Literal["webhook", "slack", "pagerduty", "alertmanager"]
    url: str | None = None  # pagerduty: https://events.pagerduty.com/v2/enqueue by default
    headers: dict[str, str] = Field(default_factory=dict)
    routing_key: str | None = None  # pagerduty: the integration key
    severities: list[AlertSeverity] = Field(default_factory=lambda: list(ALERT_SEVERITIES))
    timeout_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _valid(self) -> AlertSinkConfig:
        if self.kind == "pagerduty" and not self.routing_key:
            raise ValueError("a pagerduty sink needs routing_key")
        if self.kind != "pagerduty" and not self.url:
            raise ValueError(f"a {self.kind} sink needs url")
        return self


class RotationConfig(Strict):
    """Who is on call for an owner: people handing over every `every` from `start`, or a
    named external schedule passed through to PagerDuty."""

    people: list[str] = Field(default_factory=list)
    start: AwareDatetime | None = None  # the first hand-over (ISO 8601, with its offset)
    every: Literal["daily", "weekly"] = "weekly"
    schedule: str | None = None  # e.g. a PagerDuty schedule id
    routing_key: str | None = None  # pagerduty: this owner's service, instead of the sink's

    @model_validator(mode="after")
    def _valid(self) -> RotationConfig:
        if not self.people and not self.schedule:
            raise ValueError("a rotation needs people or a schedule")
        if self.people and self.start is None:
            raise ValueError("a rotation of people needs start (its first hand-over)")
        return self


class AlertRoutingConfig(Strict):
    """Alerts whose labels match every `match` entry (exact value, or `~regex`) go to `sinks`."""

    match: dict[str, str] = Field(default_factory=dict)
    sinks: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _patterns(self) -> AlertRoutingConfig:
        for label, want in self.match.items():
            if want.startswith("~"):
                try:
                    re.compile(want[1:])
                except re.error as exc:
                    raise ValueError(f"match.{label}: bad regular expression: {exc}") from None
        return self


class AlertOutboxConfig(Strict):
    interval_s: float = Field(default=1.0, gt=0)  # how often the outbox is looked at
    base_backoff_s: float = Field(default=1.0, gt=0)
    max_backoff_s: float = Field(default=300.0, gt=0)
    give_up_after_s: float = Field(default=86_400.0, gt=0)  # a row older than this is dead
    lease_s: float = Field(default=60.0, gt=0)  # a claimed row is another's after this
    probe_interval_s: float = Field(default=5.0, gt=0)  # breakers, spill, key store


class AlertsConfig(Strict):
    budget_thresholds: list[float] = Field(default_factory=lambda: [0.8, 1.0, 1.1])
    webhooks: list[WebhookConfig] = Field(default_factory=list)  # budget events, as JSON
    # budget crossings at or above this share of the limit page; below it, a ticket
    budget_page_at: float = Field(default=1.0, gt=0)
    sinks: dict[str, AlertSinkConfig] = Field(default_factory=dict)
    rotations: dict[str, RotationConfig] = Field(default_factory=dict)  # owner -> on call
    routing: list[AlertRoutingConfig] = Field(default_factory=list)  # none: every sink
    outbox: AlertOutboxConfig = Field(default_factory=AlertOutboxConfig)
    external_url: str | None = None  # links in alerts point here (the server's base URL)

    @model_validator(mode="after")
    def _known_sinks(self) -> AlertsConfig:
        for i, rule in enumerate(self.routing):
            unknown = sorted(set(rule.sinks) - set(self.sinks))
            if unknown:
                raise ValueError(f"routing[{i}] names unknown sinks: {', '.join(unknown)}")
        return self
