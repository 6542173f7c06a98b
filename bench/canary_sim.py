"""Canary analysis, simulated through the controller's own decision path.

Each simulated rollout runs a plan's stages (the default plan: 1 -> 5 -> 25 -> 50 -> 100 %)
over simulated traffic, and at every look — every ``LOOK_S`` seconds of route traffic, as
the controller's tick — judges it exactly as ``trimtab.rollouts.controller`` does: one
window per stage so far, the latency tests against stable's quantile pooled over those
windows (``analysis.pooled_quantile`` on DDSketch-like buckets of 2 % width, counted the
way ``SketchLatency`` counts them), every metric's verdict from ``analysis.evidence`` (the
function ``analyze()`` takes its verdicts from), then the controller's stage rule: any
regression rolls back; a stage past its minimums advances, or promotes when the next step
is 100 % and every required metric has passed; a stage still waiting at its maximum pauses,
and a paused rollout is still judged (a regression rolls it back) until the horizon. With
sticky users the error, latency and cost tests get the design effect of the rollout's users
(``stats.clustered.design_effect``: of the errors, the log latency and the cost per user),
as the controller does from the per-user counts and sums.
Where a scenario scores a share of answers online, each scored answer gets a score in
[0, 1] (Beta, mean 0.8, or pass/fail) and ``quality_score`` is judged on them.

Rollouts are vectorised with numpy: every look of every rollout is one row of an array.

    .venv/bin/python bench/canary_sim.py                      # 1,000 rollouts per scenario
    .venv/bin/python bench/canary_sim.py --rollouts 200       # quicker
    .venv/bin/python bench/canary_sim.py --only healthy --seed 2
    .venv/bin/python bench/canary_sim.py --before             # errors/refusals not required

Every figure is printed with the seed and the number of rollouts it comes from, and a
Wilson 95 % interval for each share. Writes Markdown to stdout and to
``bench/results/canary_sim.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from trimtab.canary.analysis import ArmArrays, evidence, pooled_quantile, verdicts
from trimtab.canary.metrics import DEFAULT_METRICS, Metric, MetricSpec, latency_thresholds
from trimtab.canary.plans import DEFAULT_PLAN, LOW_TRAFFIC_PLAN, MetricRule, Plan, Stage
from trimtab.stats.clustered import (
    adjusted_proneness,
    design_effect,
    exposures,
    history_coefficient,
    proneness,
)
from trimtab.stats.cuped import adjusted_sums, mean_coefficient, tail_offsets
from trimtab.stats.proportions import wilson_interval

Array = npt.NDArray[np.float64]
RESULTS = Path(__file__).resolve().parent / "results"

# The simulated route (stable's behaviour).
RATE = 20.0  # requests per second on the route
LOOK_S = 5.0  # the controller's check interval
ERROR_RATE = 0.01
LATENCY_MEDIAN_MS = 800.0
LATENCY_SIGMA = 0.6  # log-normal: heavy-tailed, p95 = 2.7 x median
COST_MEAN = 0.002  # USD per request
COST_SIGMA = 0.8  # log-normal; coefficient of variation 0.95
FEEDBACK_SHARE = 0.2
NEGATIVE_RATE = 0.10
GAMMA = 1.02  # latency bucket width (the sketch keeps 1 % relative accuracy: 2 % buckets)
KEY_LO, KEY_HI = int(math.log(5.0) / math.log(GAMMA)), int(math.log(2e5) / math.log(GAMMA))
BUCKETS = KEY_HI - KEY_LO + 1
QUALITY_MEAN = 0.8  # stable's mean online score
QUALITY_CONCENTRATION = 4.0  # Beta(0.8 k, 0.2 k): sd 0.18 (a pass/fail scorer's is 0.4)


@dataclass(frozen=True)
class Scenario:
    name: str
    healthy: bool = True
    error_rate: float = ERROR_RATE  # stable's, at the start
    error_factor: float = 1.0  # the candidate's error rate over stable's
    error_drift_to: float | None = None  # both arms' error rate at the horizon
    latency_factor: float = 1.0  # the candidate's latency, scaled
    diurnal: float = 0.0  # both arms' median latency swings by this share (4 h period)
    cost_factor: float = 1.0
    plan: Plan = DEFAULT_PLAN
    rate: float = RATE
    look_requests: int | None = None  # requests between looks (default: LOOK_S of traffic)
    users: int = 0  # sticky users (0: each request assigned on its own)
    zipf: float = 1.0  # users' activity ~ 1 / rank^zipf
    proneness_shape: float = 0.5  # users' error multipliers ~ Gamma(shape, 1 / shape)
    # users' error multipliers also grow with their activity, as activity^this (traffic-
    # weighted mean 1): heavy users, met first, err more (0: unrelated)
    activity_proneness: float = 0.0
    # the day before the rollout, each user's requests and errors at its own rate, known to
    # the error test (CUPED's covariate; 0: not used); `persistence` of a user's
    # error-proneness from that day into the rollout (1: the same; 0: drawn afresh)
    pre_period_s: float = 0.0
    persistence: float = 1.0
    # sticky users' latency and cost multipliers (one per user, on both arms: a user with
    # long prompts is slow and costly on either version): log-normal with this sd ...
    user_sigma: float = 0.0
    # ... and growing with activity as activity^this (heavy users slower and costlier)
    activity_slowness: float = 0.0
    # latency and cost judged at the unit of assignment with sticky users (False: per
    # request, as before issue 12's item 4 reached them)
    cluster_means: bool = True
    scored_share: float = 0.0  # answers scored online (0: none, quality_score never runs)
    quality_shift: float = 0.0  # the candidate's mean score minus stable's
    pass_fail: bool = False  # scores are 0 or 1 (a pass/fail scorer), not Beta
    max_rollouts: int | None = None  # the costlier scenarios run fewer
    tags: tuple[str, ...] = field(default_factory=tuple)


ONE_TO_99 = Plan(
    stages=[
        Stage(percent=1, min_duration_s=300, min_canary_requests=100, max_duration_s=14_400),
        Stage(percent=100),
    ]
)
EVERY_REQUEST = Plan(
    stages=[
        Stage(percent=50, min_duration_s=0, min_canary_requests=100, max_duration_s=4_000),
        Stage(percent=100),
    ]
)

TIER_1 = DEFAULT_PLAN.for_tier(1)
TIER_1_EARLY = TIER_1.model_copy(update={"promote_early": True})
TWO_A_MINUTE = 2.0 / 60.0
FIRST_SEEN = DEFAULT_PLAN.model_copy(update={"assignment": "first_seen"})
ADJUSTED = DEFAULT_PLAN.model_copy(update={"adjust_for_history": True})
QUALITY_REQUIRED = DEFAULT_PLAN.model_copy(
    update={"metrics": {"quality_score": MetricRule(required=True)}}
)


def _sticky(name: str, **changes: Any) -> Scenario:
    """A scenario of 2,000 sticky users at Zipf 1.0 (tagged "sticky", 300 rollouts at most)."""
    return Scenario(name, users=2000, zipf=1.0, max_rollouts=300, tags=("sticky",), **changes)


HEAVY_ERR_MORE: dict[str, Any] = {"activity_proneness": 0.3}  # the heavy users err more
# ... and the error test adjusted for each user's rate in the day before (CUPED, theta
# estimated at every fourth look from the rollout's users, as the controller does)
ADJUST: dict[str, Any] = {**HEAVY_ERR_MORE, "pre_period_s": 86_400, "plan": ADJUSTED}

# heavy users slower and costlier, on both arms
SLOWER: dict[str, Any] = {"user_sigma": 0.25, "activity_slowness": 0.05}
SLOWER_NAME = "2,000 sticky users, Zipf 1.0, heavy users slower and costlier"
# ... with each user's day before known: the error, latency and cost tests adjusted for it
# (CUPED: the users' rates, and their mean log latency and cost, theta estimated)
SLOWER_ADJUSTED: dict[str, Any] = {**SLOWER, "pre_period_s": 86_400, "plan": ADJUSTED}

SCENARIOS = (
    Scenario("healthy, 1 % errors, log-normal latency (sigma 0.6)", tags=("fast",)),
    Scenario("healthy, 0.5 % errors", error_rate=0.005),
    Scenario("healthy, 2 % errors", error_rate=0.02),
    Scenario("healthy, errors drifting 1 % -> 3 % in both arms", error_drift_to=0.03),
    Scenario("healthy, diurnal latency (median +/- 30 %)", diurnal=0.3),
    Scenario("healthy, a 1:99 split throughout", plan=ONE_TO_99),
    Scenario(
        "healthy, a look after every request (50 %, 1 request/s)",
        plan=EVERY_REQUEST,
        rate=1.0,
        look_requests=1,
    ),
    Scenario(
        "healthy, 2,000 sticky users, Zipf 0.7, error-proneness varies",
        users=2000,
        zipf=0.7,
        max_rollouts=300,
    ),
    Scenario(
        "healthy, 2,000 sticky users, Zipf 1.0, error-proneness varies",
        users=2000,
        zipf=1.0,
        max_rollouts=300,
    ),
    _sticky("healthy, 2,000 sticky users, Zipf 1.0, heavy users err more", **HEAVY_ERR_MORE),
    _sticky("healthy, 2,000 sticky users, Zipf 1.0, first version kept", plan=FIRST_SEEN),
    _sticky(
        "healthy, 2,000 sticky users, Zipf 1.0, heavy users err more, first version kept",
        plan=FIRST_SEEN,
        **HEAVY_ERR_MORE,
    ),
    _sticky("healthy, 2,000 sticky users, Zipf 1.0, adjusted for the day before", **ADJUST),
    _sticky(
        "healthy, 2,000 sticky users, Zipf 1.0, adjusted, proneness half persistent",
        persistence=0.5,
        **ADJUST,
    ),
    _sticky(
        "errors 1 % -> 2 % (2x), 2,000 sticky users, Zipf 1.0, adjusted",
        healthy=False,
        error_factor=2.0,
        **ADJUST,
    ),
    _sticky(
        "errors 1 % -> 1.5 % (+50 %), 2,000 sticky users, Zipf 1.0, adjusted",
        healthy=False,
        error_factor=1.5,
        **ADJUST,
    ),
    _sticky(
        "errors 1 % -> 2 % (2x), 2,000 sticky users, Zipf 1.0", healthy=False, error_factor=2.0
    ),
    _sticky(f"healthy, {SLOWER_NAME}", **SLOWER),
    _sticky(
        f"healthy, {SLOWER_NAME}, latency and cost judged per request",
        cluster_means=False,
        **SLOWER,
    ),
    _sticky(f"latency +25 %, {SLOWER_NAME}", healthy=False, latency_factor=1.25, **SLOWER),
    _sticky(f"cost +25 %, {SLOWER_NAME}", healthy=False, cost_factor=1.25, **SLOWER),
    _sticky(f"healthy, {SLOWER_NAME}, adjusted for the day before", **SLOWER_ADJUSTED),
    _sticky(
        f"healthy, {SLOWER_NAME}, adjusted, half persistent",
        persistence=0.5,
        **SLOWER_ADJUSTED,
    ),
    _sticky(
        f"latency +25 %, {SLOWER_NAME}, adjusted",
        healthy=False,
        latency_factor=1.25,
        **SLOWER_ADJUSTED,
    ),
    _sticky(
        f"cost +25 %, {SLOWER_NAME}, adjusted", healthy=False, cost_factor=1.25, **SLOWER_ADJUSTED
    ),
    Scenario("healthy, tier 1 (margins x 1.5)", plan=TIER_1, tags=("item2",)),
    Scenario("healthy, tier 1, promote early", plan=TIER_1_EARLY, tags=("item2",)),
    Scenario(
        "healthy, 2 requests/min, default plan",
        rate=TWO_A_MINUTE,
        look_requests=1,
        tags=("item6",),
    ),
    Scenario(
        "healthy, 2 requests/min, low-traffic plan",
        plan=LOW_TRAFFIC_PLAN,
        rate=TWO_A_MINUTE,
        look_requests=1,
        tags=("item6",),
    ),
    Scenario(
        "errors 1 % -> 5 % (5x), 2 requests/min, low-traffic plan",
        healthy=False,
        error_factor=5.0,
        plan=LOW_TRAFFIC_PLAN,
        rate=TWO_A_MINUTE,
        look_requests=1,
        tags=("item6",),
    ),
    Scenario("errors 1 % -> 1.5 % (+50 %)", healthy=False, error_factor=1.5),
    Scenario(
        "errors 1 % -> 1.5 % (+50 %), tier 1, promote early",
        healthy=False,
        error_factor=1.5,
        plan=TIER_1_EARLY,
        tags=("item2",),
    ),
    Scenario(
        "errors 1 % -> 2 % (2x), tier 1, promote early",
        healthy=False,
        error_factor=2.0,
        plan=TIER_1_EARLY,
        tags=("item2",),
    ),
    Scenario("errors 1 % -> 2 % (2x)", healthy=False, error_factor=2.0, tags=("fast",)),
    Scenario("errors 1 % -> 5 % (5x)", healthy=False, error_factor=5.0),
    Scenario("latency +30 % (whole distribution)", healthy=False, latency_factor=1.3),
    Scenario("healthy, 5 % of answers scored online", scored_share=0.05, tags=("quality",)),
    Scenario(
        "healthy, 20 % scored pass/fail, quality required",
        scored_share=0.2,
        pass_fail=True,
        plan=QUALITY_REQUIRED,
        tags=("quality",),
    ),
    Scenario(
        "healthy, 5 % scored, quality required",
        scored_share=0.05,
        plan=QUALITY_REQUIRED,
        tags=("quality",),
    ),
    Scenario(
        "quality 0.80 -> 0.75, 5 % scored",
        healthy=False,
        scored_share=0.05,
        quality_shift=-0.05,
        tags=("quality",),
    ),
    Scenario(
        "quality 0.80 -> 0.78, 5 % scored, quality required",
        healthy=False,
        scored_share=0.05,
        quality_shift=-0.02,
        plan=QUALITY_REQUIRED,
        tags=("quality",),
    ),
    Scenario("cost per request +20 %", healthy=False, cost_factor=1.2),
)

ROLLBACK, PROMOTE, PAUSE, UNDECIDED = "rolled back", "promoted", "paused", "undecided"


@dataclass
class Outcome:
    """Per rollout: how it ended and at how many canary requests (over the rollout)."""

    action: npt.NDArray[np.str_]
    canary_at: Array
    decided_s: Array  # seconds from the start to the decision
    looks: int
    by_metric: dict[str, float]  # share of rollouts each metric rolled back


def _bucket_probs(median: float, sigma: float) -> Array:
    """P(latency in each bucket) for a log-normal; bucket i is [GAMMA^i, GAMMA^(i+1))."""
    edges = np.arange(KEY_LO, KEY_HI + 2) * math.log(GAMMA)
    z = (edges - math.log(median)) / sigma
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))
    cdf[0], cdf[-1] = 0.0, 1.0
    p: Array = np.diff(cdf)
    return p


def _key(t: Array) -> Array:
    k: Array = np.floor(np.log(np.maximum(t, 1e-300)) / math.log(GAMMA)) - KEY_LO
    return k


class Histograms:
    """Both arms' latency buckets per rollout per window: (R, W, B)."""

    def __init__(self, r: int, w: int) -> None:
        self.counts = np.zeros((r, w, BUCKETS))
        self._above: Array | None = None

    def add(
        self, rows: npt.NDArray[np.int64], window: npt.NDArray[np.int64], latencies: Array
    ) -> None:
        """``latencies`` (R, m) with NaN for requests not in this arm."""
        r, w, b = self.counts.shape
        ok = np.isfinite(latencies)
        key = np.clip(_key(np.where(ok, latencies, 1.0)), 0, b - 1).astype(np.int64)
        flat = (rows[:, None] * w + window[:, None]) * b + key
        self.counts += np.bincount(flat[ok], minlength=r * w * b).reshape(r, w, b)
        self._above = None

    def above(self) -> Array:
        """(R, W, B + 1): requests in buckets above index i (wholly above i's bucket)."""
        if self._above is None:
            c = self.counts
            rev = np.cumsum(c[..., ::-1], axis=-1)[..., ::-1]  # at i: buckets >= i
            self._above = np.concatenate([rev[..., 1:], np.zeros((*c.shape[:-1], 1))], -1)
        return self._above

    def count_above(self, t: Array) -> Array:
        """(R, W) requests above thresholds ``t`` (R,), as ``SketchLatency`` counts them."""
        key = np.clip(_key(t), -1, BUCKETS - 1).astype(np.int64)
        above = self.above()
        full = above[..., 0] + self.counts[..., 0]
        rows = np.arange(t.shape[0])
        out = np.where((key < 0)[:, None], full, above[rows, :, np.maximum(key, 0)])
        res: Array = np.where(np.isfinite(t)[:, None], out, 0.0)
        return res


