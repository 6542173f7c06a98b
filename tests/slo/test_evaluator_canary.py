"""The candidate's own burn during a rollout: a 10 % canary failing completely pages on
its own traffic while the route's overall burn stays under every page factor, and the
page rolls the rollout back through the rollout store (timeline, audit, reason naming
the SLO and the burn). Real stores (SQLite and PostgreSQL), records through the real
TelemetryStore, cycles with an explicit `now`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from tests.registry.support import OPERATOR, routes_file
from tests.slo.support import request
from trimtab.alerts.signal import Signal
from trimtab.audit.log import Actor
from trimtab.canary.plans import Plan, Stage
from trimtab.registry.scope import RouteKey
from trimtab.registry.store import RouteStore
from trimtab.rollouts.row import RolloutRow
from trimtab.rollouts.store import RolloutStore
from trimtab.slo.evaluator import SloEvaluator
from trimtab.slo.spec import load_slos
from trimtab.slo.store import SloStore
from trimtab.store.tables import audit_log
from trimtab.telemetry.store import TelemetryStore

ROUTE = "support-answer"
KEY = RouteKey("acme", ROUTE)  # tenant acme's own route
PLAN = Plan(
    stages=[
        Stage(percent=10, min_duration_s=0, min_canary_requests=20),
        Stage(percent=100, min_duration_s=0, min_canary_requests=20),
    ]
)
SLOS = f"""
slos:
  answer-availability:
    route: {ROUTE}
    sli: {{kind: availability}}
    objective: 0.95
