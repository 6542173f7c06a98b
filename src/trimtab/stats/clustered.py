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

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trimtab.stats.intervals import FloatArray
from trimtab.stats.student import t_widening

__all__ = [
    "MIN_HISTORY_UNITS",
    "MIN_UNITS",
    "NO_EVIDENCE",
    "RegressionDesign",
    "adjusted_proneness",
    "design_effect",
    "effective_clusters",
    "exposures",
    "history_coefficient",
    "majority_arm",
    "model_design_effect",
    "proneness",
    "regression_design_effect",
]

# The sandwich variance needs enough units to be believed (Cameron & Miller, "A
# practitioner's guide to cluster-robust inference", J. Human Resources 2015: with few
# clusters it is biased low); until each arm has this many, the clustered tests say nothing.
MIN_UNITS = 20
NO_EVIDENCE = 1e12  # the design effect returned then: every log e-value divided away
# Below this many units seen both before and during the rollout, the history coefficient
# is not estimated: it is 0, and the history is ignored (history_coefficient).
MIN_HISTORY_UNITS = 50


def design_effect(
    k: npt.ArrayLike,
    n: npt.ArrayLike,
    on_candidate: npt.ArrayLike,
    rest_k: npt.ArrayLike | None = None,
    rest_n: npt.ArrayLike | None = None,
    proneness: npt.ArrayLike | None = None,
    *,
    squares: npt.ArrayLike | None = None,
    rest_squares: npt.ArrayLike | None = None,
    centre: str = "pooled",
) -> FloatArray:
    """``D >= 1`` of the stratified difference of rates ``sum_w (n_cw / n_c)(p_cw - p_sw)``,
    or of means.

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

    ``proneness`` (``(..., U)``, from :func:`adjusted_proneness`) is each unit's expected
    rate relative to the others', predicted from before the rollout: the residuals are then
    taken against the pooled rate times it (a unit's requests weigh as ``n x`` exposures),
    so the spread the covariate
    explains is no longer noise — the variance reduction of a pre-period covariate (CUPED:
    Deng, Xu, Kohavi, Walker, "Improving the sensitivity of online controlled experiments
    by utilizing pre-experiment data", WSDM 2013), as an offset whose coefficient CUPED
    estimates (:func:`history_coefficient`). Pair it with
    :func:`exposures`, which gives the tests the arms' requests on the same scale.

    ``squares`` (and ``rest_squares``) make it the design effect of a difference of means
    (cost per request, log latency): ``k`` is then each unit's sum of the quantity and
    ``squares`` its sum of squares, and the per-request variance is ``sum (y - mean)^2``.
    For a rate the squares are the events (``y`` is 0 or 1), the default. The cluster
    variance is then the linearised (delta method) variance of the ratio estimator of each
    arm's mean, summed per cluster (Deng et al. 2017).

    ``centre`` is what the residuals are taken against. ``"pooled"``: the window's pooled
    rate or mean, the value under the null of no difference, as a score test takes it; a
    candidate that differs then reads as spread, so ``D`` grows with the difference itself
    (a shift of every candidate user's latency by 25 % adds the shift times each user's
    requests to its residual). ``"arms"``: each unit against the rest of its own arm in the
    window, leaving it out (its residual from the arm's mean over ``1 - h``, ``h`` its share
    of the arm's requests: the jackknife's CR3, Bell & McCaffrey, "Bias reduction in
    standard errors for linear regression with multi-stage samples", Survey Methodology
    2002), so a difference between the arms is not spread, and a unit that is most of its
    arm (a heavy user early in a rollout) is still measured against the others, not
    against a mean it makes itself; ``h`` is capped at 0.95. The controller takes
    ``"arms"`` for means, and for rates ``"pooled"`` on the pass side and
    :func:`regression_design_effect` on the regression side (docs/canary.md, "Sticky
    users").
    """
    got = _influence(k, n, on_candidate, rest_k, rest_n, proneness, squares, rest_squares, centre)
    return _ratio(got)


