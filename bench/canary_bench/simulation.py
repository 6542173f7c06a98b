"""The simulation loop: rollouts of a scenario through the controller's decision path, one
look of every rollout at a time (numpy arrays with a row per rollout)."""

from __future__ import annotations

import math

import numpy as np

from canary_bench.clustering import Clustering
from canary_bench.judgement import (
    ROLLED_BACK,
    RUNNING,
    Progress,
    Schedule,
    apply_stage_rule,
    judge,
    latency_tails,
)
from canary_bench.outcome import PAUSE, PROMOTE, ROLLBACK, UNDECIDED, Outcome
from canary_bench.route import LATENCY_MEDIAN_MS, LOOK_S
from canary_bench.scenarios import Scenario
from canary_bench.sketch import Array, Histograms
from canary_bench.traffic import arm_counters, count, draw_requests
from canary_bench.users import count_users, draw_users, pick
from trimtab.canary.analysis import ArmArrays
from trimtab.canary.metrics import Metric, MetricSpec


def simulate(
    sc: Scenario,
    rollouts: int,
    rng: np.random.Generator,
    specs: tuple[MetricSpec, ...] | None = None,
    horizon_s: float | None = None,
    rule: str = "estimated",
) -> Outcome:
    """Run ``rollouts`` rollouts of ``sc`` through the controller's decision path, judged
    by ``specs`` (default: the plan's own); with sticky users, each look's design effect
    taken by ``rule`` (``clustering.RULES``; the controller's is ``estimated``)."""
    plan = sc.plan
    if specs is None:
        specs = plan.specs()
    stages = [s for s in plan.stages]
    n_st = len(stages)
    w = max(1, n_st - 1)  # the 100 % stage never runs: the step to it promotes
    r = rollouts
    rows = np.arange(r)
    if horizon_s is None:
        horizon_s = sum(s.max_duration_s for s in stages[:-1])
    m = sc.look_requests or round(sc.rate * LOOK_S)
    look_s = m / sc.rate
    looks = math.ceil(horizon_s / look_s)
    schedule = Schedule(
        percent=np.array([s.percent for s in stages]) / 100.0,
        min_dur=np.array([s.min_duration_s for s in stages]),
        min_can=np.array([s.min_canary_requests for s in stages], dtype=float),
        max_dur=np.array([s.max_duration_s for s in stages]),
        final=np.array(
            [i + 1 == n_st or stages[i + 1].percent >= 100 for i in range(n_st)], dtype=bool
        ),
    )
    arms = {"s": arm_counters(r, w), "c": arm_counters(r, w)}
    hist = {"s": Histograms(r, w), "c": Histograms(r, w)}
    progress = Progress.start(r, specs)
    lat_specs = [s for s in specs if s.metric is Metric.LATENCY]
    us = draw_users(sc, schedule.percent, r, w, rng) if sc.users > 0 else None
    # the error test's alpha, for its regression side's widening; a side switched off
    # (canary_pass_calibration --pass-only: alpha 1e-300) stays off at the smallest it takes
    errors = [max(s.alpha, 1e-6) for s in specs if s.metric is Metric.ERROR_RATE]
    clustering = Clustering(rule=rule, alpha=errors[0] if errors else 0.01)
    for look in range(looks):
        now = (look + 1) * look_s
        live = progress.status < ROLLED_BACK
        if not live.any():
            break
        share = schedule.percent[progress.stage]
        frac = now / horizon_s
        p_err = sc.error_rate
        if sc.error_drift_to is not None:
            p_err = sc.error_rate + (sc.error_drift_to - sc.error_rate) * frac
        median = LATENCY_MEDIAN_MS * (1.0 + sc.diurnal * math.sin(2 * math.pi * now / 14_400))
        # --- traffic of this look: m requests per rollout
        if us is not None:
            picked = pick(us, share, rows, m, rng)
            q = draw_requests(sc, picked.on_c, p_err * picked.prone, median, picked.slow, rng)
        else:
            on_c = rng.random((r, m)) < share[:, None]
            q = draw_requests(sc, on_c, np.full((r, m), p_err), median, None, rng)
        col = np.minimum(progress.stage, w - 1)
        count(arms, hist, q, rows, col, live)
        if us is not None:
            count_users(us, picked, q.err, q.lat, q.cost, rows, col, live)
            clustering.update(us, look, sc.cluster_means, lat_specs)
        # --- the controller's judgement
        refs, tails_s, tails_c = latency_tails(hist, arms["s"]["latency_n"], lat_specs, rows)
        s_arr = ArmArrays(**arms["s"], tails=tails_s)
        c_arr = ArmArrays(**arms["c"], tails=tails_c)
        lat_n: dict[str, Array] = {}  # a latency test's requests as exposures (R, 2, W)
        if us is not None:
            s_arr, c_arr, lat_n = clustering.adjusted_arms(us, s_arr, c_arr, refs, lat_specs)
        regressed, required_ok = judge(
            specs, s_arr, c_arr, clustering.dispersion, clustering.exposure, lat_n, live, progress,
            clustering.regression,
        )  # fmt: skip
        apply_stage_rule(
            progress,
            schedule,
            plan.promote_early,
            arms["c"]["n"],
            col,
            live,
            regressed,
            required_ok,
            now,
        )
    names = np.array([UNDECIDED, PAUSE, ROLLBACK, PROMOTE])  # by status, RUNNING first
    action = names[progress.status]
    action = np.where((progress.status == RUNNING), UNDECIDED, action)
    by_metric = {k: float(v.mean()) for k, v in progress.rolled_by.items()}
    return Outcome(
        action=action,
        canary_at=progress.canary_at,
        decided_s=progress.decided_s,
        looks=looks,
        by_metric=by_metric,
    )
