"""The forecast a rollout gets at its start: each stage's time on the route's traffic, and
whether the plan can decide within its durations (issue 12, item 6)."""

from __future__ import annotations

import numpy as np
import pytest

from trimtab.canary.arm_stats import ArmStats, LatencySamples
from trimtab.canary.forecast import forecast
from trimtab.canary.plans import DEFAULT_PLAN, LOW_TRAFFIC_PLAN, Plan, Stage

HOUR, DAY = 3600.0, 86_400.0


def baseline(per_s: float, seconds: float, seed: int = 1, errors: float = 0.01) -> ArmStats:
    """A route's stable traffic: 1 % errors, log-normal latency (median 800 ms) and cost."""
    rng = np.random.default_rng(seed)
    n = round(per_s * seconds)
    cost = np.exp(rng.normal(np.log(0.002) - 0.32, 0.8, n))
    feedback = n // 5
    return ArmStats(
        n=n, errors=round(errors * n), feedback_n=feedback, negative_feedback=feedback // 10,
        cost_sum=float(cost.sum()), cost_sq_sum=float((cost * cost).sum()),
        latency=LatencySamples.of(np.exp(rng.normal(np.log(800.0), 0.6, n))),
    )  # fmt: skip


def test_a_busy_route_moves_through_every_stage_on_its_minimums_and_promotes() -> None:
    f = forecast(DEFAULT_PLAN, baseline(20, HOUR), HOUR)
    assert f.requests_per_s == pytest.approx(20)
    assert [s.outcome for s in f.stages] == ["advance", "advance", "advance", "promote"]
    first = f.stages[0]
    # 1 % of 20/s is 0.2 canary requests/s: its 100 take 500 s, more than its 300 s minimum
    assert first.seconds == pytest.approx(500) and first.canary_requests == pytest.approx(100)
    assert f.warnings == () and f.waiting_on == ()
    minimums = sum(s.seconds for s in f.stages[:3]) + DEFAULT_PLAN.stages[3].min_duration_s
    assert f.promote_after_s is not None and f.promote_after_s >= minimums
    assert f.promote_canary_requests is not None and f.promote_canary_requests >= 9_400
    view = f.view()
    assert view["baseline"] == {"requests": 72_000, "seconds": HOUR}
    assert view["stages"][0]["canary_requests"] == 100 and "expected counts" in view["method"]


def test_a_plan_whose_first_stage_cannot_meet_its_minimums_says_so() -> None:
    f = forecast(DEFAULT_PLAN, baseline(2 / 60, DAY), DAY)
    (stage,) = f.stages
    assert stage.outcome == "pause" and f.promote_after_s is None
    (warning,) = f.warnings
    assert warning.startswith("stage 1 (1 %) cannot meet its minimums")
    assert "100 canary requests take ~3.5 days" in warning and "maximum of 60 min" in warning


def test_the_low_traffic_plan_decides_on_the_same_route() -> None:
    f = forecast(LOW_TRAFFIC_PLAN, baseline(2 / 60, DAY), DAY, plan_name="low-traffic")
    assert f.warnings == ()
    assert f.stages[-1].outcome == "promote" and f.promote_after_s is not None
    horizon = sum(s.max_duration_s for s in LOW_TRAFFIC_PLAN.stages[:-1])
    assert f.promote_after_s < horizon
    assert f.view()["plan"] == "low-traffic"


def test_a_final_stage_too_short_to_show_the_required_metrics_pauses() -> None:
    plan = Plan(
        stages=[
            Stage(percent=50, min_duration_s=60, min_canary_requests=10, max_duration_s=600),
            Stage(percent=100),
        ]
    )
    f = forecast(plan, baseline(2, HOUR), HOUR)
    (stage,) = f.stages
    assert stage.outcome == "pause" and stage.seconds == 600
    assert any(w.startswith("error_rate (~") and "more canary requests" in w for w in f.waiting_on)
    (warning,) = f.warnings
    assert "not expected to decide within its durations" in warning


def test_a_plan_that_promotes_early_promotes_before_its_last_stage() -> None:
    stages = [
        Stage(percent=p, min_duration_s=60, min_canary_requests=50, max_duration_s=7200)
        for p in (5, 25, 50)
    ]
    plan = Plan(stages=[*stages, Stage(percent=100)], promote_early=True)
    f = forecast(plan, baseline(20, HOUR), HOUR)
    assert f.stages[-1].outcome == "promote" and len(f.stages) < 3
    late = forecast(plan.model_copy(update={"promote_early": False}), baseline(20, HOUR), HOUR)
    assert late.promote_canary_requests is not None and f.promote_canary_requests is not None
    assert f.promote_canary_requests < late.promote_canary_requests


def test_no_traffic_is_said_plainly() -> None:
    f = forecast(DEFAULT_PLAN, ArmStats(n=0), DAY)
    assert f.stages == () and f.promote_after_s is None
    (warning,) = f.warnings
    assert "no traffic in the last 24.0 h" in warning
