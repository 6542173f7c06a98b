"""The controller over a real store: windows per stage, evidence across them, when it moves."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

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
from trimtab.alerts.signal import Signal
from trimtab.audit.log import Actor
from trimtab.canary.analysis import analyze
from trimtab.canary.arm_stats import ArmStats
from trimtab.canary.metrics import ERROR_MARGIN
from trimtab.canary.plans import TIER_SCALE, Plan, Stage
from trimtab.rollouts.controller import SETTLE_S, RolloutController
from trimtab.rollouts.store import RolloutStore
from trimtab.stats.sequential import Verdict


def test_an_intermediate_stage_advances_on_its_minimums(
    engine: Engine, store: RolloutStore
) -> None:
    ro = start(store)
    record(engine, 1, 270, seed=1)
    record(engine, 2, 10, seed=2)
    assert not controller(store).step(ro)  # 10 of 20 canary requests
    assert "10 of 20 canary requests" in current(store).last_decision["reasons"][0]  # type: ignore[index]
    record(engine, 2, 20, seed=3)
    assert controller(store).step(current(store))
    moved = current(store)
    assert (moved.stage, moved.status) == (1, "running")
    # latency has not passed (30 canary requests cannot show it), yet the stage advanced:
    # only exposure grows; promotion is what waits for proof
    decision = moved.last_decision
    assert decision is not None and decision["action"] == "advance"
    latency = next(m for m in decision["metrics"] if m["metric"] == "latency_p95")
    assert latency["verdict"] == "inconclusive"


def test_the_final_stage_promotes_only_once_the_required_metrics_pass(
    engine: Engine, store: RolloutStore
) -> None:
    ro = start(store)
    record(engine, 1, 270, seed=1)
    record(engine, 2, 30, seed=2)
    assert controller(store).step(ro)
    record(engine, 1, 30, seed=3)
    record(engine, 2, 30, seed=4)
    ctl = controller(store)
    assert not ctl.step(current(store))
    held = current(store)
    assert held.status == "running" and held.last_decision is not None
    assert any("latency_p95 has not passed" in r for r in held.last_decision["reasons"])
    # the same model on both sides, in volume: latency and cost pass, and it promotes
    record(engine, 1, 3000, seed=5)
    record(engine, 2, 3000, seed=6)
    assert ctl.step(current(store))
    done = current(store)
    assert done.status == "promoted"
    assert done.last_decision is not None
    verdicts = {m["metric"]: m["verdict"] for m in done.last_decision["metrics"]}
    assert verdicts["latency_p95"] == verdicts["cost"] == "pass"
    assert done.last_decision["requests"]["candidate"] == 30 + 30 + 3000


def test_evidence_adds_up_across_stages(engine: Engine, store: RolloutStore) -> None:
    """Neither stage alone shows the error regression; both together do, and it rolls back."""
    ro = start(store)
    record(engine, 1, 1800, errors=18, seed=1)
    record(engine, 2, 200, errors=7, seed=2)
    ctl = controller(store)
    assert ctl.step(ro)  # advanced: no regression yet
    first = current(store)
    assert first.stage == 1
    record(engine, 1, 800, errors=8, seed=3)
    record(engine, 2, 800, errors=20, seed=4)
    stable, candidate = ctl.windows(current(store))
    assert [a.n for a in stable] == [1800, 800] and [a.n for a in candidate] == [200, 800]
    for window in range(2):
        alone = analyze(stable[window], candidate[window])
        assert alone[0].metric == "error_rate" and alone[0].verdict is not Verdict.REGRESSION
    assert ctl.step(current(store))
    done = current(store)
    assert done.status == "rolled_back"
    assert done.last_decision is not None
    assert any("error_rate regressed" in r for r in done.last_decision["reasons"])
    assert done.last_decision["requests"] == {
        "stable": 2600, "candidate": 1000, "stage_stable": 800, "stage_candidate": 800,
    }  # fmt: skip


def test_a_settled_window_is_read_once(engine: Engine, store: RolloutStore) -> None:
    clock = Clock()
    ctl = controller(store, clock)
    ro = start(store)
    record(engine, 1, 100, seed=1)
    record(engine, 2, 20, seed=2)
    assert ctl.step(ro)
    ro = current(store)
    # a request of the first stage recorded late (the writer is asynchronous) still counts
    late = ro.windows()[0][1]
    assert late is not None
    record(engine, 2, 1, at=late - timedelta(milliseconds=1), seed=3)
    stable, candidate = ctl.windows(ro)
    assert (stable[0].n, candidate[0].n) == (100, 21)
    # once the window has settled it is kept: what is recorded after is not read again
    clock.offset = SETTLE_S + 1
    ctl.windows(ro)
    record(engine, 2, 5, at=late - timedelta(milliseconds=1), seed=4)
    stable, candidate = ctl.windows(ro)
    assert candidate[0].n == 21
    assert isinstance(candidate[1], ArmStats) and candidate[1].n == 0


def test_a_candidate_that_refuses_more_is_rolled_back(engine: Engine, store: RolloutStore) -> None:
    ro = start(store)
    record(engine, 1, 1800, refusals=18, seed=1)
    record(engine, 2, 200, refusals=20, seed=2)
    assert controller(store).step(ro)
    done = current(store)
    assert done.status == "rolled_back" and done.last_decision is not None
    assert any("refusal_rate regressed" in r for r in done.last_decision["reasons"])
    refusal = next(m for m in done.last_decision["metrics"] if m["metric"] == "refusal_rate")
    assert (refusal["stable_value"], refusal["candidate_value"]) == (0.01, 0.1)


def test_a_paused_rollout_is_still_rolled_back_on_a_regression(
    engine: Engine, store: RolloutStore
) -> None:
    """The route table serves the candidate while paused: the controller keeps judging it."""
    ro = start(store)
    assert store.set_paused(ro, True, Actor("key_ml", "ml@acme", "acme"), "look at it first")
    record(engine, 1, 1800, errors=18, seed=1)
    record(engine, 2, 200, errors=40, seed=2)  # 20 % errors against 1 %
    paused = current(store)
    assert paused.status == "paused"
    assert controller(store).step(paused)
    done = current(store)
    assert done.status == "rolled_back"
    assert any("error_rate regressed" in r for r in (done.last_decision or {})["reasons"])


def test_a_paused_healthy_rollout_is_watched_but_not_advanced(
    engine: Engine, store: RolloutStore
) -> None:
    ro = start(store)
    assert store.set_paused(ro, True, Actor("key_ml", "ml@acme", "acme"), "hold")
    record(engine, 1, 1800, seed=1)
    record(engine, 2, 200, seed=2)
    paused = current(store)
    assert not controller(store).step(paused)
    after = current(store)
    assert (after.status, after.stage) == ("paused", 0)
    assert after.last_decision is not None and after.last_decision["action"] == "paused"
    # running, the same evidence advances it
    assert store.set_paused(after, False, Actor("key_ml", "ml@acme", "acme"), "go on")
    assert controller(store).step(current(store))
    assert current(store).stage == 1


async def test_the_tick_judges_paused_rollouts(engine: Engine, store: RolloutStore) -> None:
    ro = start(store)
    assert store.set_paused(ro, True, Actor("key_ml", "ml@acme", "acme"), "hold")
    record(engine, 1, 1800, errors=18, seed=1)
    record(engine, 2, 200, errors=40, seed=2)
    assert await controller(store).tick() == 1
    assert current(store).status == "rolled_back"


def test_more_errors_not_yet_a_regression_are_not_promoted(
    engine: Engine, store: RolloutStore
) -> None:
    """Latency and cost pass, the errors rose 1 % -> 1.5 % (too few to roll back): before,
    that promoted; now it holds, and the decision says what the error rate lacks."""
    ro = start(store)
    record(engine, 1, 270, seed=1)
    record(engine, 2, 30, seed=2)
    assert controller(store).step(ro)  # 10 % -> 50 %
    record(engine, 1, 4000, errors=40, seed=5)
    record(engine, 2, 4000, errors=60, seed=6)
    assert not controller(store).step(current(store))
    held = current(store)
    assert held.status == "running" and held.last_decision is not None
    verdicts = {m["metric"]: m["verdict"] for m in held.last_decision["metrics"]}
    assert verdicts["latency_p95"] == verdicts["cost"] == "pass"
    assert verdicts["error_rate"] == "inconclusive"
    (why,) = [r for r in held.last_decision["reasons"] if r.startswith("error_rate")]
    # the route is risk tier 0: the default margin of 0.4 points, doubled (TIER_SCALE)
    margin = ERROR_MARGIN * TIER_SCALE[0]
    assert "not shown within its margin" in why and f"margin {margin:g}" in why
    err = next(m for m in held.last_decision["metrics"] if m["metric"] == "error_rate")
    assert err["required"] and err["estimate_kind"] == "difference"
    assert err["lower"] < err["estimate"] < err["upper"] and err["margin"] == margin
    assert err["rollback"]["estimate_kind"] == "ratio"


def test_one_error_prone_user_on_the_candidate_is_not_a_regression_of_the_version(
    engine: Engine, store: RolloutStore
) -> None:
    """Sticky assignment: a heavy user with many errors lands on the candidate. Counted
    request by request the candidate's errors tripled (a regression, before item 4); at the
    unit of assignment it is one user, and the design effect says so."""
    ro = start(store)
    for i in range(60):
        record(engine, 1, 90, errors=1 if i % 2 else 0, seed=i, user=f"s{i}")
    record(engine, 2, 300, errors=15, seed=100, user="heavy")
    for i in range(30):
        record(engine, 2, 10, errors=1 if i % 10 == 0 else 0, seed=200 + i, user=f"c{i}")
    stable, candidate = controller(store).windows(ro)
    naive = analyze([ArmStats(n=a.n, errors=a.errors) for a in stable],
                    [ArmStats(n=a.n, errors=a.errors) for a in candidate])  # fmt: skip
    assert naive[0].metric == "error_rate" and naive[0].verdict is Verdict.REGRESSION
    controller(store).step(ro)
    held = current(store)  # not rolled back: the stage advanced on its minimums
    assert held.status == "running" and held.last_decision is not None
    assert held.last_decision["action"] == "advance"
    err = next(m for m in held.last_decision["metrics"] if m["metric"] == "error_rate")
    assert err["verdict"] != "regression"
    assert "adjusted" not in err["note"]  # the plan does not adjust for the day before
    d = float(err["note"].rsplit("design effect ", 1)[1].split(" ", 1)[0])
    assert "the regression test's" in err["note"]  # its own, against each arm, widened
    assert d > 5
    units = candidate[0].units
    assert units is not None and units.keys[0] == "user:heavy" and units.n[0] == 300
    assert units.rest_n == 0 and len(units.keys) == 31


def test_users_own_error_rates_the_day_before_adjust_the_error_test(
    engine: Engine, store: RolloutStore
) -> None:
    """The heavy, error-prone user erred as often the day before the rollout: its errors on
    the candidate are what was expected of it, the design effect left is smaller than
    without the day before, and the decision says what it adjusted for."""
    adjusted = PLAN.model_copy(update={"adjust_for_history": True})
    ro = store.start(KEY, 2, "test", adjusted, Actor("key_ml", "ml@acme", "acme"), "try v2")
    day_before = ro.started_at - timedelta(hours=3)
    stable_users = [f"s{i}" for i in range(60)]
    for i, user in enumerate(stable_users):
        record(engine, 1, 90, errors=1 if i % 2 else 0, seed=i, user=user, at=day_before)
    record(engine, 1, 300, errors=15, seed=300, user="heavy", at=day_before)
    record(engine, 1, 50, errors=5, seed=301, user="old", at=ro.started_at - timedelta(days=2))
    for i, user in enumerate(stable_users):
        record(engine, 1, 90, errors=1 if i % 2 else 0, seed=400 + i, user=user)
    record(engine, 2, 300, errors=15, seed=100, user="heavy")
    for i in range(30):
        record(engine, 2, 10, errors=1 if i % 10 == 0 else 0, seed=200 + i, user=f"c{i}")
    ctl = controller(store)
    before = ctl.before(ro)
    assert len(before.keys) == 61 and "user:old" not in before.keys  # one day, not two
    assert before.n[before.keys.index("user:heavy")] == 300
    stable, candidate = ctl.windows(ro)
    plain = analyze(stable, candidate, ro.plan.specs())
    ctl.step(ro)
    decision = current(store).last_decision
    assert decision is not None and decision["action"] != "rollback"
    err = next(m for m in decision["metrics"] if m["metric"] == "error_rate")
    assert "adjusted for 61 users' rates before the rollout" in err["note"]
    # CUPED's coefficient, estimated from the 61 users seen on both days
    theta = float(err["note"].split("CUPED, theta ")[1].split(" from 61 users")[0])
    assert 0.0 < theta <= 1.0
    assert err["n_candidate"] == 600 and err["n_stable"] == 5400  # requests, not exposures
    d_adjusted = float(err["note"].split("design effect ")[1].split(";")[0].split(" ")[0])
    d_plain = float(plain[0].note.rsplit("design effect ", 1)[1].split(" ")[0])
    assert 1.0 <= d_adjusted < d_plain


def test_a_plan_that_promotes_early_promotes_from_the_stage_where_the_evidence_is_in(
    engine: Engine, store: RolloutStore
) -> None:
    stages = [Stage(percent=p, min_duration_s=0, min_canary_requests=20) for p in (10, 25, 50)]
    early = Plan(stages=[*stages, Stage(percent=100)], promote_early=True)
    ro = store.start(KEY, 2, "early", early, Actor("key_ml", "ml@acme", "acme"), "try v2")
    record(engine, 1, 300, seed=1)
    record(engine, 2, 30, seed=2)
    ctl = controller(store)
    assert ctl.step(ro)  # 30 canary requests show nothing yet: the stage advances
    assert current(store).stage == 1
    record(engine, 1, 3000, seed=3)
    record(engine, 2, 3000, seed=4)
    assert ctl.step(current(store))
    done = current(store)
    # promoted from the 25 % stage on the evidence, without the 50 % one
    assert done.status == "promoted" and done.stage == 1
    assert done.last_decision is not None
    assert done.last_decision["reasons"] == ["all required metrics passed; stage minimums met"]


def test_a_rollout_stores_the_rules_of_its_routes_risk_tier(store: RolloutStore) -> None:
    ro = start(store)  # the test route is risk tier 0
    specs = {s.name: s for s in ro.plan.specs()}
    assert specs["error_rate"].pass_margin.absolute == ERROR_MARGIN * TIER_SCALE[0]
    assert ro.view()["metrics"]["cost"] == {"tolerance": 0.05 * TIER_SCALE[0]}


def test_a_rollback_and_a_pause_are_said_to_the_alert_pipeline(
    engine: Engine, store: RolloutStore
) -> None:
    said: list[Signal] = []
    clock = Clock()

    async def nothing() -> None:
        return None

    ctl = RolloutController(store, nothing, clock=clock, signals=said.append)
    ro = start(store)
    record(engine, 1, 1800, refusals=18, seed=1)
    record(engine, 2, 200, refusals=20, seed=2)
    assert ctl.step(ro)
    (rollback,) = said
    assert rollback.source == "canary_rollback" and rollback.severity == "ticket"
    assert rollback.firing and rollback.dedup_key == f"canary_rollback/{ro.id}/rollback"
    assert rollback.labels == {"route": ROUTE, "version": "v2", "rollout": ro.id, "tenant": "acme"}
    assert "v2 rolled back at 10 %" in rollback.summary
    assert "refusal_rate regressed" in rollback.summary
    assert rollback.expires_at is not None and rollback.expires_at > rollback.at
    # a healthy rollout that cannot decide pauses for a human: said too, once
    said.clear()
    again = store.start(KEY, 2, "test", PLAN, Actor("key_ml", "ml@acme", "acme"), "retry")
    record(engine, 1, 100, seed=3)
    record(engine, 2, 10, seed=4)
    clock.offset = PLAN.stages[0].max_duration_s + 1
    assert ctl.step(again)
    assert current(store).status == "paused"
    (pause,) = said
    assert pause.dedup_key == f"canary_rollback/{again.id}/pause"
    assert "paused for a human" in pause.summary and "inconclusive after" in pause.summary
    assert not ctl.step(current(store)) and len(said) == 1  # watched, not said again


def test_a_candidate_that_trips_guardrails_more_is_rolled_back(
    engine: Engine, store: RolloutStore
) -> None:
    ro = start(store)
    record(engine, 1, 1800, fired=90, seed=1)  # 5 %
    record(engine, 2, 200, fired=30, seed=2)  # 15 %: three times as often
    assert controller(store).step(ro)
    done = current(store)
    assert done.status == "rolled_back" and done.last_decision is not None
    assert any("guardrail_rate regressed" in r for r in done.last_decision["reasons"])
    tripped = next(m for m in done.last_decision["metrics"] if m["metric"] == "guardrail_rate")
    assert (tripped["stable_value"], tripped["candidate_value"]) == (0.05, 0.15)


def test_a_candidate_that_trips_guardrails_as_often_is_not_rolled_back(
    engine: Engine, store: RolloutStore
) -> None:
    ro = start(store)
    record(engine, 1, 270, fired=14, seed=1)
    record(engine, 2, 30, fired=2, seed=2)
    ctl = controller(store)
    assert ctl.step(ro)
    record(engine, 1, 3000, fired=150, seed=5)  # 5 % on both sides, in volume
    record(engine, 2, 3000, fired=150, seed=6)
    assert ctl.step(current(store))
    done = current(store)
    assert done.status == "promoted" and done.last_decision is not None
    tripped = next(m for m in done.last_decision["metrics"] if m["metric"] == "guardrail_rate")
    assert tripped["verdict"] != "regression" and not tripped["required"]
    assert tripped["candidate_value"] == 152 / 3030


def test_one_user_tripping_guardrails_on_the_candidate_is_not_a_regression_of_the_version(
    engine: Engine, store: RolloutStore
) -> None:
    """A red-teamer sticky on the candidate trips a check on a fifth of their 300 requests
    (everyone else on about a twentieth): counted request by request the candidate's rate
    tripled; at the unit of assignment it is one user, and the guardrail test takes the
    design effect as the error test does."""
    ro = start(store)
    for i in range(60):
        record(engine, 1, 90, fired=5 if i % 2 else 4, seed=i, user=f"s{i}")
    record(engine, 2, 300, fired=60, seed=100, user="red-team")
    for i in range(30):
        record(engine, 2, 10, fired=1 if i % 2 else 0, seed=200 + i, user=f"c{i}")
    stable, candidate = controller(store).windows(ro)

    def bare(arm: list[ArmStats]) -> list[ArmStats]:
        return [ArmStats(n=a.n, guardrail_fired=a.guardrail_fired) for a in arm]

    naive = analyze(bare(stable), bare(candidate))
    tripped = next(m for m in naive if m.metric == "guardrail_rate")
    assert tripped.verdict is Verdict.REGRESSION
    controller(store).step(ro)
    held = current(store)
    assert held.status == "running" and held.last_decision is not None
    tripped_now = next(m for m in held.last_decision["metrics"] if m["metric"] == "guardrail_rate")
    assert tripped_now["verdict"] != "regression"
    assert float(tripped_now["note"].rsplit("design effect ", 1)[1].split(" ")[0]) > 5
    units = candidate[0].units
    assert units is not None and units.keys[0] == "user:red-team"
    assert units.guardrail_fired[0] == 60 and units.rest_guardrail_fired == 0
