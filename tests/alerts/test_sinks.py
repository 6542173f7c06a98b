"""Each sink's wire format, routing by labels and severity, on-call rotations, matchers and
the backoff: pure functions, no store."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tests.alerts.support import T0, alerts_config
from trimtab.alerts.model import Alert, Matcher, MatcherError, backoff_s
from trimtab.alerts.routing import Recipient, on_call, recipient, sinks_for
from trimtab.alerts.sinks import PAGERDUTY_URL, build, fingerprint, sink_url
from trimtab.config import AlertsConfig, AlertSinkConfig, RotationConfig

ALERT = Alert(
    id=7,
    dedup_key="slo_burn/support-latency/page",
    source="slo_burn",
    severity="page",
    state="firing",
    summary="support-latency burns 14.4x",
    labels={"route": "support", "model": "gpt-big", "tenant": "acme"},
    details={"burn_1h": 15.2},
    owner="support-ml",
    on_call="bo",
    silenced=False,
    count=3,
    started_at=T0,
    updated_at=T0,
)
WHO = Recipient("support-ml", "bo", None, None)
URL = "https://trimtab.example"


def sink(kind: str, **kw: object) -> AlertSinkConfig:
    return AlertSinkConfig.model_validate({"kind": kind, "url": "http://x/y", **kw})


def test_the_pagerduty_trigger() -> None:
    pd = AlertSinkConfig(kind="pagerduty", routing_key="KEY")
    assert sink_url(pd) == PAGERDUTY_URL == "https://events.pagerduty.com/v2/enqueue"
    body = build("pager", pd, "trigger", ALERT, WHO, URL)
    assert body == {
        "routing_key": "KEY",
        "event_action": "trigger",
        "dedup_key": "trimtab/7/slo_burn/support-latency/page",
        "payload": {
            "summary": "support-latency burns 14.4x",
            "source": "trimtab route support",
            "severity": "critical",
            "timestamp": "2026-12-02T06:00:00+00:00",
            "component": "gpt-big",
            "group": "support",
            "class": "slo_burn",
            "custom_details": {
                "alert_id": 7,
                "trimtab_dedup_key": "slo_burn/support-latency/page",
                "labels": {"route": "support", "model": "gpt-big", "tenant": "acme"},
                "details": {"burn_1h": 15.2},
                "owner": "support-ml",
                "on_call": "bo",
                "schedule": None,
            },
        },
        "client": "trimtab",
        "client_url": "https://trimtab.example/api/alerts/7",
        "links": [{"href": "https://trimtab.example/api/alerts/7", "text": "trimtab alert #7"}],
    }


def test_pagerduty_acknowledge_and_resolve_carry_the_same_dedup_key() -> None:
    pd = AlertSinkConfig(kind="pagerduty", routing_key="KEY", url="http://pd.local/enqueue")
    own = Recipient("support-ml", None, "PSCHED1", "TEAMKEY")  # the owner's own service
    for event in ("acknowledge", "resolve"):
        assert build("pager", pd, event, ALERT, own, None) == {
            "routing_key": "TEAMKEY",
            "event_action": event,
            "dedup_key": "trimtab/7/slo_burn/support-latency/page",
        }
    ticket = build("pager", pd, "trigger", _with(severity="ticket"), own, None)
    assert ticket is not None and ticket["payload"]["severity"] == "warning"
    assert ticket["payload"]["custom_details"]["schedule"] == "PSCHED1"
    assert "links" not in ticket
    long = build("pager", pd, "trigger", _with(dedup_key="k" * 400), own, None)
    assert long is not None and len(long["dedup_key"]) == 255


def _with(**changes: object) -> Alert:
    return replace(ALERT, **changes)  # type: ignore[arg-type]


def test_the_alertmanager_body() -> None:
    body = build("am", sink("alertmanager"), "trigger", ALERT, WHO, URL)
    labels = {
        "route": "support",
        "model": "gpt-big",
        "tenant": "acme",
        "alertname": "slo_burn",
        "severity": "page",
        "dedup_key": "slo_burn/support-latency/page",
    }
    assert body == {
        "version": "4",
        "groupKey": '{}:{alertname="slo_burn", dedup_key="slo_burn/support-latency/page"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "am",
        "groupLabels": {"alertname": "slo_burn", "dedup_key": "slo_burn/support-latency/page"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "support-latency burns 14.4x", "on_call": "bo"},
        "externalURL": URL,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "support-latency burns 14.4x", "on_call": "bo"},
                "startsAt": "2026-12-02T06:00:00+00:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://trimtab.example/api/alerts/7",
                "fingerprint": fingerprint(labels),
            }
        ],
    }
    end = T0 + timedelta(minutes=9)
    resolved = build("am", sink("alertmanager"), "resolve", _with(resolved_at=end), WHO, URL)
    assert resolved is not None and resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == end.isoformat()
    assert build("am", sink("alertmanager"), "acknowledge", ALERT, WHO, URL) is None
    assert len(fingerprint(labels)) == 16 and fingerprint(labels) != fingerprint({"a": "b"})


def test_slack_and_the_generic_webhook() -> None:
    slack = build("chat", sink("slack"), "resolve", ALERT, WHO, URL)
    assert slack == {
        "text": "[RESOLVED] page #7: support-latency burns 14.4x -> bo",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*[RESOLVED] page #7: support-latency burns 14.4x -> bo*",
                },
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "slo_burn · model=gpt-big, route=support, tenant=acme",
                    },
                    {"type": "mrkdwn", "text": "<https://trimtab.example/api/alerts/7|alert #7>"},
                ],
            },
        ],
    }
    hook = build("hook", sink("webhook"), "acknowledge", ALERT, WHO, None)
    assert hook is not None
    assert hook["type"] == "alert.acknowledge" and hook["event"] == "acknowledge"
    assert hook["alert"] == ALERT.to_json()
    assert (hook["owner"], hook["on_call"], hook["link"]) == ("support-ml", "bo", None)
    assert hook["text"] == "[ACKNOWLEDGED] page #7: support-latency burns 14.4x -> bo"


def test_routing_by_labels_and_severity() -> None:
    cfg = alerts_config(
        routing=[
            {"match": {"route": "support"}, "sinks": ["pager", "chat"]},
            {"match": {"tenant": "~ac.*"}, "sinks": ["hook"]},
        ]
    )
    support = {"route": "support", "tenant": "beta"}
    assert sinks_for(cfg, support, "page") == ["pager"]  # chat takes tickets and info only
    assert sinks_for(cfg, support, "ticket") == ["chat"]
    assert sinks_for(cfg, {"route": "support", "tenant": "acme"}, "page") == ["pager", "hook"]
    # no rule matches: every sink that takes the severity
    assert sinks_for(cfg, {"route": "billing"}, "page") == ["hook", "pager", "am"]
    with pytest.raises(ValidationError, match="unknown sinks: nope"):
        alerts_config(routing=[{"match": {}, "sinks": ["nope"]}])
    with pytest.raises(ValidationError, match=r"match\.route: bad regular expression"):
        alerts_config(routing=[{"match": {"route": "~("}, "sinks": ["hook"]}])


def test_on_call_hands_over_weekly_and_daily() -> None:
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)  # a Monday, 09:00
    weekly = RotationConfig(people=["ana", "bo", "cy"], start=start)
    assert on_call(weekly, start) == "ana"
    assert on_call(weekly, start + timedelta(days=6, hours=23)) == "ana"
    assert on_call(weekly, start + timedelta(days=7)) == "bo"
    assert on_call(weekly, start + timedelta(days=21)) == "ana"
    assert on_call(weekly, start - timedelta(minutes=1)) == "cy"  # before the first turn
    daily = RotationConfig(people=["ana", "bo"], start=start, every="daily")
    assert on_call(daily, start + timedelta(days=3, hours=1)) == "bo"
    cfg = AlertsConfig.model_validate({"rotations": {"team": {"schedule": "PXYZ"}}})
    assert recipient(cfg, "team", start) == Recipient("team", None, "PXYZ", None)
    assert recipient(cfg, "nobody", start) == Recipient("nobody", None, None, None)
    with pytest.raises(ValidationError, match="people or a schedule"):
        RotationConfig()
    with pytest.raises(ValidationError, match="needs start"):
        RotationConfig(people=["ana"])


def test_sink_configs_are_checked() -> None:
    with pytest.raises(ValidationError, match="routing_key"):
        AlertSinkConfig(kind="pagerduty")
    with pytest.raises(ValidationError, match="needs url"):
        AlertSinkConfig(kind="slack")
    with pytest.raises(ValidationError):
        AlertSinkConfig.model_validate({"kind": "webhook", "url": "x", "severities": ["urgent"]})


def test_matchers() -> None:
    labels = {"route": "support", "tenant": "acme"}
    assert Matcher.parse("route=support").matches(labels)
    assert not Matcher.parse("route!=support").matches(labels)
    assert Matcher.parse("model!=gpt").matches(labels)  # a missing label is ""
    assert Matcher.parse("tenant=~ac.*").matches(labels)
    assert not Matcher.parse("tenant=~c").matches(labels)  # the whole value must match
    assert str(Matcher.parse(" route = x ")) == "route=x"
    for bad in ("route", "=x", "route~x"):
        with pytest.raises(MatcherError):
            Matcher.parse(bad)


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    rand = random.Random(1)
    for attempt, step in ((1, 1.0), (2, 2.0), (3, 4.0), (9, 60.0), (500, 60.0)):
        waits = [backoff_s(attempt, 1.0, 60.0, rand) for _ in range(200)]
        assert step / 2 <= min(waits) and max(waits) <= step
        assert max(waits) - min(waits) > step / 4  # spread: not one fixed wait


def test_the_documented_configuration_loads() -> None:
    """docs/alerts.md's example is a configuration the server accepts, routed as it says."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = AlertsConfig.model_validate(yaml.safe_load(block)["alerts"])
    support = {"route": "support-answer", "tenant": "beta"}
    assert sinks_for(cfg, support, "page") == ["oncall-pd"]
    assert sinks_for(cfg, support, "ticket") == ["team-slack"]
    owner = recipient(cfg, "payments@acme.example", T0)
    assert (owner.schedule, owner.routing_key) == ("PXYZ123", "RPAYMENTS0000000")
