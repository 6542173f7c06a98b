"""Requests that are not independent: the design effect of sticky assignment by user.

Assignment is sticky by user (``canary.assignment``), so a user's requests all land in one
arm and share that user's error-proneness; the split-of-events test and the binomial
variance assume independent requests and understate the noise when a few heavy users
differ (issue 12, item 4). The unit of assignment is the user, so the variance is taken at
that unit: the cluster-robust (sandwich) variance of the stratified difference of rates
(Liang & Zeger, "Longitudinal data analysis using generalized linear models", Biometrika
1986; for ratio estimators over clusters, the delta method on per-user aggregates, e.g.
Deng, Lu, Litz, "Trustworthy analysis of online A/B tests: pitfalls, challenges and
solutions", WSDM 2017), over the binomial one: the *design effect* ``D`` (Kish, "Survey
Sampling", 1965).

The tests then use it as a quasi-likelihood dispersion (McCullagh & Nelder, "Generalized
Linear Models", 1989, ch. 9): the split-of-events log likelihood ratio is divided by ``D``
and the normal-mixture variance multiplied by it. Dividing a log e-value by ``D >= 1`` keeps
an e-value an e-value (Jensen); with ``D`` estimated it restores the test's scale
asymptotically, as the plug-in variance of the normal mixture does. ``D`` is floored at 1:
clustering never makes the evidence stronger than independent requests would.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trimtab.stats.intervals import FloatArray

__all__ = ["MIN_UNITS", "NO_EVIDENCE", "design_effect", "exposures", "proneness"]

# The sandwich variance needs enough units to be believed (Cameron & Miller, "A
# practitioner's guide to cluster-robust inference", J. Human Resources 2015: with few
# clusters it is biased low); until each arm has this many, the clustered tests say nothing.
MIN_UNITS = 20
NO_EVIDENCE = 1e12  # the design effect returned then: every log e-value divided away


def design_effect(
    k: npt.ArrayLike,
    n: npt.ArrayLike,
    on_candidate: npt.ArrayLike,
    rest_k: npt.ArrayLike | None = None,
    rest_n: npt.ArrayLike | None = None,
    proneness: npt.ArrayLike | None = None,
) -> FloatArray:
    """``D >= 1`` of the stratified difference of rates ``sum_w (n_cw / n_c)(p_cw - p_sw)``.

    ``k`` and ``n`` are events and requests per unit per window, shape ``(..., W, U)``;
    ``on_candidate`` says each unit's arm: ``(..., U)`` when a unit keeps one arm, or
    ``(..., W, U)`` per window, for a user that moved from stable to the candidate when a
    stage widened (``assignment: bucket``): its influence is summed over both arms' windows,
    as the cluster is the user.
    ``rest_k`` / ``rest_n`` (``(..., 2, W)``: stable, candidate) are requests not broken
    down by unit (no user, or beyond a query's bound), taken as one unit each. Returns
    ``Var_cluster / Var_binomial``, floored at 1 (1 where there is no variance to compare),
    and :data:`NO_EVIDENCE` while either arm has fewer than :data:`MIN_UNITS` units.
    Both variances take the same residuals, against the window's pooled rate, the second
    with every request its own unit: with independent requests ``D`` is about 1 whatever
    the arms' rates are.

    ``proneness`` (``(..., U)``, from :func:`proneness`) is each unit's rate relative to the
    others', known before the rollout: the residuals are then taken against the pooled rate
    times it (a unit's requests weigh as ``n x`` exposures), so the spread the covariate
    explains is no longer noise — the variance reduction of a pre-period covariate (CUPED:
    Deng, Xu, Kohavi, Walker, "Improving the sensitivity of online controlled experiments
    by utilizing pre-experiment data", WSDM 2013), here as an offset. Pair it with
    :func:`exposures`, which gives the tests the arms' requests on the same scale.
    """
    k_, n_ = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    cand = _arms(on_candidate, k_.shape)
    x = _proneness(proneness, k_.shape)
    e_ = n_ * x  # each unit's requests as exposures: n x
    rk, rn = _rest(rest_k, k_.shape), _rest(rest_n, k_.shape)
    k_c = np.where(cand, k_, 0.0).sum(axis=-1) + rk[..., 1, :]
    n_c = np.where(cand, e_, 0.0).sum(axis=-1) + rn[..., 1, :]
    k_s = np.where(cand, 0.0, k_).sum(axis=-1) + rk[..., 0, :]
    n_s = np.where(cand, 0.0, e_).sum(axis=-1) + rn[..., 0, :]
    both = (n_c > 0) & (n_s > 0)
    safe_c, safe_s = np.where(both, n_c, 1.0), np.where(both, n_s, 1.0)
    # residuals against the window's pooled rate (the rate under the null of no
    # difference, as a score test takes it): a unit's own excess is not absorbed into its
    # arm's mean, which with few units on the candidate (an early stage) would hide it
    p_c = p_s = (k_c + k_s) / (safe_c + safe_s)
    total_c = np.where(both, n_c, 0.0).sum(axis=-1, keepdims=True)
    total = np.maximum(total_c, 1.0)
    # each unit's influence on the estimate, summed over the windows it was seen in
    w_c = np.where(both, 1.0 / total, 0.0)  # (n_cw / n_c) / n_cw
    w_s = np.where(both, -(n_c / total) / safe_s, 0.0)
    p_arm = np.where(cand, p_c[..., None], p_s[..., None])
    weight = np.where(cand, w_c[..., None], w_s[..., None])
    psi = (weight * (k_ - p_arm * e_)).sum(axis=-2)  # (..., U)
    seen = n_.sum(axis=-2) > 0
    units_c = ((n_ > 0) & cand).any(axis=-2).sum(axis=-1) + rn[..., 1, :].sum(axis=-1)
    units_s = ((n_ > 0) & ~cand).any(axis=-2).sum(axis=-1) + rn[..., 0, :].sum(axis=-1)
    units = seen.sum(axis=-1)
    v_cluster = (psi * psi).sum(axis=-1)
    # every request its own unit: sum of (y - p x)^2 over its requests, in closed form
    px = p_arm * x
    v_binomial = (weight * weight * (k_ * (1.0 - 2.0 * px) + px * px * n_)).sum(axis=(-2, -1))
    # requests not broken down: one unit each (x = 1), in both variances
    for arm, p, w in ((1, p_c, w_c), (0, p_s, w_s)):
        kk, nn = rk[..., arm, :], rn[..., arm, :]
        rest = (w * w * (kk * (1.0 - 2.0 * p) + p * p * nn)).sum(axis=-1)
        v_cluster = v_cluster + rest
        v_binomial = v_binomial + rest
        units = units + nn.sum(axis=-1)
    g = np.maximum(units, 2.0)
    v_cluster = v_cluster * g / (g - 1.0)
    ratio = np.where(v_binomial > 0, v_cluster / np.where(v_binomial > 0, v_binomial, 1.0), 1.0)
    few = np.minimum(units_c, units_s) < MIN_UNITS
    out: FloatArray = np.where(few, NO_EVIDENCE, np.maximum(ratio, 1.0))
    return out


def exposures(
    n: npt.ArrayLike,
    on_candidate: npt.ArrayLike,
    proneness: npt.ArrayLike,
    rest_n: npt.ArrayLike | None = None,
) -> FloatArray:
    """Each arm's requests per window weighted by its units' ``proneness``, scaled so the
    window's total stays its requests: ``(..., 2, W)`` (stable, candidate). With these in
    place of the requests, the split-of-events test's share of a window is the share of
    its expected events (a heavy, error-prone user on one arm moves the share, not the
    verdict) and a rate is per expected event; with every ``x`` 1 they are the requests."""
    n_ = np.asarray(n, dtype=np.float64)
    cand = _arms(on_candidate, n_.shape)
    e_ = n_ * _proneness(proneness, n_.shape)
    rn = _rest(rest_n, n_.shape)
    e_c = np.where(cand, e_, 0.0).sum(axis=-1) + rn[..., 1, :]
    e_s = np.where(cand, 0.0, e_).sum(axis=-1) + rn[..., 0, :]
    n_c = np.where(cand, n_, 0.0).sum(axis=-1) + rn[..., 1, :]
    n_s = np.where(cand, 0.0, n_).sum(axis=-1) + rn[..., 0, :]
    e = e_c + e_s
    scale = np.where(e > 0, (n_c + n_s) / np.where(e > 0, e, 1.0), 1.0)
    out: FloatArray = np.stack([e_s * scale, e_c * scale], axis=-2)
    return out


def proneness(k: npt.ArrayLike, n: npt.ArrayLike) -> FloatArray:
    """Each unit's rate relative to all units', from its ``k`` events in ``n`` requests
    before the rollout (shape ``(..., U)``), shrunk toward 1 by empirical Bayes: the
    units' rates taken as Gamma-distributed around the pooled rate ``p`` with the spread
    ``tau^2`` that the observed spread has beyond the binomial's (method of moments), each
    unit's posterior mean ``(k + p^2 / tau^2) / (n + p / tau^2)`` over ``p`` (the
    Gamma-Poisson model; e.g. Efron & Morris 1975 on shrinkage). A unit with no requests,
    and every unit when the units do not differ beyond chance, gets 1."""
    k_, n_ = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    total_n = n_.sum(axis=-1, keepdims=True)
    total_k = k_.sum(axis=-1, keepdims=True)
    p = np.where(total_n > 0, total_k / np.maximum(total_n, 1.0), 0.0)
    seen = n_ > 0
    rate = np.where(seen, k_ / np.where(seen, n_, 1.0), p)
    units = seen.sum(axis=-1, keepdims=True)
    spread = (n_ * (rate - p) ** 2).sum(axis=-1, keepdims=True)
    expected = np.maximum(units - 1, 0) * p * (1.0 - p)
    denom = total_n - (n_ * n_).sum(axis=-1, keepdims=True) / np.maximum(total_n, 1.0)
    tau2 = np.where(denom > 0, (spread - expected) / np.where(denom > 0, denom, 1.0), 0.0)
    differ = (tau2 > 0) & (p > 0)
    safe_tau2 = np.where(differ, tau2, 1.0)
    safe_p = np.where(differ, p, 1.0)
    posterior = (k_ + safe_p**2 / safe_tau2) / (n_ + safe_p / safe_tau2)
    out: FloatArray = np.where(differ, posterior / safe_p, 1.0)
    return out


def _arms(on_candidate: npt.ArrayLike, shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    cand = np.asarray(on_candidate, dtype=bool)
    if cand.ndim < len(shape):
        cand = cand[..., None, :]
    return np.broadcast_to(cand, shape)


def _proneness(x: npt.ArrayLike | None, shape: tuple[int, ...]) -> FloatArray:
    if x is None:
        return np.ones(shape)
    out = np.asarray(x, dtype=np.float64)[..., None, :]  # the same in every window
    return np.broadcast_to(out, shape)


def _rest(rest: npt.ArrayLike | None, shape: tuple[int, ...]) -> FloatArray:
    lead = shape[:-1]
    if rest is None:
        return np.zeros((*lead[:-1], 2, *lead[-1:]))
    return np.asarray(rest, dtype=np.float64)
