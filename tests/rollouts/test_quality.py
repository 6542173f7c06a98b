"""quality_score over a real store: the reader's per-answer scores, a candidate shown worse
rolled back by the controller, a plan requiring it held until it passes, the scores that
arrive after a window closed, and the scores judged at the unit of assignment (their
requests' users)."""

from __future__ import annotations

import math
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert, select

from tests.rollouts.support import (
    KEY,
    PLAN,
    ROUTE,
    Clock,
    controller,
    current,
    record,
    start,
)
from trimtab.audit.log import Actor
from trimtab.canary.analysis import analyze
from trimtab.canary.plans import MetricRule, Plan, Stage
from trimtab.rollouts.controller import SCORES_SETTLE_S, SETTLE_S
from trimtab.rollouts.store import RolloutStore
from trimtab.stats.sequential import Verdict
from trimtab.store.tables import online_scores, requests


def scores(
    engine: Engine,
    version: int,
    values: Any,
    *,
    at: datetime | None = None,
    scorers: tuple[str, ...] = ("relevance",),
    suite: str = "quality",
    ids: list[str] | None = None,
) -> list[str]:
    """One scored answer of the route's `version` per value, scored `value` by each of
    `scorers` (a value per scorer when the value is a tuple) in `suite`; the answers'
    request ids (`ids`: these, one per value). Returns the ids."""
    when = at or datetime.now(UTC)
    rows = []
    out = []
    for i, value in enumerate(values):
        rid = ids[i] if ids is not None else "req_" + secrets.token_hex(8)
        out.append(rid)
        each = value if isinstance(value, tuple) else (value,) * len(scorers)
        for scorer, v in zip(scorers, each, strict=True):
            rows.append(
                {"request_id": rid, "scorer": scorer, "suite": suite, "scope": "acme",
                 "tenant": "acme", "route": ROUTE, "version": f"v{version}", "value": float(v),
                 "passed": v >= 0.5, "reason": "", "request_at": when, "scored_at": when}
            )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(online_scores), rows)
    return out


def test_an_answer_is_one_observation_whatever_its_scorers(
    engine: Engine, store: RolloutStore
) -> None:
    ro = start(store)
    scores(engine, 2, [(1.0, 0.5), (0.0, 0.5), (0.5, 0.5)], scorers=("a", "b"))
    since = ro.started_at - timedelta(minutes=1)
    _, q = store.arms.quality(ro, since, None)
    assert (q.answers, q.scores, q.passes) == (3, 6, 5)
    assert (q.answer_sum, q.answer_sq_sum) == (1.5, 0.75**2 + 0.25**2 + 0.5**2)
    _, candidate = store.arms.between(ro, since, None)
    assert (candidate.quality_n, candidate.quality_sum) == (3, 1.5)


def test_two_suites_scoring_an_answer_with_one_scorer_name_count_it_once(
    engine: Engine, store: RolloutStore
) -> None:
    """Suites that share a scorer's name each keep their row (online_scores by suite);
    the answer's score is the mean over its scorer names, each name's suites averaged,
    and it passed a name only if every suite passed it."""
    ro = start(store)
    ids = scores(engine, 2, [(1.0, 0.0)], scorers=("helpful", "polite"), suite="team-a")
    scores(engine, 2, [0.4], scorers=("helpful",), suite="team-b", ids=ids)
    since = ro.started_at - timedelta(minutes=1)
    _, q = store.arms.quality(ro, since, None)
    # helpful: mean of 1.0 and 0.4 (team-b's 0.4 did not pass); polite: 0.0
    assert (q.answers, q.scores, q.passes) == (1, 2, 0)
    assert q.answer_sum == (0.7 + 0.0) / 2


