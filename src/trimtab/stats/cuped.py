"""Each unit's own mean before the rollout as a covariate of a mean (cost per request, log
latency): CUPED in its classic form, and the latency tail tests' offsets from it.

For a quantity ``y`` per request and a unit's mean ``x_j`` of it before the rollout (the
day before, whatever version served it), CUPED (Deng, Xu, Kohavi, Walker, "Improving the
sensitivity of online controlled experiments by utilizing pre-experiment data", WSDM 2013)
judges ``y_adj = y - theta (x_j - E x)`` instead of ``y``: assignment is blind to the
history, so ``x_j - E x`` has mean 0 in either arm and the arms' means keep their
expectations, while what the history predicts of a user (a slow, costly user is slow and
costly on either version) is no longer noise. ``theta = cov(x, y) / var(x)`` over the units
seen before and during the rollout, per-unit means weighted by their requests, pooled over
the arms. A unit with no history is taken at ``E x`` (no adjustment).

Any fixed ``theta`` keeps the difference of adjusted means unbiased; the estimated one is
asymptotically so (it is re-estimated at every look from the rollout's own units, as
:func:`trimtab.stats.clustered.history_coefficient` is for rates). It is clipped to
``[0, 1]`` and is 0 below :data:`trimtab.stats.clustered.MIN_HISTORY_UNITS` such units.
The variance of the adjusted means is taken at the unit of assignment from the adjusted
per-unit sums (:func:`trimtab.stats.clustered.design_effect` with ``squares``): what the
history does not explain stays in the design effect.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trimtab.stats.clustered import MIN_HISTORY_UNITS
from trimtab.stats.intervals import FloatArray, log_normal_cdf

__all__ = ["adjusted_sums", "mean_coefficient", "tail_offsets"]


def mean_coefficient(
    total: npt.ArrayLike,
    n: npt.ArrayLike,
    x: npt.ArrayLike,
    known: npt.ArrayLike,
    arm: npt.ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """CUPED's ``theta = cov(x, y) / var(x)`` for a mean: ``(theta, units, x_bar)``, each
    of shape ``(...)``.

    ``total`` and ``n`` are each unit's sum of the quantity and its requests during the
    rollout (all windows), shape ``(..., U)``; ``x`` the unit's mean of it before the
    rollout, ``known`` the units that had requests then; ``arm`` (``(..., U)``,
    :func:`trimtab.stats.clustered.majority_arm`) the arm each is judged in. The
    regression of the units' rollout means ``y_j = total_j / n_j`` on ``x_j`` weighted by
    ``n_j``, with an intercept per arm (the common slope of an analysis of covariance):
    ``theta = sum_g sum_j (x_j - x_bar_g) total_j / sum_g sum_j n_j (x_j - x_bar_g)^2``,
    ``x_bar_g`` the arm's request-weighted mean of ``x``. Within the arms, so that a
    candidate whose mean differs does not leak into ``theta`` when its units' histories
    happen to differ from stable's (pooled, a costlier candidate that drew the costly
    users gets a ``theta`` too high and is adjusted down too far); without ``arm`` all
    units are one group. ``x_bar`` is the request-weighted mean of ``x`` over all those
    units (``E x``), about which both arms are adjusted. Clipped to ``[0, 1]``; 0 below
    :data:`MIN_HISTORY_UNITS` units or when their histories do not differ."""
    t_, n_ = np.asarray(total, dtype=np.float64), np.asarray(n, dtype=np.float64)
    x_ = np.asarray(x, dtype=np.float64)
    use = np.asarray(known, dtype=bool) & (n_ > 0)
    units = use.sum(axis=-1).astype(np.float64)
    if arm is None:
        groups = [use]
    else:
        cand = np.broadcast_to(np.asarray(arm, dtype=bool), use.shape)
        groups = [use & cand, use & ~cand]
    var = np.zeros(units.shape)
    cov = np.zeros(units.shape)
    for group in groups:
        w = np.where(group, n_, 0.0)
        safe_g = np.maximum(w.sum(axis=-1, keepdims=True), 1.0)
        x_g = (w * np.where(group, x_, 0.0)).sum(axis=-1, keepdims=True) / safe_g
        dx = np.where(group, x_ - x_g, 0.0)
        var = var + (w * dx * dx).sum(axis=-1)
        cov = cov + (dx * np.where(group, t_, 0.0)).sum(axis=-1)
    w_all = np.where(use, n_, 0.0)
    safe_n = np.maximum(w_all.sum(axis=-1, keepdims=True), 1.0)
    x_bar = (w_all * np.where(use, x_, 0.0)).sum(axis=-1, keepdims=True) / safe_n
    ok = (units >= MIN_HISTORY_UNITS) & (var > 0)
    theta: FloatArray = np.clip(np.where(ok, cov / np.where(ok, var, 1.0), 0.0), 0.0, 1.0)
    return theta, units, x_bar[..., 0]


def adjusted_sums(
    total: npt.ArrayLike,
    squares: npt.ArrayLike,
    n: npt.ArrayLike,
    x: npt.ArrayLike,
    known: npt.ArrayLike,
    theta: npt.ArrayLike,
    x_bar: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Each unit's sum and sum of squares of ``y - b_j`` per window, ``b_j = theta (x_j -
    x_bar)`` (0 for a unit with no history): ``(total, squares, b)``, the first two of the
    shape of ``total`` (``(..., W, U)``), ``b`` of ``(..., U)``.
    ``sum (y - b)^2 = squares - 2 b total + n b^2``, exactly."""
    t_ = np.asarray(total, dtype=np.float64)
    q_ = np.asarray(squares, dtype=np.float64)
    n_ = np.asarray(n, dtype=np.float64)
    th = np.asarray(theta, dtype=np.float64)[..., None]
    xb = np.asarray(x_bar, dtype=np.float64)[..., None]
    x_ = np.asarray(x, dtype=np.float64)
    b: FloatArray = np.where(np.asarray(known, dtype=bool), th * (x_ - xb), 0.0)
    bw = b[..., None, :]
    out_t: FloatArray = t_ - n_ * bw
    out_q: FloatArray = np.maximum(q_ - 2.0 * bw * t_ + n_ * bw * bw, 0.0)
    return out_t, out_q, b