def _zeros(r: int, w: int) -> dict[str, Array]:
    names = ("n", "errors", "refusals", "feedback_n", "negative_feedback", "cost_sum",
             "cost_sq_sum", "guardrail_fired", "quality_n", "quality_sum", "quality_sq_sum",
             "latency_n")  # fmt: skip
    return {k: np.zeros((r, w)) for k in names}


def _scores(sc: Scenario, on_c: npt.NDArray[np.bool_], rng: np.random.Generator) -> Array:
    """Every request's online score (only the scored ones are counted): stable's mean
    ``QUALITY_MEAN``, the candidate's shifted by ``sc.quality_shift``."""
    mean = np.where(on_c, QUALITY_MEAN + sc.quality_shift, QUALITY_MEAN)
    if sc.pass_fail:
        out: Array = (rng.random(on_c.shape) < mean).astype(np.float64)
        return out
    k = QUALITY_CONCENTRATION
    beta: Array = rng.beta(mean * k, (1.0 - mean) * k)
    return beta


def simulate(
    sc: Scenario,
    rollouts: int,
    rng: np.random.Generator,
    specs: tuple[MetricSpec, ...] | None = None,
    horizon_s: float | None = None,
) -> Outcome:
    """Run ``rollouts`` rollouts of ``sc`` through the controller's decision path, judged
    by ``specs`` (default: the plan's own)."""
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
    percent = np.array([s.percent for s in stages]) / 100.0
    min_dur = np.array([s.min_duration_s for s in stages])
    min_can = np.array([s.min_canary_requests for s in stages], dtype=float)
    max_dur = np.array([s.max_duration_s for s in stages])
    final = np.array(
        [i + 1 == n_st or stages[i + 1].percent >= 100 for i in range(n_st)], dtype=bool
    )
    arms = {"s": _zeros(r, w), "c": _zeros(r, w)}
    hist = {"s": Histograms(r, w), "c": Histograms(r, w)}
    stage = np.zeros(r, dtype=np.int64)
    stage_start = np.zeros(r)
    status = np.zeros(r, dtype=np.int64)  # 0 running, 1 paused, 2 rolled back, 3 promoted
    canary_at = np.full(r, np.nan)
    decided_s = np.full(r, np.nan)
    mu_cost = math.log(COST_MEAN) - COST_SIGMA**2 / 2
    lat_specs = [s for s in specs if s.metric is Metric.LATENCY]
    rolled_by = {s.name: np.zeros(r, bool) for s in specs}
    sticky = sc.users > 0
    if sticky:
        u = sc.users
        act = 1.0 / np.arange(1, u + 1) ** sc.zipf
        cum = np.cumsum(act / act.sum())
        prone = rng.gamma(sc.proneness_shape, 1.0 / sc.proneness_shape, (r, u))
        if sc.activity_proneness:
            tilt = act**sc.activity_proneness
            prone = prone * tilt / (tilt * act).sum() * act.sum()
        x_pre = x_adj = None
        # each user's latency and cost multiplier, logged: its random part, then the whole
        slower = bool(sc.user_sigma or sc.activity_slowness)
        z_slow = rng.standard_normal((r, u)) if slower else np.zeros((r, u))
        log_slow = _slowness(sc, z_slow, act)
        x_means: dict[str, Array] = {}  # each user's mean log latency and cost, the day before
        if sc.pre_period_s > 0 and plan.adjust_for_history:
            n_pre = rng.poisson(sc.rate * sc.pre_period_s * act / act.sum(), (r, u))
            k_pre = rng.binomial(n_pre, np.minimum(sc.error_rate * prone, 1.0))
            x_pre = proneness(k_pre, n_pre)
            known = n_pre > 0
            if slower:
                x_means = _day_before_means(log_slow, n_pre, rng)
            if sc.persistence < 1.0:  # the rollout's proneness: partly the day before's
                fresh = rng.gamma(sc.proneness_shape, 1.0 / sc.proneness_shape, (r, u))
                prone = prone**sc.persistence * fresh ** (1.0 - sc.persistence)
                prone = prone / (prone * act).sum(axis=1, keepdims=True) * act.sum()
            if slower and sc.persistence < 1.0:
                # ... and its slowness, the same mix of the day before's and a fresh draw
                fresh_z = rng.standard_normal((r, u))
                z_slow = sc.persistence * z_slow + (1.0 - sc.persistence) * fresh_z
                log_slow = _slowness(sc, z_slow, act)
        bucket = rng.random((r, u))
        # the plan's assignment: by bucket at the current stage (a user moves to the
        # candidate once, as the stage widens), or the arm first given, kept
        by_bucket = plan.assignment == "bucket"
        # each window's arm per user, as the controller sees it (by bucket: fixed per stage)
        window_arm = bucket[:, None, :] < percent[:w, None][None, :, :]
        assigned = np.full((r, u), -1, dtype=np.int8)
        n_u = np.zeros((r, w, u))
        k_u = np.zeros((r, w, u))
        # per user per window: sum and sum of squares of log latency and of cost
        sums_u = {q: np.zeros((r, w, u)) for q in ("lat", "lat_sq", "cost", "cost_sq")}
    dispersion: dict[str, Array] = {}
    exposure: Array | None = None  # (R, 2, W): the error test's requests as exposures
    shift: dict[str, Array] = {}  # CUPED's b per user (R, U): "lat", "cost"
    for look in range(looks):
        now = (look + 1) * look_s
        live = status < 2
        if not live.any():
            break
        share = percent[stage]
        frac = now / horizon_s
        p_err = sc.error_rate
        if sc.error_drift_to is not None:
            p_err = sc.error_rate + (sc.error_drift_to - sc.error_rate) * frac
        median = LATENCY_MEDIAN_MS * (1.0 + sc.diurnal * math.sin(2 * math.pi * now / 14_400))
        # --- traffic of this look: m requests per rollout
        if sticky:
            users = np.minimum(np.searchsorted(cum, rng.random((r, m))), u - 1)
            got = (bucket[rows[:, None], users] < share[:, None]).astype(np.int8)
            if by_bucket:
                on_c = got == 1
            else:
                new = assigned[rows[:, None], users] < 0
                kept = np.where(new, got, assigned[rows[:, None], users])
                assigned[rows[:, None], users] = kept
                on_c = assigned[rows[:, None], users] == 1
            p_req = p_err * prone[rows[:, None], users]
        else:
            on_c = rng.random((r, m)) < share[:, None]
            p_req = np.full((r, m), p_err)
        p_req = np.minimum(np.where(on_c, p_req * sc.error_factor, p_req), 1.0)
        err = rng.random((r, m)) < p_req
        lat = np.exp(rng.normal(math.log(median), LATENCY_SIGMA, (r, m)))
        lat = np.where(on_c, lat * sc.latency_factor, lat)
        cost = np.exp(rng.normal(mu_cost, COST_SIGMA, (r, m)))
        cost = np.where(on_c, cost * sc.cost_factor, cost)
        if sticky:
            slow = np.exp(log_slow[rows[:, None], users])
            lat, cost = lat * slow, cost * slow
        fb = rng.random((r, m)) < FEEDBACK_SHARE
        neg = fb & (rng.random((r, m)) < NEGATIVE_RATE)
        col = np.minimum(stage, w - 1)
        if sc.scored_share > 0:
            scored = rng.random((r, m)) < sc.scored_share
            score = _scores(sc, on_c, rng)
        for arm, mask in (("c", on_c), ("s", ~on_c)):
            a = arms[arm]
            mask = mask & live[:, None]
            a["n"][rows, col] += mask.sum(1)
            a["latency_n"][rows, col] += mask.sum(1)
            a["errors"][rows, col] += (err & mask).sum(1)
            a["feedback_n"][rows, col] += (fb & mask).sum(1)
            a["negative_feedback"][rows, col] += (neg & mask).sum(1)
            a["cost_sum"][rows, col] += np.where(mask, cost, 0.0).sum(1)
            a["cost_sq_sum"][rows, col] += np.where(mask, cost * cost, 0.0).sum(1)
            if sc.scored_share > 0:
                got = mask & scored
                a["quality_n"][rows, col] += got.sum(1)
                a["quality_sum"][rows, col] += np.where(got, score, 0.0).sum(1)
                a["quality_sq_sum"][rows, col] += np.where(got, score * score, 0.0).sum(1)
            hist[arm].add(rows, col, np.where(mask, lat, np.nan))
        if sticky:
            idx = (rows[:, None] * w + col[:, None]) * u + users
            seen = live[:, None] & np.ones_like(err)
            n_u += np.bincount(idx[seen], minlength=r * w * u).reshape(r, w, u)
            k_u += np.bincount(idx[seen & err], minlength=r * w * u).reshape(r, w, u)
            log_lat = np.log(lat)
            for q, v in (("lat", log_lat), ("lat_sq", log_lat * log_lat), ("cost", cost),
                         ("cost_sq", cost * cost)):  # fmt: skip
                got_u = np.bincount(idx[seen], weights=v[seen], minlength=r * w * u)
                sums_u[q] += got_u.reshape(r, w, u)
            arm_u = window_arm if by_bucket else assigned == 1
            if look % 4 == 0:  # the design effect moves slowly: every fourth look
                if x_pre is not None:  # CUPED's coefficient, from the rollout's users
                    theta, _ = history_coefficient(k_u.sum(1), n_u.sum(1), x_pre, known)
                    x_adj = adjusted_proneness(x_pre, theta)
                d = design_effect(k_u, n_u, arm_u, proneness=x_adj)
                dispersion = {"error_rate": d}
                if sc.cluster_means:  # as the controller: cost, and latency on its log
                    for q in ("lat", "cost"):
                        if q in x_means:  # CUPED's coefficient of each user's day before
                            th, _, xb = mean_coefficient(
                                sums_u[q].sum(1), n_u.sum(1), x_means[q], known
                            )
                            shift[q] = np.where(known, th[:, None] * (x_means[q] - xb[:, None]), 0)
                    lat_t, lat_q = _adjusted(sums_u, "lat", n_u, shift)
                    cost_t, cost_q = _adjusted(sums_u, "cost", n_u, shift)
                    dispersion["cost"] = design_effect(cost_t, n_u, arm_u, squares=cost_q)
                    d_lat = design_effect(lat_t, n_u, arm_u, squares=lat_q)
                    dispersion.update({spec.name: d_lat for spec in lat_specs})
            if x_adj is not None:  # the exposures move with every request: every look
                exposure = exposures(n_u, arm_u, x_adj)
        # --- the controller's judgement
        tails_s: dict[str, Array] = {}
        tails_c: dict[str, Array] = {}
        hs, hc = hist["s"], hist["c"]
        total = arms["s"]["latency_n"].sum(1)
        pooled = hs.counts.sum(1)  # stable's windows pooled: (R, B)
        pooled_above = np.cumsum(pooled[:, ::-1], axis=1)[:, ::-1] - pooled

        def above(t: Array, pa: Array = pooled_above, full: Array = total) -> Array:
            key = np.clip(_key(t), -1, BUCKETS - 1).astype(np.int64)
            got: Array = np.where(key < 0, full, pa[rows, np.maximum(key, 0)])
            return got

        refs: dict[str, Array] = {}
        for spec in lat_specs:
            lo = np.full(r, GAMMA**KEY_LO)
            hi = np.full(r, GAMMA ** (KEY_HI + 1))
            ref = pooled_quantile(above, total, spec.quantile, lo, hi)
            ref = np.where(total > 0, ref, np.inf)
            refs[spec.name] = ref
            t_s, t_c = latency_thresholds(1.0, spec.tolerance)
            tails_s[spec.name] = hs.count_above(ref * t_s)
            tails_c[spec.name] = hc.count_above(ref * t_c)
        s_arr = ArmArrays(**arms["s"], tails=tails_s)
        c_arr = ArmArrays(**arms["c"], tails=tails_c)
        lat_n: dict[str, Array] = {}  # a latency test's requests as exposures (R, 2, W)
        if sticky and shift:  # as the controller: the arms' adjusted cost, the tail offsets
            arm_w = np.broadcast_to(arm_u if arm_u.ndim == 3 else arm_u[:, None, :], n_u.shape)
            if "cost" in shift:
                cost_t, cost_q = _adjusted(sums_u, "cost", n_u, shift)
                s_arr, c_arr = (
                    replace(
                        a,
                        cost_sum=np.where(side, cost_t, 0.0).sum(-1),
                        cost_sq_sum=np.where(side, cost_q, 0.0).sum(-1),
                    )
                    for a, side in ((s_arr, ~arm_w), (c_arr, arm_w))
                )
            if "lat" in shift:
                lat_t, lat_q = _adjusted(sums_u, "lat", n_u, shift)
                n_stable = np.maximum(np.where(arm_w, 0.0, n_u).sum((1, 2)), 1.0)
                m_s = np.where(arm_w, 0.0, lat_t).sum((1, 2)) / n_stable
                sd_s = np.sqrt(
                    np.maximum(np.where(arm_w, 0.0, lat_q).sum((1, 2)) / n_stable - m_s**2, 0.0)
                )
                for spec in lat_specs:
                    t_s, _ = latency_thresholds(1.0, spec.tolerance)
                    log_t = np.log(np.maximum(refs[spec.name] * t_s, 1e-300))
                    r_u = tail_offsets(shift["lat"], n_u.sum(1), log_t, m_s, sd_s)
                    lat_n[spec.name] = exposures(n_u, arm_u, r_u)
        regressed = np.zeros(r, bool)
        required_ok = np.ones(r, bool)
        for spec in specs:
            s_m, c_m = s_arr, c_arr
            if exposure is not None and spec.metric is Metric.ERROR_RATE:
                s_m = replace(s_arr, n=exposure[:, 0])
                c_m = replace(c_arr, n=exposure[:, 1])
            if spec.name in lat_n:
                s_m = replace(s_arr, latency_n=lat_n[spec.name][:, 0])
                c_m = replace(c_arr, latency_n=lat_n[spec.name][:, 1])
            reg, ok = evidence(spec, s_m, c_m, dispersion)
            bad, good = verdicts(spec, reg, ok)
            rolled_by[spec.name] |= bad & live
            regressed |= bad
            if spec.required:
                required_ok &= good
        canary = arms["c"]["n"].sum(1)
        back = live & regressed
        status[back] = 2
        canary_at[back] = canary[back]
        decided_s[back] = now
        running = (status == 0) & ~back
        elapsed = now - stage_start
        met = (elapsed >= min_dur[stage]) & (arms["c"]["n"][rows, col] >= min_can[stage])
        is_final = final[stage]
        if plan.promote_early:  # as the controller: the stages left would add exposure only
            is_final = is_final | required_ok
        promote = running & met & is_final & required_ok
        advance = running & met & ~is_final
        status[promote] = 3
        canary_at[promote] = canary[promote]
        decided_s[promote] = now
        stage[advance] += 1
        stage_start[advance] = now
        pause = running & ~promote & ~advance & (elapsed > max_dur[stage])
        status[pause] = 1
        canary_at[pause] = canary[pause]
    names = np.array([UNDECIDED, PAUSE, ROLLBACK, PROMOTE])
    action = names[status]
    action = np.where((status == 0), UNDECIDED, action)
    by_metric = {k: float(v.mean()) for k, v in rolled_by.items()}
    return Outcome(
        action=action, canary_at=canary_at, decided_s=decided_s, looks=looks, by_metric=by_metric
    )


