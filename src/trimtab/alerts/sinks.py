"""What each kind of sink is sent about an alert, pure: one builder per wire format.

- webhook: trimtab's own JSON (`type` alert.trigger / alert.acknowledge / alert.resolve,
  the alert, who receives it, and a ready-made `text`);
- slack: an incoming webhook's `{"text", "blocks"}`;
- pagerduty: an Events API v2 event (trigger, acknowledge, resolve with one dedup key);
- alertmanager: Alertmanager's webhook body (version "4"); it has no acknowledgement, so
  an acknowledge is not sent there.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from trimtab.alerts.model import Alert
from trimtab.alerts.routing import Recipient
from trimtab.config import AlertSinkConfig

Event = Literal["trigger", "acknowledge", "resolve"]
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITY = {"page": "critical", "ticket": "warning", "info": "info"}
_ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended"
_VERBS = {"trigger": "FIRING", "acknowledge": "ACKNOWLEDGED", "resolve": "RESOLVED"}


def sink_url(sink: AlertSinkConfig) -> str:
    if sink.url:
        return sink.url
    return PAGERDUTY_URL  # the config allows no url only for pagerduty


def alert_link(external_url: str | None, alert: Alert) -> str | None:
    return f"{external_url.rstrip('/')}/api/alerts/{alert.id}" if external_url else None


def text_line(event: Event, alert: Alert, recipient: Recipient) -> str:
    who = recipient.name()
    to = f" -> {who}" if who else ""
    return f"[{_VERBS[event]}] {alert.severity} #{alert.id}: {alert.summary}{to}"


def pagerduty_dedup_key(alert: Alert) -> str:
    """One key for an alert's trigger, acknowledge and resolve (at most 255 characters);
    the alert's id in it, so a condition that fires again later is a new PagerDuty alert."""
    return f"trimtab/{alert.id}/{alert.dedup_key}"[:255]


def fingerprint(labels: dict[str, str]) -> str:
    text = "\x00".join(f"{k}\x00{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def webhook_body(
    event: Event, alert: Alert, recipient: Recipient, external_url: str | None
) -> dict[str, Any]:
    return {
        "type": f"alert.{event}",
        "event": event,
        "alert": alert.to_json(),
        "owner": recipient.owner,
        "on_call": recipient.on_call,
        "schedule": recipient.schedule,
        "link": alert_link(external_url, alert),
        "text": text_line(event, alert, recipient),
    }


def slack_body(
    event: Event, alert: Alert, recipient: Recipient, external_url: str | None
) -> dict[str, Any]:
    line = text_line(event, alert, recipient)
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())) or "no labels"
    link = alert_link(external_url, alert)
    context = [{"type": "mrkdwn", "text": f"{alert.source} · {labels}"}]
    if link:
        context.append({"type": "mrkdwn", "text": f"<{link}|alert #{alert.id}>"})
    return {
        "text": line,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{line}*"}},
            {"type": "context", "elements": context},
        ],
    }


def pagerduty_body(
    event: Event,
    alert: Alert,
    recipient: Recipient,
    external_url: str | None,
    sink: AlertSinkConfig,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": recipient.routing_key or sink.routing_key,
        "event_action": event,
        "dedup_key": pagerduty_dedup_key(alert),
    }
    if event != "trigger":
        return body
    labels = dict(alert.labels)
    route = labels.get("route")
    body["payload"] = {
        "summary": alert.summary[:1024],
        "source": f"trimtab route {route}" if route else "trimtab",
        "severity": PAGERDUTY_SEVERITY[alert.severity],
        "timestamp": alert.started_at.isoformat(),
        "component": labels.get("model") or route or alert.source,
        "group": route or labels.get("tenant") or "trimtab",
        "class": alert.source,
        "custom_details": {
            "alert_id": alert.id,
            "trimtab_dedup_key": alert.dedup_key,
            "labels": labels,
            "details": dict(alert.details),
            "owner": recipient.owner,
            "on_call": recipient.on_call,
            "schedule": recipient.schedule,
        },
    }
    body["client"] = "trimtab"
    link = alert_link(external_url, alert)
    if link:
        body["client_url"] = link
        body["links"] = [{"href": link, "text": f"trimtab alert #{alert.id}"}]
    return body


def alertmanager_body(
    event: Event, alert: Alert, recipient: Recipient, external_url: str | None, receiver: str
) -> dict[str, Any] | None:
    if event == "acknowledge":
        return None
    status = "resolved" if event == "resolve" else "firing"
    labels = {
        **dict(alert.labels),
        "alertname": alert.source,
        "severity": alert.severity,
        "dedup_key": alert.dedup_key,
    }
    annotations = {"summary": alert.summary}
    if recipient.name():
        annotations["on_call"] = recipient.name() or ""
    ended = alert.resolved_at if status == "resolved" else None
    group_labels = {"alertname": alert.source, "dedup_key": alert.dedup_key}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}"
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url or "",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": alert.started_at.isoformat(),
                "endsAt": ended.isoformat() if ended is not None else _ZERO_TIME,
                "generatorURL": alert_link(external_url, alert) or "",
                "fingerprint": fingerprint(labels),
            }
        ],
    }


def build(
    name: str,
    sink: AlertSinkConfig,
    event: Event,
    alert: Alert,
    recipient: Recipient,
    external_url: str | None,
) -> dict[str, Any] | None:
    """The body `sink` is sent for `event` on `alert`; None when it takes no such event."""
    if sink.kind == "webhook":
        return webhook_body(event, alert, recipient, external_url)
    if sink.kind == "slack":
        return slack_body(event, alert, recipient, external_url)
    if sink.kind == "pagerduty":
        return pagerduty_body(event, alert, recipient, external_url, sink)
    return alertmanager_body(event, alert, recipient, external_url, name)
