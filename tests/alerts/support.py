"""Helpers shared by the alert tests: signals and an alerts configuration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trimtab.alerts.signal import Severity, Signal, Source
from trimtab.config import AlertsConfig

T0 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def signal(
    key: str = "slo_burn/support-latency/page",
    *,
    firing: bool = True,
    severity: Severity = "page",
    source: Source = "slo_burn",
    at: datetime = T0,
    labels: dict[str, str] | None = None,
    details: dict[str, object] | None = None,
    summary: str = "support-latency burns its budget 14.4x over 1h",
    expires_at: datetime | None = None,
) -> Signal:
    return Signal(
        source=source,
        dedup_key=key,
        severity=severity,
        firing=firing,
        summary=summary,
        at=at,
        labels=labels if labels is not None else {"route": "support", "tenant": "acme"},
        details=details or {},
        expires_at=expires_at,
    )


def alerts_config(url: str = "http://127.0.0.1:9/hook", **extra: Any) -> AlertsConfig:
    """One sink of each kind, all pointing at `url`."""
    data: dict[str, Any] = {
        "sinks": {
            "hook": {"kind": "webhook", "url": url},
            "chat": {"kind": "slack", "url": url, "severities": ["ticket", "info"]},
            "pager": {
                "kind": "pagerduty",
                "url": url,
                "routing_key": "R0UT1NG",
                "severities": ["page"],
            },
            "am": {"kind": "alertmanager", "url": url},
        },
        **extra,
    }
    return AlertsConfig.model_validate(data)