def tail_offsets(
    b: npt.ArrayLike,
    n: npt.ArrayLike,
    log_threshold: npt.ArrayLike,
    mean: npt.ArrayLike,
    sd: npt.ArrayLike,
) -> FloatArray:
    """Each unit's expected share of requests above a latency threshold relative to all
    units', from its predicted shift ``b_j`` of log latency (:func:`adjusted_sums`):
    ``r_j = P(log y > log t | b_j) = 1 - Phi((log t - mean - b_j) / sd)`` over its
    request-weighted mean (``n``: each unit's requests, ``(..., U)``), with ``mean`` and
    ``sd`` those of stable's adjusted log latency (the residual's spread, the user's
    unexplained part included). The offsets the split-of-events tail tests take as the
    error test takes :func:`trimtab.stats.clustered.adjusted_proneness`; 1 for every unit
    where ``b`` is 0 or ``sd`` is not positive."""
    b_ = np.asarray(b, dtype=np.float64)
    n_ = np.asarray(n, dtype=np.float64)
    sd_ = np.asarray(sd, dtype=np.float64)[..., None]
    ok = np.isfinite(sd_) & (sd_ > 0) & np.isfinite(np.asarray(log_threshold)[..., None])
    lt = np.where(ok, np.asarray(log_threshold, dtype=np.float64)[..., None], 0.0)
    z = (lt - np.asarray(mean, dtype=np.float64)[..., None] - b_) / np.where(ok, sd_, 1.0)
    r = np.exp(log_normal_cdf(-z))
    total = np.maximum(n_.sum(axis=-1, keepdims=True), 1e-300)
    avg = (n_ * r).sum(axis=-1, keepdims=True) / total
    good = ok & (avg > 0)
    out: FloatArray = np.where(good, r / np.where(good, avg, 1.0), 1.0)
    return out