def effective_clusters(
    k: npt.ArrayLike,
    n: npt.ArrayLike,
    on_candidate: npt.ArrayLike,
    proneness: npt.ArrayLike | None = None,
    *,
    rest_k: npt.ArrayLike | None = None,
    rest_n: npt.ArrayLike | None = None,
    squares: npt.ArrayLike | None = None,
    centre: str = "pooled",
) -> FloatArray:
    """How many units the cluster variance of :func:`design_effect` rests on: its
    Satterthwaite degrees of freedom ``(sum psi_j^2)^2 / sum psi_j^4``, ``psi_j`` each
    unit's influence (the arguments are :func:`design_effect`'s; each request not broken
    down, ``rest_k`` / ``rest_n``, is a unit of its own, as there). With ``G`` units of
    equal influence it is ``G``; with one unit dominating, near 1: the variance is then one
    squared residual, and ``D`` as noisy as a chi-square on one degree of freedom (Kish's
    effective sample size of the variance's terms; Satterthwaite, Biometrics Bulletin 1946).
    Shape ``(...)``; 0 where no unit has an influence, NaN for a mean (``squares``) with
    requests not broken down, whose fourth moments are not kept."""
    got = _influence(k, n, on_candidate, rest_k, rest_n, proneness, squares, None, centre)
    return _dof(got.square_terms, got.fourth_terms)


@dataclass(frozen=True, slots=True)
class RegressionDesign:
    """:func:`regression_design_effect`'s answer: the design effect ``d`` and the effective
    units ``units`` its variance rests on (:func:`effective_clusters` against the arms),
    both of shape ``(...)``."""

    d: FloatArray
    units: FloatArray


def regression_design_effect(
    k: npt.ArrayLike,
    n: npt.ArrayLike,
    on_candidate: npt.ArrayLike,
    rest_k: npt.ArrayLike | None = None,
    rest_n: npt.ArrayLike | None = None,
    proneness: npt.ArrayLike | None = None,
    *,
    alpha: float,
) -> RegressionDesign:
    """The design effect a rate's regression test takes: :func:`design_effect` against
    each unit's own arm (``centre="arms"``), widened for the few units its variance rests
    on by ``t_widening(df_units) / t_widening(df_requests)``, at least 1
    (:func:`trimtab.stats.student.t_widening` at the test's ``alpha``): ``df_units`` is
    :func:`effective_clusters`, ``df_requests`` the same with every request its own term
    (about the number of events, for a rare one).

    A sandwich variance from few effective units is itself noisy, and a plug-in ``D`` that
    comes out low by chance is what calls a false regression; the t reference on
    Satterthwaite's degrees of freedom is the small-sample correction of cluster-robust
    tests (Bell & McCaffrey 2002; Imbens & Kolesar, "Robust standard errors in small
    samples", REStat 2016). The per-request test is already held at ``alpha`` with
    independent requests (tests/canary/test_error_control.py), so the widening is only what
    the clustering takes beyond it: with independent requests (every user one request, or
    none named) the two degrees of freedom are the same and ``D`` is about 1. Against the
    arms, a candidate that errs more is not read as spread, which the widening would
    otherwise compound. The pass test keeps :func:`design_effect` against the pooled rate,
    whose larger ``D`` under a difference is what holds it to ``alpha_pass``
    (docs/canary.md, "Sticky users"). Arguments as :func:`design_effect`'s;
    :data:`NO_EVIDENCE` while an arm has fewer than :data:`MIN_UNITS` units. The answer
    carries ``df_units`` too, which a decision's note names."""
    got = _influence(k, n, on_candidate, rest_k, rest_n, proneness, None, None, "arms")
    d = _ratio(got)
    df_units = _dof(got.square_terms, got.fourth_terms)
    units = t_widening(df_units, alpha)
    requests = t_widening(_dof(got.request_squares, got.request_fourths), alpha)
    out: FloatArray = np.where(d >= NO_EVIDENCE, d, d * np.maximum(units / requests, 1.0))
    return RegressionDesign(out, df_units)


def _ratio(got: _Influence) -> FloatArray:
    """:func:`design_effect` from the influences."""
    v_c, v_b = got.v_cluster, got.v_binomial
    ratio = np.where(v_b > 0, v_c / np.where(v_b > 0, v_b, 1.0), 1.0)
    few = got.units < MIN_UNITS
    out: FloatArray = np.where(few, NO_EVIDENCE, np.maximum(ratio, 1.0))
    return out


def _dof(squares: FloatArray, fourths: FloatArray) -> FloatArray:
    """Satterthwaite's ``(sum a)^2 / sum a^2`` from the terms' sums of squares and fourth
    powers; 0 where there are none, NaN where the fourth powers are not known."""
    none = np.where(np.isnan(fourths), np.nan, 0.0)
    out: FloatArray = np.where(fourths > 0, squares**2 / np.where(fourths > 0, fourths, 1.0), none)
    return out