"""


def _nothing(signals: Sequence[Signal]) -> None:
    return None


@pytest.fixture
def rollouts(engine: Engine) -> RolloutStore:
    routes = RouteStore(engine)
    routes.apply(routes_file("Policy A", tier=0), applier=OPERATOR, message="v1")
    routes.apply(routes_file("Policy B", tier=0), applier=OPERATOR, message="v2")
    SloStore(engine).apply(load_slos(SLOS), scope="", actor="ops@acme")
    return RolloutStore(engine)


def start(store: RolloutStore) -> RolloutRow:
    return store.start(KEY, 2, "test", PLAN, Actor("key_ml", "ml@acme", "acme"), "try v2")


def traffic(
    engine: Engine, since: datetime, minutes: int, candidate_fails: bool, first_id: int = 0
) -> None:
    """Ten requests every 10 s from `since`: nine to v1, all fine, one to v2 (10 %), which
    fails when `candidate_fails`."""
    records = []
    n = first_id
    for slot in range(minutes * 6):
        at = since.timestamp() + 10 * slot + 1
        for k in range(10):
            version = "v2" if k == 0 else "v1"
            status = 502 if version == "v2" and candidate_fails else 200
            records.append(
                request(n, at, route=ROUTE, version=version, status_code=status, tenant="acme")
            )
            n += 1
    TelemetryStore(engine).write(records)


def evaluator(engine: Engine, rollouts: RolloutStore) -> SloEvaluator[RolloutRow]:
    return SloEvaluator(engine, _nothing, rollouts=rollouts, holder="a")


def test_a_failing_10_percent_canary_pages_on_its_own_burn_and_rolls_back(
    engine: Engine, rollouts: RolloutStore
) -> None:
    ro = start(rollouts)
    traffic(engine, ro.started_at, 20, candidate_fails=True)
    now = ro.started_at + timedelta(minutes=20)
    cycle = evaluator(engine, rollouts).cycle(now)
    signals = {s.dedup_key: s for s in cycle.signals}
    # the route as a whole: 10 % bad is a burn of 2, under both page factors
    route_pages = [
        signals[f"slo_burn/answer-availability/{r}"] for r in ("page-1h-5m", "page-6h-30m")
    ]
    assert not any(s.firing for s in route_pages)
    assert route_pages[0].details["long_window"]["burn"] == pytest.approx(2.0)  # type: ignore[index]
    # the candidate alone: every request bad, a burn of 20 over both windows of each page rule
    page = signals["slo_burn/answer-availability/page-1h-5m/v2"]
    assert page.firing and page.severity == "page"
    assert page.labels["version"] == "v2" and page.labels["tenant"] == "acme"
    assert page.labels["owner"] == "o@a"
    long = page.details["long_window"]
    assert isinstance(long, dict)
    assert (long["valid"], long["bad"]) == (120, 120) and long["burn"] == pytest.approx(20.0)
    assert cycle.candidates == 1
    # said again every cycle while the rollout runs; resolves by itself two TTLs after
    assert page.expires_at == now + timedelta(seconds=180)
    assert signals["slo_burn/answer-availability/page-1h-5m"].expires_at is None
    # ... which rolls the rollout back
    (rollback,) = cycle.rollbacks
    assert rollback.done and rollback.rollout == ro.id and rollback.version == 2
    assert "SLO answer-availability pages on the candidate v2's own traffic" in rollback.reason
    assert "20.0x over 1h (120 of 120 bad)" in rollback.reason
    ended = rollouts.latest(KEY)
    assert ended is not None and ended.status == "rolled_back"
    assert rollouts.current(KEY) is None
    assert ended.last_decision is not None and ended.last_decision["slo"] == "answer-availability"
    route = RouteStore(engine).get_route(KEY)
    assert route is not None and route.stable_version == 1  # stable is left as it was
    events = RouteStore(engine).events(KEY)
    assert events[-1].kind == "rollback" and events[-1].actor == "slo-evaluator"
    assert "answer-availability" in (events[-1].reason or "")
    with engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action, audit_log.c.actor)).all()
    assert ("rollout.rollback", "slo-evaluator") in [tuple(a) for a in actions]


def test_the_candidates_page_clears_once_its_rollout_has_ended(
    engine: Engine, rollouts: RolloutStore
) -> None:
    ro = start(rollouts)
    traffic(engine, ro.started_at, 20, candidate_fails=True)
    ev = evaluator(engine, rollouts)
    now = ro.started_at + timedelta(minutes=20)
    assert ev.cycle(now).rollbacks
    later = ev.cycle(now + timedelta(seconds=30))
    assert later.candidates == 0 and later.rollbacks == []
    cleared = {s.dedup_key: s for s in later.signals if s.dedup_key.endswith("/v2")}
    assert set(cleared) == {
        "slo_burn/answer-availability/page-1h-5m/v2",
        "slo_burn/answer-availability/page-6h-30m/v2",
        "slo_burn/answer-availability/ticket-3d-6h/v2",  # 120 events: above its bound of 20
    }
    assert not any(s.firing for s in cleared.values())
    page = cleared["slo_burn/answer-availability/page-1h-5m/v2"]
    assert page.summary == (
        "SLO answer-availability on the candidate v2: page-1h-5m clear, its rollout has ended"
    )
    assert page.details["rollout"] == ro.id
    # said once: the next cycle has nothing more about the candidate
    again = ev.cycle(now + timedelta(seconds=60))
    assert not any(s.dedup_key.endswith("/v2") for s in again.signals)


def test_a_healthy_canary_is_judged_and_left_running(
    engine: Engine, rollouts: RolloutStore
) -> None:
    ro = start(rollouts)
    traffic(engine, ro.started_at, 20, candidate_fails=False)
    cycle = evaluator(engine, rollouts).cycle(ro.started_at + timedelta(minutes=20))
    assert cycle.candidates == 1 and cycle.rollbacks == []
    candidate = [s for s in cycle.signals if s.labels.get("version") == "v2"]
    assert len(candidate) == 3 and not any(s.firing for s in candidate)
    assert rollouts.current(KEY) is not None


def test_the_candidates_burn_counts_only_its_minutes_since_the_rollout_started(
    engine: Engine, rollouts: RolloutStore
) -> None:
    ro = start(rollouts)
    # v2 failed an hour before this rollout (say an earlier attempt): not this rollout's
    before = ro.started_at - timedelta(minutes=60)
    traffic(engine, before, 30, candidate_fails=True)
    traffic(engine, ro.started_at, 10, candidate_fails=False, first_id=100_000)
    cycle = evaluator(engine, rollouts).cycle(ro.started_at + timedelta(minutes=10))
    assert cycle.rollbacks == []
    page = next(s for s in cycle.signals if s.dedup_key.endswith("page-6h-30m/v2"))
    long = page.details["long_window"]
    assert isinstance(long, dict) and (long["valid"], long["bad"]) == (60, 0)


def test_a_quiet_canary_below_the_minimum_of_events_does_not_roll_back(
    engine: Engine, rollouts: RolloutStore
) -> None:
    ro = start(rollouts)
    # one candidate request, failed: a burn of 20, but one event is below the bound of 10
    TelemetryStore(engine).write(
        [request(0, ro.started_at.timestamp() + 5, route=ROUTE, version="v2", status_code=502)]
    )
    cycle = evaluator(engine, rollouts).cycle(ro.started_at + timedelta(minutes=1))
    assert cycle.rollbacks == [] and rollouts.current(KEY) is not None
    page = next(s for s in cycle.signals if s.dedup_key.endswith("page-1h-5m/v2"))
    assert page.details["state"] == "too_little_data" and not page.firing
