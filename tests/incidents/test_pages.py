"""Incidents from the alert pipeline, on SQLite and PostgreSQL: the real AlertService turns
signals into alert changes; PageOpener opens an incident for a page, attaches the same
condition paging again after it cleared, ignores tickets and silenced pages, and
acknowledges the incident when the alert is acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from tests.incidents.support import traffic
from trimtab.alerts.service import AlertService
from trimtab.alerts.signal import Signal
from trimtab.config import AlertsConfig
from trimtab.incidents.pages import PageOpener, pages_of
from trimtab.incidents.store import IncidentStore

KEY = "slo_burn/support-availability/page"
LABELS = {"route": "support-answer", "tenant": "acme", "slo": "support-availability"}


def signal(firing: bool, at: datetime, severity: str = "page", key: str = KEY) -> Signal:
    return Signal(
        source="slo_burn",
        dedup_key=key,
        severity=severity,  # type: ignore[arg-type]
        firing=firing,
        summary="support-availability: 1h burn 20x, 5m burn 30x",
        at=at,
        labels=LABELS,
    )


@pytest.fixture
def alerts(engine: Engine) -> AlertService:
    return AlertService(engine, AlertsConfig())


def test_a_page_opens_attaches_and_is_acknowledged(alerts: AlertService, engine: Engine) -> None:
    now = datetime.now(UTC)
    for m in range(5, 0, -1):
        traffic(engine, now - timedelta(minutes=m), ok=10, failed=10)
    store = IncidentStore(engine)
    opener = PageOpener(store)

    opener.apply(*pages_of(alerts.observe([signal(True, now)])))
    [incident] = store.listed(None)
    assert incident.dedup_key == KEY and incident.scope == "acme"
    assert incident.routes == ("support-answer",) and incident.tenants == ("acme",)
    assert incident.times.first_bad is not None and incident.times.first_bad < now
    assert incident.severity == 1  # high impact, half of the route's requests: widespread

    # the same condition firing again updates the alert: nothing new on the incident
    opener.apply(*pages_of(alerts.observe([signal(True, now + timedelta(seconds=30))])))
    assert [e.kind for e in store.events(incident.id)] == ["opened"]
    # it clears, then pages again: the open incident gets the second page
    alerts.observe([signal(False, now + timedelta(minutes=1))])
    changes = alerts.observe([signal(True, now + timedelta(minutes=2))])
    opener.apply(*pages_of(changes))
    assert len(store.listed(None)) == 1
    assert [e.kind for e in store.events(incident.id)] == ["opened", "alert"]

    # another rule of the SLO, and the candidate's own page, on the same route: attached
    other = Signal("slo_burn", KEY + "/v2", "page", True, "the candidate burns", now,
                   {**LABELS, "version": "v2"})  # fmt: skip
    opener.apply(*pages_of(alerts.observe([other])))
    assert len(store.listed(None)) == 1
    assert [e.kind for e in store.events(incident.id)] == ["opened", "alert", "alert"]
    # another tenant's page on a route of the same name is another incident
    theirs = Signal("slo_burn", "globex-burn", "page", True, "s", now,
                    {"route": "support-answer", "tenant": "globex"})  # fmt: skip
    opener.apply(*pages_of(alerts.observe([theirs])))
    assert {i.scope for i in store.listed(None)} == {"acme", "globex"}

    # acknowledging the alert acknowledges the incident
    alert = changes[0].alert
    acked = alerts.acknowledge(alert.id, "oncall@acme", "looking")
    opener.apply(*pages_of([acked]))
    assert store.require(incident.id).times.acknowledged is not None

    # a ticket opens nothing, nor a silenced page
    opener.apply(*pages_of(alerts.observe([signal(True, now, "ticket", key="t/1")])))
    alerts.silence(["slo=quiet"], timedelta(hours=1), "oncall", "noise")
    quiet = Signal("slo_burn", "q/1", "page", True, "s", now, {"slo": "quiet"})
    opener.apply(*pages_of(alerts.observe([quiet])))
    assert len(store.listed(None)) == 2


async def test_the_listener_runs_off_the_loop(alerts: AlertService, engine: Engine) -> None:
    store = IncidentStore(engine)
    opener = PageOpener(store)
    opener(alerts.observe([signal(True, datetime.now(UTC), key="burn/x")]))
    await opener.stop()
    assert [i.dedup_key for i in store.listed(None)] == ["burn/x"]
