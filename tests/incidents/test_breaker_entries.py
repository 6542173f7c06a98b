"""Breaker alerts and incidents, on SQLite and PostgreSQL: a breaker's page opens a
vendor_outage incident of the model its deployment serves; the timeline finds a trip by
the models the deployment serves (one or several), and leaves out other deployments'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from tests.incidents.support import ONCALL
from trimtab.alerts.probes import breaker_labels
from trimtab.alerts.service import AlertService
from trimtab.alerts.signal import Signal
from trimtab.config import AlertsConfig
from trimtab.incidents.store import IncidentStore, Opening
from trimtab.incidents.timeline import assemble


def _breaker(deployment: str, models: list[str], at: datetime, firing: bool = True) -> Signal:
    return Signal(
        source="breaker",
        dedup_key=f"breaker/{deployment}",
        severity="page",
        firing=firing,
        summary=f"breaker of {deployment} is open: requests go elsewhere",
        at=at,
        labels=breaker_labels(deployment, models),
    )


def test_a_breaker_page_opens_a_vendor_outage_of_its_model(engine: Engine) -> None:
    at = datetime.now(UTC)
    store = IncidentStore(engine)
    labels = breaker_labels("openai/gpt-4o", ["gpt-4o"])
    opened = store.open_from_alert(
        dedup_key="breaker/openai/gpt-4o",
        labels=labels,
        severity="page",
        summary="breaker of openai/gpt-4o is open: requests go elsewhere",
        started_at=at,
        source="breaker",
    )
    assert opened is not None
    incident, created = opened
    assert created and incident.type == "vendor_outage"
    assert incident.models == ("gpt-4o",) and incident.scope == ""


def test_the_timeline_has_the_trips_of_the_deployments_serving_its_models(
    engine: Engine,
) -> None:
    now = datetime.now(UTC)
    clock = [now - timedelta(minutes=30)]
    service = AlertService(engine, AlertsConfig(), clock=lambda: clock[0])
    service.observe(
        [
            _breaker("azure/gpt-4o", ["gpt-4o", "gpt-4o-eu"], clock[0]),  # two models
            _breaker("openai/gpt-4o-mini", ["gpt-4o-mini"], clock[0]),  # another model's
        ]
    )
    clock[0] = now - timedelta(minutes=20)
    service.observe([_breaker("azure/gpt-4o", ["gpt-4o", "gpt-4o-eu"], clock[0], False)])
    store = IncidentStore(engine)
    incident = store.open(
        Opening("EU answers fail", "vendor_outage", models=["gpt-4o-eu"], tenants=["acme"]),
        scope="acme",
        by=ONCALL,
    )
    entries = [e for e in assemble(store, incident, now) if e.kind.startswith("breaker_")]
    assert [(e.kind, e.at) for e in entries] == [
        ("breaker_tripped", now - timedelta(minutes=30)),
        ("breaker_closed", now - timedelta(minutes=20)),
    ]
    assert entries[0].summary == (
        "breaker of azure/gpt-4o (serving gpt-4o, gpt-4o-eu) tripped: its requests go elsewhere"
    )
    assert entries[0].detail is not None and entries[0].detail["source"] == "breaker"
    mini = store.open(Opening("mini", "vendor_outage", models=["gpt-4o-mini"]), scope="", by=ONCALL)
    kinds = [(e.kind, e.summary.split(" (")[0]) for e in assemble(store, mini, now)]
    assert ("breaker_tripped", "breaker of openai/gpt-4o-mini") in kinds
    assert not any("azure/gpt-4o" in summary for _, summary in kinds)
