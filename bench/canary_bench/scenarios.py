"""The scenarios: what each simulated rollout's traffic, users and candidate are, and the
list the command runs (docs/canary.md "Benchmark")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from canary_bench.route import ERROR_RATE, RATE
from trimtab.canary.plans import DEFAULT_PLAN, LOW_TRAFFIC_PLAN, MetricRule, Plan, Stage


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
    # users' error multipliers ~ Gamma(shape, 1 / shape), normalised in each rollout to a
    # traffic-weighted mean of 1 (the route errs at error_rate in every rollout)
    proneness_shape: float = 0.5
    # users' error multipliers also grow with their activity, as activity^this: heavy users,
    # met first, err more (0: unrelated)
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
