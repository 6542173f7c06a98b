"""Latency and cost at the unit of assignment, over a real store (issue 12, item 4): the
per-user sums the arms' read gives, a slow, costly user on the candidate, and each user's
own latency and cost the day before as CUPED's covariate."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
from sqlalchemy import Engine, select

from tests.rollouts.support import KEY, PLAN, controller, current, record, start
from trimtab.audit.log import Actor
from trimtab.canary.analysis import analyze
from trimtab.canary.arm_stats import ArmStats
from trimtab.rollouts.store import RolloutStore
from trimtab.stats.sequential import Verdict
from trimtab.store.tables import requests


def test_a_slow_costly_user_on_the_candidate_is_one_unit_of_latency_and_cost(
    engine: Engine, store: RolloutStore
) -> None:
    """A heavy user whose requests are three times as slow and costly on either version
    lands on the candidate: request by request the candidate's cost and p95 regressed;
    at the unit of assignment it is one user of 31, and both tests say so."""
    ro = start(store)
    for i in range(60):
        record(engine, 1, 90, seed=i, user=f"s{i}")
    record(engine, 2, 300, seed=100, user="heavy", scale=3.0)
    for i in range(30):
        record(engine, 2, 10, seed=200 + i, user=f"c{i}")
    record(engine, 2, 5, seed=300)  # no user: five units of their own
    stable, candidate = controller(store).windows(ro)

    def per_request(arms: list[ArmStats]) -> list[ArmStats]:
        return [
            ArmStats(n=a.n, cost_sum=a.cost_sum, cost_sq_sum=a.cost_sq_sum, latency=a.latency)
            for a in arms
        ]

    naive = {r.metric: r for r in analyze(per_request(stable), per_request(candidate))}
    assert naive["cost"].verdict is Verdict.REGRESSION
    assert naive["latency_p95"].verdict is Verdict.REGRESSION
    controller(store).step(ro)
    held = current(store)
    assert held.status == "running" and held.last_decision is not None
    metrics = {m["metric"]: m for m in held.last_decision["metrics"]}
    for name in ("cost", "latency_p95", "latency_p50"):
        assert metrics[name]["verdict"] != "regression"
        d = float(metrics[name]["note"].rsplit("design effect ", 1)[1].split(";")[0])
        assert d > 5, name
    # the per-user sums are the rows' own
    units = candidate[0].units
    assert units is not None and units.cost is not None and units.log_latency is not None
    c = requests.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.cost_usd, c.duration_ms).where(c.user_id == "heavy", c.version == "v2")
        ).all()
    at = units.keys.index("user:heavy")
    costs = np.array([r[0] for r in rows])
    logs = np.log([r[1] for r in rows])
    assert units.cost.n[at] == 300 == units.log_latency.n[at]
    assert math.isclose(units.cost.total[at], costs.sum(), rel_tol=1e-9)
    assert math.isclose(units.cost.squares[at], (costs**2).sum(), rel_tol=1e-9)
    assert math.isclose(units.log_latency.total[at], logs.sum(), rel_tol=1e-9)
    assert math.isclose(units.log_latency.squares[at], (logs**2).sum(), rel_tol=1e-9)
    assert units.log_latency.rest_n == 5 == units.rest_n
    with engine.connect() as conn:
        rest = (
            conn.execute(select(c.duration_ms).where(c.user_id.is_(None), c.version == "v2"))
            .scalars()
            .all()
        )
    assert math.isclose(units.log_latency.rest_total, float(np.log(rest).sum()), rel_tol=1e-9)


def test_users_own_latency_and_cost_the_day_before_adjust_their_tests(
    engine: Engine, store: RolloutStore
) -> None:
    """Users differ in how slow and costly they are, the same on both days, and the
    heaviest, three times as slow and costly, lands on the candidate: with each user's mean
    cost and mean log latency the day before as CUPED's covariate, the design effect left
    of cost and of the log latency is far below the one without, and the decisions say
    what they adjusted for, theta and the users it came from."""
    adjusted = PLAN.model_copy(update={"adjust_for_history": True})
    ro = store.start(KEY, 2, "test", adjusted, Actor("key_ml", "ml@acme", "acme"), "try v2")
    day_before = ro.started_at - timedelta(hours=3)
    scale = np.exp(0.4 * np.random.default_rng(9).standard_normal(90))
    for i in range(60):
        record(engine, 1, 40, seed=i, user=f"s{i}", scale=scale[i], at=day_before)
        record(engine, 1, 60, seed=500 + i, user=f"s{i}", scale=scale[i])
    record(engine, 1, 300, seed=99, user="heavy", scale=3.0, at=day_before)
    record(engine, 2, 300, seed=100, user="heavy", scale=3.0)
    for i in range(30):
        record(engine, 1, 20, seed=600 + i, user=f"c{i}", scale=scale[60 + i], at=day_before)
        record(engine, 2, 10, seed=200 + i, user=f"c{i}", scale=scale[60 + i])
    ctl = controller(store)
    before = ctl.before(ro)
    assert before.cost is not None and before.log_latency is not None
    at = before.keys.index("user:heavy")
    c = requests.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.cost_usd, c.duration_ms).where(
                c.user_id == "heavy", c.version == "v1", c.started_at < ro.started_at
            )
        ).all()
    assert before.cost.n[at] == 300
    assert math.isclose(before.cost.total[at], sum(r[0] for r in rows), rel_tol=1e-9)
    logs = np.log([r[1] for r in rows])
    assert math.isclose(before.log_latency.total[at], float(logs.sum()), rel_tol=1e-9)
    assert math.isclose(before.log_latency.squares[at], float((logs**2).sum()), rel_tol=1e-9)
    stable, candidate = ctl.windows(ro)
    plain = {r.metric: r for r in analyze(stable, candidate, ro.plan.specs())}
    ctl.step(ro)
    decision = current(store).last_decision
    assert decision is not None and decision["action"] != "rollback"
    metrics = {m["metric"]: m for m in decision["metrics"]}
    for name, covariate in (("cost", "mean cost"), ("latency_p95", "mean log latency")):
        note = metrics[name]["note"]
        assert f"adjusted for 91 users' {covariate} before the rollout (CUPED, theta " in note
        theta = float(note.split("CUPED, theta ")[1].split(" from 91 users")[0])
        assert 0.5 < theta <= 1.0, name  # the slowness persists: most of it is explained
        d_adjusted = float(note.split("design effect ")[1].split(";")[0])
        d_plain = float(str(plain[name].note).rsplit("design effect ", 1)[1].split(";")[0])
        assert 1.0 <= d_adjusted < d_plain / 3, name
    assert metrics["latency_p95"]["n_candidate"] == 600  # requests, not exposures