def test_a_candidate_whose_answers_score_worse_is_rolled_back(
    engine: Engine, store: RolloutStore
) -> None:
    ro = start(store)
    rng = np.random.default_rng(1)
    record(engine, 1, 300, seed=1)
    record(engine, 2, 40, seed=2)
    scores(engine, 1, rng.beta(4.0, 1.0, 200))  # mean 0.8
    scores(engine, 2, rng.beta(2.0, 2.0, 40))  # mean 0.5
    assert controller(store).step(ro)
    done = current(store)
    assert done.status == "rolled_back" and done.last_decision is not None
    assert done.last_decision["reasons"][0].startswith("quality_score regressed")
    quality = next(m for m in done.last_decision["metrics"] if m["metric"] == "quality_score")
    assert quality["verdict"] == "regression"
    # the scores' requests are not in the store: every answer its own unit
    assert quality["note"] == (
        "40 candidate and 200 stable answers scored online; sticky users: design effect 1"
    )


def test_a_candidate_scoring_as_well_is_not_rolled_back_by_quality(
    engine: Engine, store: RolloutStore
) -> None:
    ro = start(store)
    rng = np.random.default_rng(2)
    record(engine, 1, 300, seed=1)
    record(engine, 2, 40, seed=2)
    scores(engine, 1, rng.beta(4.0, 1.0, 300))
    scores(engine, 2, rng.beta(4.0, 1.0, 40))
    assert controller(store).step(ro)
    moved = current(store)
    assert (moved.status, moved.stage) == ("running", 1)
    assert moved.last_decision is not None
    quality = next(m for m in moved.last_decision["metrics"] if m["metric"] == "quality_score")
    assert quality["verdict"] == "inconclusive"


ONLY_QUALITY = Plan(
    stages=[
        Stage(percent=50, min_duration_s=0, min_canary_requests=20),
        Stage(percent=100, min_duration_s=0, min_canary_requests=20),
    ],
    metrics={
        "quality_score": MetricRule(required=True),
        **{
            name: MetricRule(required=False)
            for name in ("error_rate", "latency_p95", "cost", "refusal_rate")
        },
    },
)


def test_a_plan_requiring_quality_holds_with_too_little_data_then_promotes(
    engine: Engine, store: RolloutStore
) -> None:
    ro = store.start(KEY, 2, "test", ONLY_QUALITY, Actor("key_ml", "ml@acme", "acme"), "v2")
    record(engine, 1, 100, seed=1)
    record(engine, 2, 100, seed=2)
    scores(engine, 1, np.full(50, 0.75))
    scores(engine, 2, np.full(10, 0.75))
    ctl = controller(store)
    assert not ctl.step(ro)
    held = current(store)
    assert held.status == "running" and held.last_decision is not None
    assert held.last_decision["reasons"] == [
        "quality_score has not passed yet (inconclusive: not shown within its margin; "
        "difference 0 in [-inf, inf], margin -0.05): too little data: 10 candidate and 50 "
        "stable answers scored online, 30 per arm needed"
    ]
    rng = np.random.default_rng(3)
    scores(engine, 1, rng.beta(4.0, 1.0, 3000))
    scores(engine, 2, rng.beta(4.0, 1.0, 3000))
    assert ctl.step(current(store))
    done = current(store)
    assert done.status == "promoted" and done.last_decision is not None
    quality = next(m for m in done.last_decision["metrics"] if m["metric"] == "quality_score")
    assert quality["verdict"] == "pass"


def test_scores_arriving_after_a_window_closed_still_count_until_they_settle(
    engine: Engine, store: RolloutStore
) -> None:
    """Requests are read once a closed window has settled; its scores come later (the
    scorer's cycles and queue), so they are read again until SCORES_SETTLE_S."""
    clock = Clock()
    ctl = controller(store, clock)
    ro = start(store)
    record(engine, 1, 270, seed=1)
    record(engine, 2, 30, seed=2)
    assert ctl.step(ro)  # stage 0 (10 %) closes
    moved = current(store)
    (start0, end0), _ = moved.windows()
    assert end0 is not None
    clock.offset = SETTLE_S + 5
    assert ctl.windows(moved)[1][0].quality_n == 0  # its requests now read once and kept
    scores(engine, 2, np.full(12, 0.7), at=start0)
    assert ctl.windows(moved)[1][0].quality_n == 12
    clock.offset = SCORES_SETTLE_S + 5
    assert ctl.windows(moved)[1][0].quality_n == 12
    scores(engine, 2, np.full(5, 0.7), at=start0)  # too late: the window is settled
    stable, candidate = ctl.windows(moved)
    assert candidate[0].quality_n == 12 and candidate[0].n == 30 and stable[0].n == 270
    assert PLAN.stages[0].percent == 10


