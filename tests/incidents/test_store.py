"""Incidents in the store, on SQLite and PostgreSQL: the first bad minute, impact and
severity measured from the rollups at opening; a second page attaching to the open incident;
state moves with their measured durations; closing only with a postmortem and a rule; every
write on the incident's timeline and in the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from tests.incidents.support import ONCALL, T0, minute, traffic
from trimtab.errors import Conflict, NotFound
from trimtab.incidents.store import IncidentStore, Opening
from trimtab.store.tables import audit_log


@pytest.fixture
def store(engine: Engine) -> IncidentStore:
    return IncidentStore(engine)


def scenario(engine: Engine) -> None:
    """support-answer: healthy at -30, then from T0 a third of acme's requests fail for 5
    minutes while globex's all succeed; another route fails at the same time."""
    traffic(engine, minute(-30), ok=20, failed=1)  # an isolated error half an hour before
    for m in range(5):
        traffic(engine, minute(m), ok=20, failed=10)
        traffic(engine, minute(m), ok=30, tenant="globex")
        traffic(engine, minute(m), failed=5, route="billing")


def audit_actions(engine: Engine, target: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action).where(audit_log.c.target == target).order_by(audit_log.c.id)
        )
        return [a for (a,) in rows]


def test_opening_measures_from_the_rollups(store: IncidentStore, engine: Engine) -> None:
    scenario(engine)
    incident = store.open(
        Opening("answers failing", "vendor_outage", routes=["support-answer"]),
        scope="",
        by=ONCALL,
        now=minute(4.5),
    )
    assert incident.state == "open"
    assert incident.times.first_bad == T0  # the error at -30 is not this run's start
    assert incident.times.detected == minute(4.5)
    impact = store.impact(incident, now=minute(4.5))
    assert (impact.requests, impact.failed) == (300, 50)
    assert (impact.tenants, impact.tenants_failed) == (2, 1)
    assert impact.users_failed == 7  # user-0 .. user-6
    assert impact.spend_usd == pytest.approx(250 * 0.001)
    assert impact.failed_spend_usd == 0
    # 1/6 of the traffic, half the tenants: widespread; vendor outage: high impact -> SEV1
    assert impact.radius == "widespread"
    assert (incident.customer_impact, incident.severity) == ("high", 1)
    assert store.events(incident.id)[0].kind == "opened"
    assert audit_actions(engine, incident.id) == ["incident.open"]


def test_a_given_severity_wins_and_the_matrix_is_kept(store: IncidentStore, engine: Engine) -> None:
    scenario(engine)
    incident = store.open(
        Opening("slow", "quality_regression", routes=["support-answer"], severity=3),
        scope="acme",
        by=ONCALL,
        now=minute(4.5),
    )
    assert incident.severity == 3
    opened = store.events(incident.id)[0].detail or {}
    # acme alone: a third of its requests failed -> broad; medium impact -> SEV3 too
    assert opened["matrix_severity"] == 3 and opened["blast_radius"] == "broad"
    # a tenant's incident counts its own tenant's traffic only
    impact = store.impact(incident, now=minute(4.5))
    assert (impact.requests, impact.tenants) == (150, 1)


def test_no_traffic_no_first_bad_minute(store: IncidentStore) -> None:
    incident = store.open(
        Opening("leak", "pii_leak", routes=["support-answer"]), scope="", by=ONCALL, now=T0
    )
    assert incident.times.first_bad is None
    assert incident.severity == 1  # critical impact, radius unmeasured: judged limited
    assert incident.view()["durations_s"]["detect"] is None


def test_a_second_page_attaches_to_the_open_incident(store: IncidentStore, engine: Engine) -> None:
    scenario(engine)
    labels = {"route": "support-answer", "tenant": "acme", "slo": "support-availability"}
    first = store.open_from_alert(
        dedup_key="slo_burn/support-availability/page",
        labels=labels,
        severity="page",
        summary="support-availability burns 14.4x",
        started_at=minute(3),
        source="slo_burn",
        now=minute(3),
    )
    assert first is not None
    incident, opened = first
    assert opened and incident.scope == "acme" and incident.routes == ("support-answer",)
    assert incident.times.detected == minute(3) and incident.times.first_bad == T0
    assert incident.dedup_key == "slo_burn/support-availability/page"
    again = store.open_from_alert(
        dedup_key="slo_burn/support-availability/page",
        labels=labels,
        severity="page",
        summary="support-availability burns 20x",
        started_at=minute(4),
        now=minute(4),
    )
    assert again is not None and again[0].id == incident.id and not again[1]
    assert [e.kind for e in store.events(incident.id)] == ["opened", "alert"]
    # a ticket opens nothing
    assert (
        store.open_from_alert(
            dedup_key="x", labels={}, severity="ticket", summary="s", started_at=T0
        )
        is None
    )
    # once resolved, the same condition paging again is a new incident
    store.move(incident.id, "resolve", ONCALL, now=minute(10))
    third = store.open_from_alert(
        dedup_key="slo_burn/support-availability/page",
        labels=labels,
        severity="page",
        summary="burning again",
        started_at=minute(20),
        now=minute(20),
    )
    assert third is not None and third[1] and third[0].id != incident.id
    assert len(store.listed(None)) == 2
    assert [i.id for i in store.listed("acme", state="open")] == [third[0].id]
    assert store.listed(None, route="billing") == []
    assert [i.id for i in store.listed(None, route="support-answer", limit=1)] == [third[0].id]
    assert len(store.listed(None, route="support-answer")) == 2


