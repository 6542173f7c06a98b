"""The alert model over a real store (SQLite and PostgreSQL): dedup, resolve, escalation,
acknowledgement, silences, expiry, and several processes firing one condition once."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.alerts.support import T0, alerts_config, signal
from trimtab.alerts.model import AlertChange
from trimtab.alerts.outbox_store import outbox_rows
from trimtab.alerts.service import AlertService
from trimtab.errors import Conflict, Invalid, NotFound
from trimtab.store.engine import make_engine


class Clock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def service(engine: Engine, clock: Clock | None = None, **config: Any) -> AlertService:
    return AlertService(engine, alerts_config(**config), clock=clock or Clock())


def events(engine: Engine, alert_id: int) -> list[tuple[str, str]]:
    return [(r["sink"], r["event"]) for r in outbox_rows(engine, alert_id)]


def test_a_condition_that_keeps_firing_is_one_alert(engine: Engine) -> None:
    alerts = service(engine)
    first = alerts.observe([signal(details={"burn": 15.0})])
    later = alerts.observe([signal(details={"burn": 20.0}), signal(details={"burn": 22.5})])
    assert [c.change for c in first] == ["opened"]
    assert [c.change for c in later] == ["updated", "updated"]
    (alert,) = alerts.alerts()
    assert alert.id == first[0].alert.id
    assert (alert.state, alert.count, alert.severity) == ("firing", 3, "page")
    assert alert.details == {"burn": 22.5}
    assert alert.labels == {"route": "support", "tenant": "acme"}
    # the page went to the sinks taking pages, once: no spam for the updates
    assert sorted(events(engine, alert.id)) == [
        ("am", "trigger"),
        ("hook", "trigger"),
        ("pager", "trigger"),
    ]


def test_a_cleared_signal_resolves_and_a_new_firing_opens_again(engine: Engine) -> None:
    clock = Clock()
    alerts = service(engine, clock)
    (opened,) = alerts.observe([signal()])
    clock.at = T0 + timedelta(minutes=5)
    (resolved,) = alerts.observe([signal(firing=False)])
    assert resolved.change == "resolved"
    assert resolved.alert.id == opened.alert.id
    assert resolved.alert.state == "resolved"
    assert resolved.alert.resolved_at == clock.at
    assert alerts.observe([signal(firing=False)]) == []  # nothing open: nothing to do
    (again,) = alerts.observe([signal(at=clock.at)])
    assert again.change == "opened"
    assert again.alert.id != opened.alert.id
    assert sorted(events(engine, opened.alert.id)) == [
        ("am", "resolve"),
        ("am", "trigger"),
        ("hook", "resolve"),
        ("hook", "trigger"),
        ("pager", "resolve"),
        ("pager", "trigger"),
    ]


def test_acknowledged_then_resolved(engine: Engine) -> None:
    alerts = service(engine)
    (opened,) = alerts.observe([signal()])
    acked = alerts.acknowledge(opened.alert.id, "ops@acme", "looking")
    assert acked.change == "acknowledged"
    assert (acked.alert.state, acked.alert.acked_by, acked.alert.ack_comment) == (
        "acknowledged",
        "ops@acme",
        "looking",
    )
    assert alerts.acknowledge(opened.alert.id, "other", "x").change == "unchanged"
    # Alertmanager has no acknowledgement; PagerDuty and the webhook hear of it
    acks = sorted(s for s, e in events(engine, opened.alert.id) if e == "acknowledge")
    assert acks == ["hook", "pager"]
    (resolved,) = alerts.observe([signal(firing=False)])
    assert resolved.alert.state == "resolved"
    with pytest.raises(Conflict, match="resolved"):
        alerts.acknowledge(opened.alert.id, "ops", "late")
    with pytest.raises(NotFound):
        alerts.acknowledge(9999, "ops", "none")


def test_a_ticket_that_becomes_a_page_is_escalated_once(engine: Engine) -> None:
    alerts = service(engine)
    (ticket,) = alerts.observe([signal("budget/acme", severity="ticket", source="budget")])
    assert sorted(events(engine, ticket.alert.id)) == [
        ("am", "trigger"),
        ("chat", "trigger"),
        ("hook", "trigger"),
    ]
    (page,) = alerts.observe([signal("budget/acme", severity="page", source="budget")])
    assert page.change == "escalated"
    assert page.alert.id == ticket.alert.id and page.alert.severity == "page"
    (later,) = alerts.observe([signal("budget/acme", severity="ticket", source="budget")])
    assert later.change == "updated" and later.alert.severity == "page"  # never lowered
    triggers = sorted(s for s, e in events(engine, ticket.alert.id) if e == "trigger")
    assert triggers == ["am", "am", "chat", "hook", "hook", "pager"]


def test_a_silence_records_the_alert_but_delivers_nothing(engine: Engine) -> None:
    clock = Clock()
    alerts = service(engine, clock)
    silence = alerts.silence(
        ["route=support", "severity=~page|ticket"], timedelta(hours=2), "ops", "deploy"
    )
    (hushed,) = alerts.observe([signal()])
    assert hushed.alert.silenced
    assert events(engine, hushed.alert.id) == []
    (other,) = alerts.observe([signal("k2", labels={"route": "billing"})])
    assert not other.alert.silenced and events(engine, other.alert.id)
    (resolved,) = alerts.observe([signal(firing=False)])
    assert events(engine, resolved.alert.id) == []  # never sent, so no resolve either
    assert [s.id for s in alerts.silences()] == [silence.id]
    ended = alerts.unsilence(silence.id)
    assert not ended.active(clock.at)
    assert alerts.silences() == [] and len(alerts.silences(expired_too=True)) == 1
    with pytest.raises(Conflict):
        alerts.unsilence(silence.id)
    with pytest.raises(NotFound):
        alerts.unsilence(9999)
    (loud,) = alerts.observe([signal(at=clock.at)])
    assert not loud.alert.silenced and events(engine, loud.alert.id)


def test_a_silence_expires(engine: Engine) -> None:
    clock = Clock()
    alerts = service(engine, clock)
    alerts.silence(["tenant!=beta"], timedelta(minutes=30), "ops", "maintenance")
    assert alerts.observe([signal("a")])[0].alert.silenced
    clock.at = T0 + timedelta(minutes=31)
    assert not alerts.observe([signal("b")])[0].alert.silenced


def test_bad_silences_are_refused(engine: Engine) -> None:
    alerts = service(engine)
    with pytest.raises(Invalid, match="label=value"):
        alerts.silence(["route"], timedelta(hours=1), "ops", "x")
    with pytest.raises(Invalid, match="regular expression"):
        alerts.silence(["route=~("], timedelta(hours=1), "ops", "x")
    with pytest.raises(Invalid, match="comment"):
        alerts.silence(["route=x"], timedelta(hours=1), "ops", " ")
    with pytest.raises(Invalid, match="365 days"):
        alerts.silence(["route=x"], timedelta(days=400), "ops", "x")


def test_an_alert_past_its_expiry_resolves(engine: Engine) -> None:
    clock = Clock()
    alerts = service(engine, clock)
    end = T0 + timedelta(days=1)
    alerts.observe([signal("budget/acme/month", source="budget", expires_at=end)])
    assert alerts.resolve_expired() == []
    clock.at = end
    (resolved,) = alerts.resolve_expired()
    assert resolved.change == "resolved" and resolved.alert.resolved_at == end


def test_owner_and_on_call_from_the_rotation(engine: Engine) -> None:
    rotations = {
        "support-ml": {
            "people": ["ana", "bo"],
            "start": "2026-11-23T09:00:00+00:00",
            "every": "weekly",
        }
    }
    alerts = AlertService(
        engine,
        alerts_config(rotations=rotations),
        owners=lambda labels: "support-ml" if labels.get("route") == "support" else None,
        clock=Clock(),
    )
    (change,) = alerts.observe([signal()])  # 2026-12-02: the second week since the start
    assert (change.alert.owner, change.alert.on_call) == ("support-ml", "bo")
    (unowned,) = alerts.observe([signal("x", labels={"route": "other"})])
    assert (unowned.alert.owner, unowned.alert.on_call) == (None, None)


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_several_processes_fire_one_condition_once(engine: Engine, store_url: str) -> None:
    """Six services with engines of their own (as six server processes would be) observe
    the same new condition at once, three times over: one alert, opened once, paged once."""
    services = [service(make_engine(store_url)) for _ in range(6)]
    barrier = threading.Barrier(len(services))
    changes: list[AlertChange] = []
    lock = threading.Lock()

    def run(alerts: AlertService) -> None:
        for _ in range(3):
            barrier.wait()
            got = alerts.observe([signal()])
            with lock:
                changes.extend(got)

    threads = [threading.Thread(target=run, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in services:
        s.engine.dispose()
    assert sorted(c.change for c in changes).count("opened") == 1
    assert len({c.alert.id for c in changes}) == 1
    (alert,) = service(engine).alerts()
    assert alert.count == 18
    assert sorted(events(engine, alert.id)) == [
        ("am", "trigger"),
        ("hook", "trigger"),
        ("pager", "trigger"),
    ]
    # and they resolve it once
    barrier = threading.Barrier(len(services))
    resolved: list[AlertChange] = []

    def clear(alerts: AlertService) -> None:
        barrier.wait()
        got = alerts.observe([signal(firing=False)])
        with lock:
            resolved.extend(got)

    services = [service(make_engine(store_url)) for _ in range(6)]
    threads = [threading.Thread(target=clear, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in services:
        s.engine.dispose()
    assert [c.change for c in resolved] == ["resolved"]
    assert sorted(e for _, e in events(engine, alert.id)).count("resolve") == 3