def score_users(engine: Engine, version: int, values: dict[str, float]) -> None:
    """Every recorded request of ``version`` by a user in ``values`` scored that user's
    value (one scorer), as online scoring stores it: keyed by the request's id."""
    c = requests.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.id, c.user_id, c.started_at).where(
                c.version == f"v{version}", c.user_id.in_(list(values))
            )
        ).all()
    with engine.begin() as conn:
        conn.execute(
            insert(online_scores),
            [
                {"request_id": rid, "scorer": "relevance", "suite": "quality", "scope": "acme",
                 "tenant": "acme", "route": ROUTE, "version": f"v{version}",
                 "value": values[user], "passed": values[user] >= 0.5, "reason": "",
                 "request_at": at, "scored_at": at}
                for rid, user, at in rows
            ],
        )  # fmt: skip


def test_online_scores_are_judged_at_their_users(engine: Engine, store: RolloutStore) -> None:
    """The scores carry no user, their requests do: the reader joins them and sums each
    user's scored answers, and a heavy user whose answers all score low, on the
    candidate, is one unit of 31 — per answer the candidate regressed, per user it did
    not, and the decision says the design effect."""
    ro = start(store)
    rng = np.random.default_rng(4)
    stable_scores = {f"s{i}": float(v) for i, v in enumerate(rng.beta(4.0, 1.0, 40))}
    for i in range(40):
        record(engine, 1, 10, seed=i, user=f"s{i}")
    record(engine, 2, 200, seed=100, user="heavy")
    candidate_scores = {f"c{i}": float(v) for i, v in enumerate(rng.beta(4.0, 1.0, 30))}
    for i in range(30):
        record(engine, 2, 2, seed=200 + i, user=f"c{i}")
    record(engine, 2, 5, seed=300)  # no user: their answers are units of their own
    score_users(engine, 1, stable_scores)
    score_users(engine, 2, {**candidate_scores, "heavy": 0.3})
    scores(engine, 2, [0.5, 0.7])  # scored answers whose requests the store does not have
    ctl = controller(store)
    stable, candidate = ctl.windows(ro)
    units = candidate[0].units
    assert units is not None and units.quality is not None
    at = units.keys.index("user:heavy")
    assert units.quality.n[at] == 200
    assert math.isclose(units.quality.total[at], 200 * 0.3, rel_tol=1e-9)
    assert math.isclose(units.quality.squares[at], 200 * 0.09, rel_tol=1e-9)
    c0 = units.keys.index("user:c0")
    assert units.quality.n[c0] == 2
    assert math.isclose(units.quality.total[c0], 2 * candidate_scores["c0"], rel_tol=1e-9)
    assert units.quality.rest_n == 2 and math.isclose(units.quality.rest_total, 1.2)
    assert candidate[0].quality_n == 262
    per_answer = analyze(
        [replace(a, units=None) for a in stable], [replace(a, units=None) for a in candidate]
    )
    by_answer = next(r for r in per_answer if r.metric == "quality_score")
    assert by_answer.verdict is Verdict.REGRESSION
    ctl.step(ro)
    decision = current(store).last_decision
    assert decision is not None
    quality = next(m for m in decision["metrics"] if m["metric"] == "quality_score")
    assert quality["verdict"] != "regression"
    d = float(quality["note"].rsplit("design effect ", 1)[1])
    assert d > 5