def _slowness(sc: Scenario, z: Array, act: npt.NDArray[np.floating[Any]]) -> Array:
    """Each user's latency and cost multiplier, logged, from its random part ``z``
    (``(R, U)``, standard normal): ``user_sigma z + activity_slowness log(activity)``,
    normalised to a traffic-weighted mean multiplier of 1; 0 when users do not differ."""
    if not (sc.user_sigma or sc.activity_slowness):
        return np.zeros_like(z)
    log_slow = sc.user_sigma * z + sc.activity_slowness * np.log(act)
    weight = np.exp(log_slow) * act
    out: Array = log_slow - np.log(weight.sum(axis=1, keepdims=True) / act.sum())
    return out


def _day_before_means(log_slow: Array, n_pre: npt.NDArray[np.int64], rng: Any) -> dict[str, Array]:
    """Each user's mean log latency and mean cost over its ``n_pre`` requests the day
    before (``(R, U)``; 0 where it had none): the log latency's mean exactly (normal), the
    cost's as the log-normal of the same mean and coefficient of variation (Fenton 1960)."""
    k = np.maximum(n_pre, 1)
    lat = (
        math.log(LATENCY_MEDIAN_MS)
        + log_slow
        + LATENCY_SIGMA * rng.standard_normal(log_slow.shape) / np.sqrt(k)
    )
    s2 = np.log1p((math.exp(COST_SIGMA**2) - 1.0) / k)
    cost = COST_MEAN * np.exp(log_slow + np.sqrt(s2) * rng.standard_normal(log_slow.shape) - s2 / 2)
    seen = n_pre > 0
    return {"lat": np.where(seen, lat, 0.0), "cost": np.where(seen, cost, 0.0)}


