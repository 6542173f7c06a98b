"""One look's requests on both arms (errors, latency, cost, feedback, online scores) and the
arms' counters per rollout per window that the controller's tests read."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from canary_bench.route import (
    COST_MEAN,
    COST_SIGMA,
    FEEDBACK_SHARE,
    LATENCY_SIGMA,
    NEGATIVE_RATE,
    QUALITY_CONCENTRATION,
    QUALITY_MEAN,
)
from canary_bench.scenarios import Scenario
from canary_bench.sketch import Array, Histograms

MU_COST = math.log(COST_MEAN) - COST_SIGMA**2 / 2  # the log-normal cost's mu


@dataclass(frozen=True)
class Requests:
    """One look's requests per rollout, (R, m) each; ``score`` is None when none are scored."""

    on_c: npt.NDArray[np.bool_]  # on the candidate
    err: npt.NDArray[np.bool_]
    lat: Array
    cost: Array
    fb: npt.NDArray[np.bool_]  # feedback given ...
    neg: npt.NDArray[np.bool_]  # ... and negative
    scored: npt.NDArray[np.bool_] | None = None
    score: Array | None = None


def arm_counters(r: int, w: int) -> dict[str, Array]:
    """An arm's counters (``ArmArrays``' fields but the tails), zero: (R, W) each."""
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


def draw_requests(
    sc: Scenario,
    on_c: npt.NDArray[np.bool_],
    p_req: Array,
    median: float,
    slow: Array | None,
    rng: np.random.Generator,
) -> Requests:
    """The requests of one look: ``p_req`` each request's error rate on stable, ``median``
    both arms' median latency now, ``slow`` each request's user's multiplier (sticky)."""
    r, m = on_c.shape
    p_req = np.minimum(np.where(on_c, p_req * sc.error_factor, p_req), 1.0)
    err = rng.random((r, m)) < p_req
    lat = np.exp(rng.normal(math.log(median), LATENCY_SIGMA, (r, m)))
    lat = np.where(on_c, lat * sc.latency_factor, lat)
    cost = np.exp(rng.normal(MU_COST, COST_SIGMA, (r, m)))
    cost = np.where(on_c, cost * sc.cost_factor, cost)
    if slow is not None:
        lat, cost = lat * slow, cost * slow
    fb = rng.random((r, m)) < FEEDBACK_SHARE
    neg = fb & (rng.random((r, m)) < NEGATIVE_RATE)
    if sc.scored_share <= 0:
        return Requests(on_c, err, lat, cost, fb, neg)
    scored = rng.random((r, m)) < sc.scored_share
    return Requests(on_c, err, lat, cost, fb, neg, scored, _scores(sc, on_c, rng))


def count(
    arms: dict[str, dict[str, Array]],
    hist: dict[str, Histograms],
    q: Requests,
    rows: npt.NDArray[np.int64],
    col: npt.NDArray[np.int64],
    live: npt.NDArray[np.bool_],
) -> None:
    """Add the live rollouts' requests to each arm's counters and latency buckets in the
    window ``col`` (per rollout)."""
    for arm, mask in (("c", q.on_c), ("s", ~q.on_c)):
        a = arms[arm]
        mask = mask & live[:, None]
        a["n"][rows, col] += mask.sum(1)
        a["latency_n"][rows, col] += mask.sum(1)
        a["errors"][rows, col] += (q.err & mask).sum(1)
        a["feedback_n"][rows, col] += (q.fb & mask).sum(1)
        a["negative_feedback"][rows, col] += (q.neg & mask).sum(1)
        a["cost_sum"][rows, col] += np.where(mask, q.cost, 0.0).sum(1)
        a["cost_sq_sum"][rows, col] += np.where(mask, q.cost * q.cost, 0.0).sum(1)
        if q.scored is not None and q.score is not None:
            got = mask & q.scored
            a["quality_n"][rows, col] += got.sum(1)
            a["quality_sum"][rows, col] += np.where(got, q.score, 0.0).sum(1)
            a["quality_sq_sum"][rows, col] += np.where(got, q.score * q.score, 0.0).sum(1)
        hist[arm].add(rows, col, np.where(mask, q.lat, np.nan))