def model_design_effect(
    k: npt.ArrayLike,
    n: npt.ArrayLike,
    on_candidate: npt.ArrayLike,
    proneness: npt.ArrayLike | None = None,
) -> FloatArray:
    """``D >= 1`` of :func:`design_effect`'s rate difference from a model of the units,
    not from each unit's own squared residual: each unit's events are Poisson at its arm's
    rate in the window times its exposures times a multiplier of mean 1 and variance
    ``tau^2`` (the overdispersion the covariate leaves). ``tau^2`` is estimated over all
    units by moments, ``sum a (r^2 - m) / sum a m^2`` over each unit's residual ``r`` and
    expected events ``m``, weighted by the estimating equation's optimal
    ``a = m^2 / Var(r^2)``, ``Var(r^2) ~ m + 2 v^2`` with ``v = m + m^2 tau^2`` (a Poisson
    count's fourth moment, plus the overdispersion), iterated twice from ``tau^2 = 0``: a
    light unit's Poisson noise and a heavy unit's one residual weigh little, so neither
    decides it. Each unit's variance is then ``sum_w c_w^2 m_w + tau^2 (sum_w c_w m_w)^2``
    with its influence weights ``c``. Measured in the simulation only; the controller does
    not take it (docs/canary.md, "Sticky users"). Arguments as :func:`design_effect`'s;
    :data:`NO_EVIDENCE` while an arm has fewer than :data:`MIN_UNITS` units."""
    got = _influence(k, n, on_candidate, None, None, proneness, None, None)
    # expected events per unit per window at its arm's own rate (the variance component is
    # the units' spread around their arm's, so a candidate that differs does not read as
    # overdispersion)
    own = np.where(got.on_candidate, got.rate_c[..., None], got.rate_s[..., None])
    m_w = own * got.exposures
    m = m_w.sum(axis=-2)  # (..., U)
    r = (np.asarray(k, dtype=np.float64) - m_w).sum(axis=-2)
    tau2 = np.zeros(m.shape[:-1])
    for _ in range(3):  # at tau^2 = 0, then twice with the weights of the last estimate
        v = m + m * m * tau2[..., None]  # a unit's variance of its events
        w = m * m / np.maximum(m + 2.0 * v * v, 1e-300)  # slope / Var(r^2)
        top = (w * (r * r - m)).sum(axis=-1)
        bottom = (w * m * m).sum(axis=-1)
        tau2 = np.maximum(np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), 0.0), 0.0)
    c = got.weights  # (..., W, U): each unit's influence weight per window
    v_poisson = (c * c * m_w).sum(axis=(-2, -1))
    v_model = v_poisson + tau2 * ((c * m_w).sum(axis=-2) ** 2).sum(axis=-1)
    ratio = np.where(v_poisson > 0, v_model / np.where(v_poisson > 0, v_poisson, 1.0), 1.0)
    out: FloatArray = np.where(got.units < MIN_UNITS, NO_EVIDENCE, np.maximum(ratio, 1.0))
    return out


@dataclass(frozen=True)
class _Influence:
    psi: FloatArray  # each unit's influence on the estimate, (..., U)
    v_cluster: FloatArray  # the sandwich variance (small-sample scaled), (...)
    v_binomial: FloatArray  # the same residuals with every request its own unit, (...)
    units: FloatArray  # the units of the arm with fewer, (...)
    weights: FloatArray  # each unit's influence weight per window, (..., W, U)
    exposures: FloatArray  # each unit's requests as exposures, n x, (..., W, U)
    on_candidate: npt.NDArray[np.bool_]  # each unit's arm per window, (..., W, U)
    rate_c: FloatArray  # the candidate's own rate per window, (..., W)
    rate_s: FloatArray  # stable's, (..., W)
    # sums over the cluster variance's terms (units, and each request not broken down) of
    # their square and fourth power, unscaled, (...); a mean's fourth powers are NaN where
    # it has requests not broken down (their fourth moments are not kept)
    square_terms: FloatArray
    fourth_terms: FloatArray
    # the same over every request as its own term, (...): the fourth powers NaN for a mean
    request_squares: FloatArray
    request_fourths: FloatArray