def test_moves_and_measured_durations(store: IncidentStore, engine: Engine) -> None:
    scenario(engine)
    incident = store.open(
        Opening("answers failing", "vendor_outage", routes=["support-answer"]),
        scope="",
        by=ONCALL,
        now=minute(4),
    )
    store.move(incident.id, "acknowledge", ONCALL, now=minute(6))
    with pytest.raises(Conflict, match="already acknowledged"):
        store.move(incident.id, "acknowledge", ONCALL, now=minute(7))
    store.move(incident.id, "mitigate", ONCALL, "rolled back", now=minute(15))
    with pytest.raises(Conflict, match="is mitigated: cannot mitigate"):
        store.move(incident.id, "mitigate", ONCALL, now=minute(16))
    done = store.move(incident.id, "resolve", ONCALL, now=minute(64))
    assert done.state == "resolved"
    assert done.times.durations() == {
        "detect": 240.0,
        "acknowledge": 120.0,
        "mitigate": 660.0,
        "resolve": 3600.0,
        "impact": 3840.0,
    }
    assert audit_actions(engine, incident.id) == [
        "incident.open",
        "incident.acknowledge",
        "incident.mitigate",
        "incident.resolve",
    ]
    with pytest.raises(NotFound):
        store.move("inc_nope", "resolve", ONCALL)


def test_close_needs_resolution_postmortem_and_rule(store: IncidentStore, engine: Engine) -> None:
    incident = store.open(
        Opening("cost", "cost_spike", routes=["support-answer"]), scope="", by=ONCALL, now=T0
    )
    with pytest.raises(Conflict) as refused:
        store.move(incident.id, "close", ONCALL)
    said = str(refused.value)
    assert "resolved" in said and "postmortem" in said and "reusable rule" in said
    store.move(incident.id, "resolve", ONCALL, now=minute(30))
    store.set_postmortem(incident.id, "# Postmortem", ONCALL, drafted=True, now=minute(40))
    with pytest.raises(Conflict) as refused:
        store.move(incident.id, "close", ONCALL)
    assert "postmortem" not in str(refused.value) and "reusable rule" in str(refused.value)
    rule = store.add_rule(
        incident.id, "limit", "limits.tenant-acme", "a daily spend limit", ONCALL, now=minute(41)
    )
    closed = store.move(incident.id, "close", ONCALL, now=minute(42))
    assert closed.state == "closed" and closed.closed_at == minute(42)
    assert [r.id for r in closed.rules] == [rule.id]
    assert closed.missing_to_close() == []
    assert audit_actions(engine, incident.id)[-3:] == [
        "incident.postmortem",
        "incident.rule",
        "incident.close",
    ]
    with pytest.raises(Conflict, match="is closed"):
        store.move(incident.id, "resolve", ONCALL)


def test_notes_and_actions_land_on_the_timeline(store: IncidentStore) -> None:
    incident = store.open(
        Opening("x", "other", routes=["support-answer"]), scope="", by=ONCALL, now=T0
    )
    store.note(incident.id, "provider status page shows an outage", ONCALL, now=minute(1))
    store.record_action(
        incident.id, "pause_rollout", ONCALL, "stop the canary",
        {"route": "support-answer"}, now=minute(2), mitigates=True,
    )  # fmt: skip
    events = store.events(incident.id)
    assert [e.kind for e in events] == ["opened", "note", "action", "mitigate"]
    assert events[2].detail == {"action": "pause_rollout", "route": "support-answer"}
    assert store.require(incident.id).state == "mitigated"
    with pytest.raises(NotFound):
        store.note("inc_missing", "x", ONCALL)


def test_the_severity_changes_with_why_until_closed(store: IncidentStore, engine: Engine) -> None:
    incident = store.open(
        Opening("slow", "vendor_outage", routes=["support-answer"], severity=3),
        scope="acme",
        by=ONCALL,
        now=T0,
    )
    changed = store.set_severity(incident.id, 1, ONCALL, "every tenant now", now=minute(5))
    assert changed.severity == 1
    event = store.events(incident.id)[-1]
    assert (event.kind, event.message) == ("severity", "every tenant now")
    assert event.detail == {"from": 3, "to": 1, "message": "every tenant now"}
    assert audit_actions(engine, incident.id)[-1] == "incident.severity"
    with pytest.raises(Conflict, match="SEV1 already"):
        store.set_severity(incident.id, 1, ONCALL, "again")
    store.move(incident.id, "resolve", ONCALL, now=minute(30))
    store.set_postmortem(incident.id, "# Postmortem", ONCALL, drafted=False, now=minute(31))
    store.add_rule(incident.id, "slo", "support-latency", "an SLO on p95", ONCALL, now=minute(32))
    store.move(incident.id, "close", ONCALL, now=minute(33))
    with pytest.raises(Conflict, match="is closed"):
        store.set_severity(incident.id, 2, ONCALL, "too late")
    with pytest.raises(NotFound):
        store.set_severity("inc_missing", 2, ONCALL, "x")
