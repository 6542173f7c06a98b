"""An incident's timeline assembled from what trimtab records, on SQLite and PostgreSQL: the
route's applies and rollout moves, the audit log's key changes, budget events, the first bad
minute and the incident's own entries, in order; other routes' and tenants' records and
records from long before stay out. The postmortem drafted from it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from tests.incidents.support import ONCALL, T0, minute, traffic
from tests.registry.support import ADMIN, routes_file
from trimtab.alerts.events import BudgetEvent, insert_event
from trimtab.audit.log import Actor, AuditLog
from trimtab.canary.plans import DEFAULT_PLAN
from trimtab.incidents.postmortem import factors, render, went_well
from trimtab.incidents.store import IncidentStore, Opening
from trimtab.incidents.timeline import assemble
from trimtab.registry.scope import RouteKey
from trimtab.registry.store import RouteStore
from trimtab.rollouts.store import RolloutStore

ROUTE = RouteKey("", "support-answer")
OPERATOR = Actor(key_id="key_ml", owner="ml@acme", tenant="acme")


@pytest.fixture
def recorded(engine: Engine) -> tuple[IncidentStore, str, datetime]:
    """A release and its failure: v1 three hours ago (outside the window), v2 applied and
    rolled out 20 minutes ago, its requests failing from 10 minutes ago; a key revoked, a
    budget crossed, another route's release; then the incident, a note and an action."""
    now = datetime.now(UTC)
    routes = RouteStore(engine)
    routes.apply(routes_file(tier=0, owner="support-ml@acme"), applier=ADMIN, message="launch",
                 now=now - timedelta(hours=3))  # fmt: skip
    routes.apply(routes_file("Policy v2: {{policy}}", tier=0), applier=ADMIN,
                 message="friendlier tone", now=now - timedelta(minutes=20))  # fmt: skip
    routes.apply(routes_file(route="billing", tier=0), applier=ADMIN, message="other route",
                 now=now - timedelta(minutes=15))  # fmt: skip
    RolloutStore(engine).start(ROUTE, 2, "default", DEFAULT_PLAN, OPERATOR, "tone change")
    audit = AuditLog(engine)
    audit.append(OPERATOR.event("key.revoke", target="key_leaked", tenant="acme"))
    audit.append(OPERATOR.event("key.revoke", target="key_globex", tenant="globex"))
    insert_event(
        engine,
        BudgetEvent(now - timedelta(minutes=5), "tenant:acme", "day",
                    now.replace(hour=0, minute=0, second=0, microsecond=0), 0.8, 8.0, 10.0,
                    "alert"),
    )  # fmt: skip
    for m in range(10, 0, -1):
        traffic(engine, now - timedelta(minutes=m), ok=5, failed=5)
    store = IncidentStore(engine)
    incident = store.open(
        Opening("v2 failing", "quality_regression", routes=["support-answer"],
                tenants=["acme"]),
        scope="", by=ONCALL,
    )  # fmt: skip
    store.note(incident.id, "the canary's error rate is up", ONCALL)
    store.record_action(
        incident.id, "pause_rollout", ONCALL, "stop sending traffic to v2",
        {"route": "support-answer"}, mitigates=True,
    )  # fmt: skip
    return store, incident.id, now


def test_the_timeline_assembles_itself(recorded: tuple[IncidentStore, str, datetime]) -> None:
    store, incident_id, _ = recorded
    incident = store.require(incident_id)
    entries = assemble(store, incident, datetime.now(UTC))
    said = [(e.source, e.kind) for e in entries]
    assert said == [
        ("route", "apply"),  # v2; v1 three hours before is outside the window
        ("telemetry", "first_bad_minute"),
        ("budget", "budget"),
        ("route", "gate"),  # the rollout starts now: the store takes no clock
        ("route", "rollout_start"),
        ("route", "rollout_stage"),
        ("audit", "key.revoke"),  # acme's key; globex's is another tenant's
        ("incident", "opened"),
        ("incident", "note"),
        ("incident", "action"),
        ("incident", "mitigate"),
    ]
    apply, first, budget, gate, start, _, key = entries[:7]
    assert apply.summary == "support-answer: v2 applied: friendlier tone"
    assert apply.route == "support-answer" and apply.actor == "ops@acme"
    assert gate.summary == "support-answer: release gate checked for v2: passed"
    assert start.summary == "support-answer: rollout to v2 started: tone change"
    assert key.summary == "key.revoke key_leaked" and key.actor == "ml@acme"
    assert "tenant:acme" in budget.summary and "80 %" in budget.summary
    assert first.at == incident.times.first_bad
    assert entries == sorted(entries, key=lambda e: e.at)


def test_the_postmortem_draft(recorded: tuple[IncidentStore, str, datetime]) -> None:
    store, incident_id, _ = recorded
    store.add_rule(
        incident_id, "gate_requirement", "risk_tier:1", "tone changes need an eval pass",
        ONCALL,
    )  # fmt: skip
    incident = store.require(incident_id)
    now = datetime.now(UTC)
    impact = store.impact(incident, now)
    text = render(
        incident, impact, assemble(store, incident, now), {"support-answer": "support-ml@acme"}
    )
    for heading in (
        "## Summary", "## Impact", "## Timeline", "## Contributing factors",
        "## What went well", "## Action items", "## Reusable rules",
    ):  # fmt: skip
        assert heading in text
    assert f"| failed requests (5xx, timeouts) | {impact.failed} (50 %) |" in text
    assert f"| requests on the affected routes | {impact.requests} |" in text
    assert "| users affected | 5 |" in text
    assert "A change preceded the first bad minute by" in text
    assert "support-answer: rollout to v2 started" in text
    assert "Containment from the incident: the rollout on route support-answer paused." in text
    assert (
        "| tone changes need an eval pass | gate_requirement | support-ml@acme | risk_tier:1 |"
        in text
    )
    assert "blameless" in text
    # the people who acted are not named: systems and conditions only
    assert "oncall@acme" not in text
    assert re.search(r"(?<![\w-])ml@acme", text) is None  # the route owner's address only


def test_a_change_within_the_first_bad_minute_is_a_factor(engine: Engine) -> None:
    """The rollups count by minute: v2 applied 20 s into the minute whose requests failed
    came before those failures, and the draft says so; v1, hours before, is no factor."""
    routes = RouteStore(engine)
    routes.apply(routes_file(tier=0), applier=ADMIN, message="launch", now=T0 - timedelta(hours=3))
    routes.apply(routes_file("Policy v2: {{policy}}", tier=0), applier=ADMIN, message="tone",
                 now=T0 + timedelta(seconds=20))  # fmt: skip
    for m in range(3):
        traffic(engine, minute(m + 0.5), ok=5, failed=5)
    store = IncidentStore(engine)
    incident = store.open(Opening("v2 failing", "quality_regression", routes=["support-answer"]),
                          scope="", by=ONCALL, now=minute(4))  # fmt: skip
    assert incident.times.first_bad == T0
    entries = assemble(store, incident, minute(4))
    said = factors(incident, entries)
    assert "A change landed within the first bad minute: support-answer: v2 applied: tone." in said
    assert not any("launch" in f for f in said)
    assert "Detection took" not in " ".join(said)  # 4 minutes: quick enough
    assert went_well(incident, entries) == ["Detection came 4 min 0 s after the first bad minute."]
