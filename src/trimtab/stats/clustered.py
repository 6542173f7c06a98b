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

__all__ = ["MIN_UNITS", "NO_EVIDENCE", "design_effect"]

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
) -> FloatArray:
    """``D >= 1`` of the stratified difference of rates ``sum_w (n_cw / n_c)(p_cw - p_sw)``.

    ``k`` and ``n`` are events and requests per unit per window, shape ``(..., W, U)``;
    ``on_candidate`` (``(..., U)``) says each unit's arm (a unit is one user in one arm).
    ``rest_k`` / ``rest_n`` (``(..., 2, W)``: stable, candidate) are requests not broken
    down by unit (no user, or beyond a query's bound), taken as one unit each. Returns
    ``Var_cluster / Var_binomial``, floored at 1 (1 where there is no variance to compare),
    and :data:`NO_EVIDENCE` while either arm has fewer than :data:`MIN_UNITS` units.
    Both variances take the same residuals, against the window's pooled rate, the second
    with every request its own unit: with independent requests ``D`` is about 1 whatever
    the arms' rates are.
    """
    k_, n_ = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    cand = np.asarray(on_candidate, dtype=bool)[..., None, :]
    lead = k_.shape[:-1]
    rk = np.zeros((*lead[:-1], 2, *lead[-1:])) if rest_k is None else np.asarray(rest_k, float)
    rn = np.zeros((*lead[:-1], 2, *lead[-1:])) if rest_n is None else np.asarray(rest_n, float)
    k_c = np.where(cand, k_, 0.0).sum(axis=-1) + rk[..., 1, :]
    n_c = np.where(cand, n_, 0.0).sum(axis=-1) + rn[..., 1, :]
    k_s = np.where(cand, 0.0, k_).sum(axis=-1) + rk[..., 0, :]
    n_s = np.where(cand, 0.0, n_).sum(axis=-1) + rn[..., 0, :]
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
    psi = (weight * (k_ - p_arm * n_)).sum(axis=-2)  # (..., U)
    seen = n_.sum(axis=-2) > 0
    units_c = (seen & cand[..., 0, :]).sum(axis=-1) + rn[..., 1, :].sum(axis=-1)
    units_s = (seen & ~cand[..., 0, :]).sum(axis=-1) + rn[..., 0, :].sum(axis=-1)
    units = seen.sum(axis=-1)
    v_cluster = (psi * psi).sum(axis=-1)
    # requests not broken down: one unit each, sum of (k_i - p n_i)^2 in closed form; and
    # the same over every request as its own unit, the variance independence would give
    v_binomial = np.zeros_like(v_cluster)
    for arm, p, w, kk_all, nn_all in ((1, p_c, w_c, k_c, n_c), (0, p_s, w_s, k_s, n_s)):
        kk, nn = rk[..., arm, :], rn[..., arm, :]
        v_cluster = v_cluster + (w * w * (kk * (1.0 - 2.0 * p) + p * p * nn)).sum(axis=-1)
        v_binomial = v_binomial + (w * w * (kk_all * (1.0 - 2.0 * p) + p * p * nn_all)).sum(-1)
        units = units + nn.sum(axis=-1)
    g = np.maximum(units, 2.0)
    v_cluster = v_cluster * g / (g - 1.0)
    ratio = np.where(v_binomial > 0, v_cluster / np.where(v_binomial > 0, v_binomial, 1.0), 1.0)
    few = np.minimum(units_c, units_s) < MIN_UNITS
    out: FloatArray = np.where(few, NO_EVIDENCE, np.maximum(ratio, 1.0))
    return out
