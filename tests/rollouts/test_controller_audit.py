"""The controller's automatic moves are audited, with the actor "controller" (issue 8,
item 2); on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from tests.rollouts.support import KEY, ROUTE, Clock, controller, current, record, start
from trimtab.audit.log import Actor
from trimtab.canary.plans import MetricRule, Plan, Stage
from trimtab.rollouts.store import RolloutStore
from trimtab.store.tables import audit_log


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        query = select(audit_log).order_by(audit_log.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def moves(engine: Engine) -> list[tuple[str, str | None, str | None, str | None]]:
    return [
        (r["action"], r["actor"], r["tenant"], r["target"])
        for r in rows(engine)
        if r["actor"] == "controller"
    ]


def test_advance_and_rollback_are_audited(engine: Engine, store: RolloutStore) -> None:
    ro = start(store)
    record(engine, 1, 270, seed=1)
    record(engine, 2, 30, seed=2)
    assert controller(store).step(ro)
    record(engine, 1, 1800, errors=18, seed=3)
    record(engine, 2, 800, errors=80, seed=4)
    assert controller(store).step(current(store))
    assert current(store).status == "rolled_back"
    assert moves(engine) == [
        ("rollout.advance", "controller", "acme", ROUTE),
        ("rollout.rollback", "controller", "acme", ROUTE),
    ]
    advance, rollback = (r for r in rows(engine) if r["actor"] == "controller")
    assert advance["actor_key_id"] is None and advance["detail"]["stage"] == 1
    assert "error_rate regressed" in rollback["detail"]["reason"]
    # the start was audited too, with the actor the store was given
    assert rows(engine)[0]["action"] == "rollout.start"


def test_promotion_and_pause_are_audited(engine: Engine, store: RolloutStore) -> None:
    lenient = {
        m: MetricRule(required=False) for m in ("latency_p95", "cost", "error_rate", "refusal_rate")
    }
    one = Plan(
        stages=[Stage(percent=100, min_duration_s=0, min_canary_requests=10)], metrics=lenient
    )
    ops = Actor("key_ml", "ml@acme", "acme")
    ro = store.start(KEY, 2, "one", one, ops, "try")
    record(engine, 1, 100, seed=1)
    record(engine, 2, 20, seed=2)
    assert controller(store).step(ro)
    assert current(store).status == "promoted"
    # a stage still waiting at its maximum pauses for a human
    slow = Plan(
        stages=[
            Stage(percent=10, min_canary_requests=10_000, max_duration_s=60),
            Stage(percent=100),
        ]
    )
    back = store.rollback(KEY, 1, ops, "back to v1")
    assert back == (1, False)
    clock = Clock()
    clock.offset = 120
    ro = store.start(KEY, 2, "slow", slow, ops, "again")
    assert controller(store, clock).step(ro)
    assert current(store).status == "paused"
    assert [m[0] for m in moves(engine)] == ["rollout.promote", "rollout.pause"]