def _influence(
    k: npt.ArrayLike,
    n: npt.ArrayLike,
    on_candidate: npt.ArrayLike,
    rest_k: npt.ArrayLike | None,
    rest_n: npt.ArrayLike | None,
    proneness: npt.ArrayLike | None,
    squares: npt.ArrayLike | None,
    rest_squares: npt.ArrayLike | None,
    centre: str = "pooled",
) -> _Influence:
    """What :func:`design_effect`, :func:`effective_clusters` and
    :func:`model_design_effect` take from the units."""
    k_, n_ = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    cand = _arms(on_candidate, k_.shape)
    x = _proneness(proneness, k_.shape)
    e_ = n_ * x  # each unit's requests as exposures: n x
    rk, rn = _rest(rest_k, k_.shape), _rest(rest_n, k_.shape)
    sq_ = k_ if squares is None else np.asarray(squares, dtype=np.float64)
    rq = rk if rest_squares is None else _rest(rest_squares, k_.shape)
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
    if centre == "arms":
        p_c, p_s = k_c / safe_c, k_s / safe_s
    elif centre != "pooled":
        raise ValueError(f"centre must be 'pooled' or 'arms', not {centre!r}")
    total_c = np.where(both, n_c, 0.0).sum(axis=-1, keepdims=True)
    total = np.maximum(total_c, 1.0)
    # each unit's influence on the estimate, summed over the windows it was seen in
    w_c = np.where(both, 1.0 / total, 0.0)  # (n_cw / n_c) / n_cw
    w_s = np.where(both, -(n_c / total) / safe_s, 0.0)
    p_arm = np.where(cand, p_c[..., None], p_s[..., None])
    weight = np.where(cand, w_c[..., None], w_s[..., None])
    resid = k_ - p_arm * e_
    if centre == "arms":
        # each unit against the rest of its arm in the window (leave one out: its residual
        # over 1 - h, h its share of the arm's exposures), so a unit that is most of its arm
        # is not measured against itself
        arm_n = np.where(cand, n_c[..., None], n_s[..., None])
        h = np.where(arm_n > 0, e_ / np.where(arm_n > 0, arm_n, 1.0), 0.0)
        resid = resid / np.maximum(1.0 - h, 0.05)
    psi = (weight * resid).sum(axis=-2)  # (..., U)
    seen = n_.sum(axis=-2) > 0
    units_c = ((n_ > 0) & cand).any(axis=-2).sum(axis=-1) + rn[..., 1, :].sum(axis=-1)
    units_s = ((n_ > 0) & ~cand).any(axis=-2).sum(axis=-1) + rn[..., 0, :].sum(axis=-1)
    units = seen.sum(axis=-1)
    v_cluster = (psi * psi).sum(axis=-1)
    # every request its own unit: sum of (y - p x)^2 over its requests, in closed form
    # (for a rate y^2 = y: squares are the events)
    px = p_arm * x
    v_binomial = (weight * weight * (sq_ - 2.0 * px * k_ + px * px * n_)).sum(axis=(-2, -1))
    fourth = (psi**4).sum(axis=-1)
    # a rate's requests each as its own term: k of them at (1 - p x), the rest at -p x
    request_fourths = (weight**4 * (k_ * (1.0 - px) ** 4 + (n_ - k_) * px**4)).sum(axis=(-2, -1))
    # requests not broken down: one unit each (x = 1), in both variances
    for arm, p, w in ((1, p_c, w_c), (0, p_s, w_s)):
        kk, nn, qq = rk[..., arm, :], rn[..., arm, :], rq[..., arm, :]
        rest = (w * w * (qq - 2.0 * p * kk + p * p * nn)).sum(axis=-1)
        rest4 = (w**4 * (kk * (1.0 - p) ** 4 + (nn - kk) * p**4)).sum(axis=-1)
        v_cluster = v_cluster + rest
        v_binomial = v_binomial + rest
        fourth = fourth + rest4
        request_fourths = request_fourths + rest4
        units = units + nn.sum(axis=-1)
    square_terms = v_cluster
    if squares is not None:  # a mean: its requests' fourth moments are not kept
        request_fourths = np.full(fourth.shape, np.nan)
        fourth = np.where(rn.sum(axis=(-2, -1)) > 0, np.nan, (psi**4).sum(axis=-1))
    g = np.maximum(units, 2.0)
    v_cluster = v_cluster * g / (g - 1.0)
    # each arm's own rate per window (not the pooled one the residuals take)
    own_c = np.where(n_c > 0, k_c / np.where(n_c > 0, n_c, 1.0), 0.0)
    own_s = np.where(n_s > 0, k_s / np.where(n_s > 0, n_s, 1.0), 0.0)
    units_min = np.minimum(units_c, units_s)
    return _Influence(
        psi, v_cluster, v_binomial, units_min, weight, e_, cand, own_c, own_s,
        square_terms, fourth, v_binomial, request_fourths,
    )  # fmt: skip


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