def _adjusted(
    sums_u: dict[str, Array], q: str, n_u: Array, shift: dict[str, Array]
) -> tuple[Array, Array]:
    """The users' sums and sums of squares of ``q`` per window, CUPED-adjusted by
    ``shift[q]`` when it is known (as ``stats.cuped.adjusted_sums``)."""
    if q not in shift:
        return sums_u[q], sums_u[q + "_sq"]
    total, squares, _ = adjusted_sums(sums_u[q], sums_u[q + "_sq"], n_u, shift[q], True, 1.0, 0.0)
    return total, squares


def before_specs() -> tuple[MetricSpec, ...]:
    """The defaults before issue 12's item 1: errors and refusals only guarded, no margin."""
    out = []
    for s in DEFAULT_METRICS:
        if s.metric in (Metric.ERROR_RATE, Metric.REFUSAL_RATE):
            s = dataclasses.replace(s, required=False, margin=None)
        out.append(s)
    return tuple(out)


def _share(o: Outcome, action: str) -> tuple[float, float, float]:
    k = int((o.action == action).sum())
    lo, hi = wilson_interval(k, o.action.size)
    return k / o.action.size, lo, hi


def _median(o: Outcome, action: str) -> float:
    at = o.canary_at[o.action == action]
    return float(np.median(at)) if at.size else math.nan


