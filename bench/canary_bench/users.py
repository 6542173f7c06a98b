"""Sticky users: their activity (Zipf), error-proneness, latency and cost multipliers, the
day before the rollout, their buckets and arms, and their counts and sums per window."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from canary_bench.route import COST_MEAN, COST_SIGMA, LATENCY_MEDIAN_MS, LATENCY_SIGMA
from canary_bench.scenarios import Scenario
from canary_bench.sketch import Array
from trimtab.stats.clustered import proneness


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


@dataclass(frozen=True)
class DayBefore:
    """The users' day before the rollout, as the tests know it (CUPED's covariates)."""

    x_pre: Array  # each user's error-proneness
    known: npt.NDArray[np.bool_]  # users with requests that day
    # each user's mean log latency and mean cost ("lat", "cost"; none when users do not differ)
    x_means: dict[str, Array] = field(default_factory=dict)


@dataclass
class Users:
    """One population of sticky users per rollout, ``(R, U)``, and what the controller
    counts of them per window, ``(R, W, U)``."""

    cum: Array  # the users' cumulative share of traffic (U,)
    prone: Array  # error-proneness in the rollout
    log_slow: Array  # latency and cost multiplier, logged
    bucket: Array  # the assignment bucket in [0, 1)
    by_bucket: bool  # assigned by bucket at the current stage (else the first arm, kept)
    window_arm: npt.NDArray[np.bool_]  # (R, W, U): on the candidate in each window (by bucket)
    assigned: npt.NDArray[np.int8]  # the arm first given (-1: not seen yet)
    n_u: Array
    k_u: Array
    # per user per window: sum and sum of squares of log latency and of cost
    sums_u: dict[str, Array]
    day_before: DayBefore | None = None  # None: not known to the tests

    @property
    def arm(self) -> npt.NDArray[np.bool_]:
        """Each user's arm as the controller sees it: per window by bucket, else kept."""
        arm: npt.NDArray[np.bool_] = self.window_arm if self.by_bucket else self.assigned == 1
        return arm


def draw_users(sc: Scenario, percent: Array, r: int, w: int, rng: np.random.Generator) -> Users:
    """``sc.users`` users per rollout for ``r`` rollouts of ``w`` windows, at the stages'
    ``percent`` shares, with the day before when the plan adjusts for it."""
    plan = sc.plan
    u = sc.users
    act = 1.0 / np.arange(1, u + 1) ** sc.zipf
    cum = np.cumsum(act / act.sum())
    prone = rng.gamma(sc.proneness_shape, 1.0 / sc.proneness_shape, (r, u))
    if sc.activity_proneness:
        prone = prone * act**sc.activity_proneness
    # in every rollout the users' traffic-weighted mean proneness is 1, so the route's error
    # rate is the scenario's (a few heavy users' draws would otherwise move it per rollout,
    # and with it where a candidate stands against an absolute margin)
    prone = prone / (prone * act).sum(axis=1, keepdims=True) * act.sum()
    day_before = None
    # each user's latency and cost multiplier, logged: its random part, then the whole
    slower = bool(sc.user_sigma or sc.activity_slowness)
    z_slow = rng.standard_normal((r, u)) if slower else np.zeros((r, u))
    log_slow = _slowness(sc, z_slow, act)
    x_means: dict[str, Array] = {}  # each user's mean log latency and cost, the day before
    if sc.pre_period_s > 0 and plan.adjust_for_history:
        n_pre = rng.poisson(sc.rate * sc.pre_period_s * act / act.sum(), (r, u))
        k_pre = rng.binomial(n_pre, np.minimum(sc.error_rate * prone, 1.0))
        if slower:
            x_means = _day_before_means(log_slow, n_pre, rng)
        day_before = DayBefore(proneness(k_pre, n_pre), n_pre > 0, x_means)
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
    return Users(
        cum=cum,
        prone=prone,
        log_slow=log_slow,
        bucket=bucket,
        # the plan's assignment: by bucket at the current stage (a user moves to the
        # candidate once, as the stage widens), or the arm first given, kept
        by_bucket=plan.assignment == "bucket",
        # each window's arm per user, as the controller sees it (by bucket: fixed per stage)
        window_arm=bucket[:, None, :] < percent[:w, None][None, :, :],
        assigned=np.full((r, u), -1, dtype=np.int8),
        n_u=np.zeros((r, w, u)),
        k_u=np.zeros((r, w, u)),
        sums_u={q: np.zeros((r, w, u)) for q in ("lat", "lat_sq", "cost", "cost_sq")},
        day_before=day_before,
    )


@dataclass(frozen=True)
class Picked:
    """One look's requests' users, ``(R, m)``: which, on which arm, how error-prone, and
    how slow (the multiplier of latency and cost)."""

    users: npt.NDArray[np.int64]
    on_c: npt.NDArray[np.bool_]
    prone: Array
    slow: Array


def pick(
    us: Users, share: Array, rows: npt.NDArray[np.int64], m: int, rng: np.random.Generator
) -> Picked:
    """``m`` requests per rollout from its users by activity, each on its user's arm at the
    stage's ``share`` (by bucket, or the arm the user was first given)."""
    u = us.cum.size
    users = np.minimum(np.searchsorted(us.cum, rng.random((rows.size, m))), u - 1)
    got = (us.bucket[rows[:, None], users] < share[:, None]).astype(np.int8)
    if us.by_bucket:
        on_c = got == 1
    else:
        new = us.assigned[rows[:, None], users] < 0
        kept = np.where(new, got, us.assigned[rows[:, None], users])
        us.assigned[rows[:, None], users] = kept
        on_c = us.assigned[rows[:, None], users] == 1
    prone = us.prone[rows[:, None], users]
    slow = np.exp(us.log_slow[rows[:, None], users])
    return Picked(users, on_c, prone, slow)


def count_users(
    us: Users,
    picked: Picked,
    err: npt.NDArray[np.bool_],
    lat: Array,
    cost: Array,
    rows: npt.NDArray[np.int64],
    col: npt.NDArray[np.int64],
    live: npt.NDArray[np.bool_],
) -> None:
    """Add the live rollouts' requests to their users' counts and sums in window ``col``."""
    r, w, u = us.n_u.shape
    idx = (rows[:, None] * w + col[:, None]) * u + picked.users
    seen = live[:, None] & np.ones_like(err)
    us.n_u += np.bincount(idx[seen], minlength=r * w * u).reshape(r, w, u)
    us.k_u += np.bincount(idx[seen & err], minlength=r * w * u).reshape(r, w, u)
    log_lat = np.log(lat)
    for q, v in (("lat", log_lat), ("lat_sq", log_lat * log_lat), ("cost", cost),
                 ("cost_sq", cost * cost)):  # fmt: skip
        got_u = np.bincount(idx[seen], weights=v[seen], minlength=r * w * u)
        us.sums_u[q] += got_u.reshape(r, w, u)