def history_coefficient(
    k: npt.ArrayLike,
    n: npt.ArrayLike,
    x: npt.ArrayLike,
    known: npt.ArrayLike,
    arm: npt.ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """CUPED's coefficient ``theta = cov(pre, post) / var(pre)`` over units, and the units
    it was estimated from: ``(theta, units)``, each of shape ``(...)``.

    ``k`` and ``n`` are each unit's events and requests during the rollout (all windows),
    shape ``(..., U)``; ``x`` its :func:`proneness` before the rollout; ``known`` the units
    that had requests before it; ``arm`` (``(..., U)``, :func:`majority_arm`) the arm each
    is judged in. The fit is the least-squares fit of the counts ``k`` by
    ``p_g n (1 + theta (x - 1))`` with Poisson weights (a unit's rate is as precise as its
    requests), ``p_g`` each arm's own rate at ``x = 1``: in closed form
    ``sum_g sum (x - xbar_g) k / sum_g a_g sum n (x - xbar_g)^2``, with ``xbar_g`` the
    arm's request-weighted mean history and ``a_g = p_g - slope_g (xbar_g - 1)`` its
    fitted rate at ``x = 1``. Within the arms: pooled over them, a candidate that differs
    leaks into ``theta`` whenever its units' histories happen to differ from stable's (a
    few heavy users decide that), and a worse candidate that drew the error-prone users
    gets a ``theta`` too high, which credits it with more expected events and makes it
    look better than it is. Without ``arm``, all units are one group.

    ``theta`` is clipped to ``[0, 1]``: a history that predicts nothing (or whose estimate
    is negative, noise in this model) is ignored, and one is never trusted beyond face
    value (the shrunk rate itself, :func:`proneness`). It is 0 with fewer than
    :data:`MIN_HISTORY_UNITS` known units seen in the rollout, and when the known units do
    not differ before it."""
    k_, n_ = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    x_ = np.asarray(x, dtype=np.float64)
    use = np.asarray(known, dtype=bool) & (n_ > 0)
    units = use.sum(axis=-1).astype(np.float64)
    groups = [use]
    if arm is not None:
        cand = _arms(arm, use.shape)
        groups = [use & cand, use & ~cand]
    cov = np.zeros(units.shape)
    denom = np.zeros(units.shape)
    for group in groups:
        w = np.where(group, n_, 0.0)
        safe_n = np.maximum(w.sum(axis=-1), 1.0)
        p = np.where(group, k_, 0.0).sum(axis=-1) / safe_n
        x_bar = (w * x_).sum(axis=-1) / safe_n
        dx = np.where(group, x_ - x_bar[..., None], 0.0)
        var_g = (w * dx * dx).sum(axis=-1)
        cov_g = (dx * np.where(group, k_, 0.0)).sum(axis=-1)
        # the group's rate at x = 1 (the fit's p), not at its own mean history x_bar
        slope = np.where(var_g > 0, cov_g / np.where(var_g > 0, var_g, 1.0), 0.0)
        denom = denom + (p - slope * (x_bar - 1.0)) * var_g
        cov = cov + cov_g
    ok = (units >= MIN_HISTORY_UNITS) & (denom > 0)
    theta = np.where(ok, cov / np.where(ok, denom, 1.0), 0.0)
    out: FloatArray = np.clip(theta, 0.0, 1.0)
    return out, units


def majority_arm(n: npt.ArrayLike, on_candidate: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Each unit's arm for :func:`history_coefficient`: the candidate where most of its
    requests ``n`` (``(..., W, U)``) were, ``on_candidate`` per unit or per window."""
    n_ = np.asarray(n, dtype=np.float64)
    cand = _arms(on_candidate, n_.shape)
    out: npt.NDArray[np.bool_] = 2.0 * np.where(cand, n_, 0.0).sum(axis=-2) > n_.sum(axis=-2)
    return out


def adjusted_proneness(x: npt.ArrayLike, theta: npt.ArrayLike) -> FloatArray:
    """The covariate the tests take: ``1 + theta (x - 1)`` for each unit (``x`` of shape
    ``(..., U)``, ``theta`` of shape ``(...)``): the rollout rate a unit's history predicts,
    by :func:`history_coefficient`'s regression."""
    x_ = np.asarray(x, dtype=np.float64)
    t = np.asarray(theta, dtype=np.float64)[..., None]
    out: FloatArray = 1.0 + t * (x_ - 1.0)
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