def _hours(o: Outcome, action: str) -> float:
    at = o.decided_s[o.action == action]
    return float(np.median(at)) / 3600.0 if at.size else math.nan


def _run(job: tuple[int, int, int, bool]) -> tuple[int, int, Outcome, float]:
    index, rollouts, seed, before = job
    sc = SCENARIOS[index]
    n = min(rollouts, sc.max_rollouts or rollouts)
    rng = np.random.default_rng([seed, index])
    started = time.process_time()
    o = simulate(sc, n, rng, before_specs() if before else None)
    return index, n, o, time.process_time() - started


BEFORE = "BEFORE item 1 (errors, refusals not required)"


def _pct(x: tuple[float, float, float]) -> str:
    return f"{x[0]:.1%} [{x[1]:.1%}, {x[2]:.1%}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rollouts", type=int, default=1000, help="rollouts per scenario")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="scenarios run in parallel")
    ap.add_argument("--only", default="", help="run the scenarios whose name contains this")
    ap.add_argument("--before", action="store_true", help="errors/refusals not required")
    ap.add_argument("--out", type=Path, default=RESULTS / "canary_sim.md")
    args = ap.parse_args(argv)
    started = time.monotonic()
    chosen = [i for i, sc in enumerate(SCENARIOS) if args.only in sc.name]
    jobs = [(i, args.rollouts, args.seed, args.before) for i in chosen]
    if args.jobs > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(_run, jobs, chunksize=1)
    else:
        results = [_run(j) for j in jobs]
    rows = []
    notes = []
    for index, n, o, cpu in results:
        sc = SCENARIOS[index]
        rb, pr, pa = (_share(o, a) for a in (ROLLBACK, PROMOTE, PAUSE))
        und = _share(o, UNDECIDED)
        rows.append(
            f"| {sc.name} | {n:,} | {args.seed} | {_pct(rb)} | {_pct(pr)} | {_pct(pa)} "
            f"| {und[0]:.1%} | {_median(o, PROMOTE):,.0f} | {_median(o, ROLLBACK):,.0f} "
            f"| {_hours(o, PROMOTE):.2f} | {_hours(o, ROLLBACK):.2f} |"
        )
        worst = sorted(o.by_metric.items(), key=lambda kv: -kv[1])
        notes.append(
            f"{sc.name}: rolled back by "
            + ", ".join(f"{k} {v:.1%}" for k, v in worst if v)
            + " (none)" * (not any(v for _, v in worst))
            + f"; {o.looks:,} looks; {cpu:.0f} s CPU"
        )
    command = " ".join(["bench/canary_sim.py", *(argv if argv is not None else sys.argv[1:])])
    table = "\n".join(
        [
            f"Seed {args.seed}; rollouts per scenario in the table; shares with Wilson 95 % "
            f"intervals; {BEFORE if args.before else 'defaults'}"
            f"; a look every {LOOK_S:g} s at {RATE:g} requests/s unless the scenario says; "
            "canary requests over the whole rollout at the decision (median).",
            "",
            "| scenario | rollouts | seed | rolled back | promoted | paused | undecided "
            "| canary requests to promote | to roll back | hours to promote | to roll back |",
            "|---|---:|---:|---|---|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            *[f"- {n}" for n in notes],
            f"- `{command}` took {time.monotonic() - started:.0f} s",
        ]
    )
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
