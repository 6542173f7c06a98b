"""The simulation's fast subset (``bench/canary_sim.py``, the engine's regression test):
rollouts through the controller's decision path, error rates within their binomial bounds.

The default plan's horizon is four hours of traffic; this runs a shorter plan (10 % then
50 %, then promotion) on the same traffic and the same decision path, 200 rollouts per
case, with a look every 1,000 requests instead of every 100 (fewer looks, less CPU). The
bounds are the binomial 99.9 % quantiles at the target rates, so a correct engine fails
this about once in a thousand runs per assertion; seeds are fixed.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scipy import stats as sps

from trimtab.canary.plans import Plan, Stage

ROLLOUTS = 200
LOOK = 1000  # requests between looks (50 s of traffic): few looks, a few seconds of CPU
FAST = Plan(
    stages=[
        Stage(percent=10, min_duration_s=0, min_canary_requests=100, max_duration_s=1200),
        Stage(percent=50, min_duration_s=0, min_canary_requests=200, max_duration_s=3600),
        Stage(percent=100),
    ]
)


def _sim() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "canary_sim.py"
    spec = importlib.util.spec_from_file_location("canary_sim", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("canary_sim", module)
    spec.loader.exec_module(module)
    return module


def _bound(rate: float, n: int = ROLLOUTS) -> float:
    """The share of ``n`` rollouts that a true ``rate`` exceeds only 0.1 % of the time."""
    return float(sps.binom.ppf(0.999, n, rate)) / n


def test_healthy_rollouts_roll_back_at_most_alpha_and_most_promote() -> None:
    sim = _sim()
    sc = sim.Scenario("healthy", plan=FAST, look_requests=LOOK)
    out = sim.simulate(sc, ROLLOUTS, np.random.default_rng(11))
    rolled = float(np.mean(out.action == sim.ROLLBACK))
    assert rolled <= _bound(0.01), rolled
    assert float(np.mean(out.action == sim.PROMOTE)) >= 0.9


def test_error_regressions_are_not_promoted() -> None:
    """+50 % and 2x errors: promoted at most 1 % of the time (before issue 12's item 1,
    "no regression yet" promoted the +50 % one in about a third of rollouts)."""
    sim = _sim()
    for factor, seed in ((1.5, 12), (2.0, 13)):
        sc = sim.Scenario(
            f"errors x{factor}", healthy=False, error_factor=factor, plan=FAST, look_requests=LOOK
        )
        out = sim.simulate(sc, ROLLOUTS, np.random.default_rng(seed))
        promoted = float(np.mean(out.action == sim.PROMOTE))
        assert promoted <= _bound(0.01), (factor, promoted)
    assert float(np.mean(out.action == sim.ROLLBACK)) >= 0.9  # the 2x one


def test_quality_is_judged_on_the_scored_answers_through_the_controllers_path() -> None:
    """A fifth of the answers scored online: a candidate scoring as stable does is rolled
    back by quality_score at most 1 % of the time; one scoring 0.1 lower, nearly always."""
    sim = _sim()
    healthy = sim.Scenario("scored", plan=FAST, look_requests=LOOK, scored_share=0.2)
    out = sim.simulate(healthy, ROLLOUTS, np.random.default_rng(14))
    assert out.by_metric["quality_score"] <= _bound(0.01), out.by_metric
    worse = sim.Scenario(
        "worse", healthy=False, plan=FAST, look_requests=LOOK, scored_share=0.2,
        quality_shift=-0.1,
    )  # fmt: skip
    out = sim.simulate(worse, ROLLOUTS, np.random.default_rng(15))
    assert out.by_metric["quality_score"] >= 0.9, out.by_metric
    assert float(np.mean(out.action == sim.PROMOTE)) <= _bound(0.01)


def test_sticky_users_who_differ_roll_back_a_healthy_candidate_at_most_alpha() -> None:
    """2,000 users, Zipf 1.0 activity, error-proneness varying (Gamma 0.5) and higher for
    the heavy users met first; assigned by bucket as the stages widen: the error test at the
    unit of assignment rolls a healthy candidate back at most 1 % of the time."""
    sim = _sim()
    sc = sim.Scenario(
        "sticky", plan=FAST, look_requests=LOOK, users=2000, zipf=1.0, activity_proneness=0.3
    )
    out = sim.simulate(sc, ROLLOUTS, np.random.default_rng(16))
    assert float(np.mean(out.action == sim.ROLLBACK)) <= _bound(0.01), out.by_metric


def test_every_rollouts_users_err_at_the_scenarios_rate() -> None:
    """However error-prone its few heavy users happen to be, each rollout's users have a
    traffic-weighted mean proneness of 1, so the route errs at the scenario's rate in every
    rollout and a candidate said to sit at an absolute margin sits there in each one."""
    sim = _sim()
    from canary_bench.users import draw_users

    sc = sim.Scenario("sticky", plan=FAST, users=2000, zipf=1.0, activity_proneness=0.3)
    percent = np.array([s.percent for s in FAST.stages]) / 100.0
    us = draw_users(sc, percent, 50, 2, np.random.default_rng(21))
    act = 1.0 / np.arange(1, 2001) ** 1.0
    mean = (us.prone * act).sum(axis=1) / act.sum()
    assert np.allclose(mean, 1.0)
    heavy = us.prone[:, :20].mean() / us.prone[:, -1000:].mean()
    assert heavy > 3.0  # the heavy users still err more: 2,000^0.3 over the tail


def test_the_pass_side_alone_at_its_margin_promotes_at_most_alpha_pass() -> None:
    """With the error test's regression side off (alpha 1e-300) every promotion is the pass
    test's: adjusted sticky users whose heavy users err more, a candidate at the 0.4-point
    margin (1 % -> 1.4 %) is promoted at most ``alpha_pass`` (5 %) of the time, while a
    healthy one passes in most rollouts (the test has power, so the bound says something)."""
    sim = _sim()
    from trimtab.canary.metrics import Metric

    plan = FAST.model_copy(update={"adjust_for_history": True})
    specs = tuple(
        replace(s, alpha=1e-300) if s.metric is Metric.ERROR_RATE else s for s in plan.specs()
    )
    common = {"plan": plan, "look_requests": LOOK, "users": 2000, "zipf": 1.0,
              "activity_proneness": 0.3, "pre_period_s": 86_400}  # fmt: skip
    margin = sim.Scenario("at the margin", healthy=False, error_factor=1.4, **common)
    out = sim.simulate(margin, ROLLOUTS, np.random.default_rng(20), specs)
    assert float(np.mean(out.action == sim.PROMOTE)) <= _bound(0.05), out.by_metric
    healthy = sim.Scenario("healthy", **common)
    out = sim.simulate(healthy, ROLLOUTS, np.random.default_rng(22), specs)
    assert float(np.mean(out.action == sim.PROMOTE)) >= 0.8


def test_sticky_users_slower_and_costlier_adjusted_for_the_day_before() -> None:
    """The same users, each also slower and costlier on both versions (log-normal, sd 0.25,
    growing with activity), with the day before known: latency and cost adjusted for each
    user's own (CUPED) roll a healthy candidate back at most 1 % of the time and promote
    most, and a +25 % cost regression is never promoted (100 rollouts each: ~13 s of CPU)."""
    sim = _sim()
    common = {"plan": FAST.model_copy(update={"adjust_for_history": True}),
              "look_requests": LOOK, "users": 2000, "zipf": 1.0, "pre_period_s": 86_400,
              **sim.SLOWER}  # fmt: skip
    n = ROLLOUTS // 2
    out = sim.simulate(sim.Scenario("sticky, slower", **common), n, np.random.default_rng(17))
    assert float(np.mean(out.action == sim.ROLLBACK)) <= _bound(0.01, n), out.by_metric
    assert float(np.mean(out.action == sim.PROMOTE)) >= 0.8
    costlier = sim.Scenario("cost +25 %", healthy=False, cost_factor=1.25, **common)
    out = sim.simulate(costlier, n, np.random.default_rng(18))
    assert float(np.mean(out.action == sim.PROMOTE)) <= _bound(0.01, n), out.by_metric


def test_the_rules_for_taking_the_design_effect() -> None:
    """bench/canary_pass_calibration.py's rules: the running maximum never takes less than an
    earlier look (an earlier "no evidence yet" is no estimate), the t correction widens by
    (t_df / z)^2 at 1 % and vanishes with many units, and every rule runs the loop."""
    sim = _sim()
    from canary_bench.clustering import RULES, _running_max, _t_factor

    from trimtab.stats.clustered import NO_EVIDENCE

    before = {"error_rate": np.array([3.0, NO_EVIDENCE, 2.0])}
    now = {"error_rate": np.array([1.5, 1.2, NO_EVIDENCE])}
    kept = _running_max(now, before)["error_rate"]
    assert kept.tolist() == [3.0, 1.2, NO_EVIDENCE]
    want = (sps.t.ppf(0.99, 10) / sps.norm.ppf(0.99)) ** 2
    assert float(_t_factor(np.array(10.0))) == np.float64(want) and 1.41 < want < 1.42
    assert float(_t_factor(np.array(1e6))) < 1.0001
    sc = sim.Scenario("sticky", plan=FAST, look_requests=LOOK, users=2000, zipf=1.0)
    for rule in RULES:
        out = sim.simulate(sc, 10, np.random.default_rng(19), rule=rule)
        assert out.action.size == 10
    with pytest.raises(ValueError, match="unknown rule"):
        sim.simulate(sc, 2, np.random.default_rng(19), rule="smallest")
