"""Always-valid comparisons of means and paired differences: the one-sided normal mixture."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from trimtab.stats.intervals import (
    FloatArray,
    binary_contrast,
    mean_contrast,
    mixture_rho,
    normal_mixture_log_e,
)
from trimtab.stats.sequential import (
    Direction,
    MetricResult,
    Tolerance,
    _as_windows,
    _check_alphas,
    _confidence_bounds,
    _verdict,
)

__all__ = [
    "compare_differences",
    "compare_means",
    "difference_evidence",
    "mean_evidence",
]


def mean_evidence(
    n_candidate: npt.ArrayLike,
    sum_candidate: npt.ArrayLike,
    sq_candidate: npt.ArrayLike,
    n_stable: npt.ArrayLike,
    sum_stable: npt.ArrayLike,
    sq_stable: npt.ArrayLike,
    *,
    sign: float,
    coef: float,
    offset: float,
    rho_regression: float,
    rho_pass: float,
    min_samples: int = 10,
    dispersion: npt.ArrayLike = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """Vectorised ``(log_e_regression, log_e_pass)`` of the normal-mixture test.

    The contrast is ``theta = sign (mu_c - coef mu_s) - offset``; ``theta > 0`` is a
    regression beyond the margin. Arrays of shape ``(..., windows)``.
    Until both arms have ``min_samples`` observations both log e-values are 0. The
    variance is multiplied by ``dispersion`` (shape ``(...)``, floored at 1): the design
    effect of observations clustered by user (:mod:`trimtab.stats.clustered`).
    """
    theta, sigma2, n_c = mean_contrast(
        n_candidate, sum_candidate, sq_candidate, n_stable, sum_stable, sq_stable, coef
    )
    sigma2 = sigma2 * np.maximum(np.asarray(dispersion, dtype=np.float64), 1.0)
    n_s = np.asarray(n_stable, dtype=np.float64).sum(axis=-1)
    return _mixture_pair(
        theta, sigma2, n_c, n_s, sign, offset, rho_regression, rho_pass, min_samples
    )


def _mixture_pair(
    theta: FloatArray,
    sigma2: FloatArray,
    n_c: FloatArray,
    n_s: FloatArray,
    sign: float,
    offset: float,
    rho_regression: float,
    rho_pass: float,
    min_samples: int,
) -> tuple[FloatArray, FloatArray]:
    worse = sign * theta - offset
    # With no variance at all (every value the same in each arm) a difference is decisive,
    # and a candidate equal to its margin (all costs 0 in both arms, say) is no worse.
    worse = np.where((sigma2 <= 0.0) & (worse == 0.0), -1.0, worse)
    s = np.clip(n_c * worse / np.sqrt(np.maximum(sigma2, 1e-300)), -1e100, 1e100)
    ready = (n_c >= min_samples) & (n_s >= min_samples)
    reg = np.where(ready, normal_mixture_log_e(s, n_c, rho_regression), 0.0)
    ok = np.where(ready, normal_mixture_log_e(-s, n_c, rho_pass), 0.0)
    return reg, ok


def difference_evidence(
    k_candidate: npt.ArrayLike,
    n_candidate: npt.ArrayLike,
    k_stable: npt.ArrayLike,
    n_stable: npt.ArrayLike,
    *,
    sign: float,
    coef: float,
    offset: float,
    rho_regression: float,
    rho_pass: float,
    min_samples: int = 10,
    dispersion: npt.ArrayLike = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """Vectorised ``(log_e_regression, log_e_pass)`` of the normal-mixture test on a
    difference of rates (its variance times ``dispersion``, the design effect of requests
    clustered by user), ``theta = sign (p_c - coef p_s) - offset``, with the score-type
    variance at the margin (:func:`~trimtab.stats.intervals.binary_contrast`). Arrays of
    shape ``(..., windows)``. This is the test of a rate with an absolute margin (rare
    events: errors, refusals): non-inferiority by at most ``offset`` in absolute terms."""
    theta, sigma2, n_c = binary_contrast(
        k_candidate, n_candidate, k_stable, n_stable, coef, sign * offset
    )
    sigma2 = sigma2 * np.maximum(np.asarray(dispersion, dtype=np.float64), 1.0)
    n_s = np.asarray(n_stable, dtype=np.float64).sum(axis=-1)
    return _mixture_pair(
        theta, sigma2, n_c, n_s, sign, offset, rho_regression, rho_pass, min_samples
    )


def compare_means(
    metric: str,
    n_candidate: npt.ArrayLike,
    sum_candidate: npt.ArrayLike,
    sq_candidate: npt.ArrayLike,
    n_stable: npt.ArrayLike,
    sum_stable: npt.ArrayLike,
    sq_stable: npt.ArrayLike,
    *,
    direction: Direction = Direction.HIGHER_IS_WORSE,
    tolerance: Tolerance = Tolerance(),
    alpha: float = 0.01,
    alpha_pass: float = 0.05,
    design_n: float = 1000.0,
    pass_design_n: float = 2000.0,
    min_samples: int = 10,
    required: bool = False,
    dispersion: float = 1.0,
) -> MetricResult:
    """Compare means from sufficient statistics (count, sum, sum of squares per window);
    ``dispersion`` is the design effect of clustered observations (:func:`mean_evidence`)."""
    _check_alphas(alpha, alpha_pass)
    arrays = [
        _as_windows(x)
        for x in (n_candidate, sum_candidate, sq_candidate, n_stable, sum_stable, sq_stable)
    ]
    nc, sc, qc, ns, ss, qs = arrays
    if len({a.shape for a in arrays}) != 1:
        raise ValueError("windows of candidate and stable must line up")
    if np.any(nc < 0) or np.any(ns < 0):
        raise ValueError("counts must be >= 0")
    rho_reg = mixture_rho(design_n, alpha)
    rho_ok = mixture_rho(pass_design_n, alpha_pass)

    def evidence(c: float, off: float) -> tuple[float, float]:
        reg, ok = mean_evidence(
            nc, sc, qc, ns, ss, qs, sign=direction.sign, coef=c, offset=off,
            rho_regression=rho_reg, rho_pass=rho_ok, min_samples=min_samples,
            dispersion=dispersion,
        )  # fmt: skip
        return float(reg), float(ok)

    def spread(c: float, off: float) -> tuple[float, float]:
        theta, sigma2, _ = mean_contrast(nc, sc, qc, ns, ss, qs, c)
        return float(theta), float(sigma2) * max(dispersion, 1.0)

    return _compare_normal(
        metric, evidence, spread, (nc, sc, ns, ss), direction, tolerance, alpha, alpha_pass,
        min_samples, required, "one-sided normal mixture (difference of means)",
    )  # fmt: skip


def compare_differences(
    metric: str,
    k_candidate: npt.ArrayLike,
    n_candidate: npt.ArrayLike,
    k_stable: npt.ArrayLike,
    n_stable: npt.ArrayLike,
    *,
    direction: Direction = Direction.HIGHER_IS_WORSE,
    tolerance: Tolerance = Tolerance(),
    alpha: float = 0.01,
    alpha_pass: float = 0.05,
    design_n: float = 1000.0,
    pass_design_n: float = 2000.0,
    min_samples: int = 10,
    required: bool = False,
    dispersion: float = 1.0,
) -> MetricResult:
    """Compare event rates on their difference, ``p_c - (1 + relative) p_s`` against the
    absolute margin: the normal mixture with the score-type variance at the margin
    (:func:`difference_evidence`). For rare events, whose rate ratio is slow to bound."""
    _check_alphas(alpha, alpha_pass)
    kc, nc = _as_windows(k_candidate), _as_windows(n_candidate)
    ks, ns = _as_windows(k_stable), _as_windows(n_stable)
    if not (kc.shape == nc.shape == ks.shape == ns.shape):
        raise ValueError("windows of candidate and stable must line up")
    if np.any(kc < 0) or np.any(ks < 0) or np.any(kc > nc) or np.any(ks > ns):
        raise ValueError("need 0 <= events <= requests")
    rho_reg = mixture_rho(design_n, alpha)
    rho_ok = mixture_rho(pass_design_n, alpha_pass)

    def evidence(c: float, off: float) -> tuple[float, float]:
        reg, ok = difference_evidence(
            kc, nc, ks, ns, sign=direction.sign, coef=c, offset=off,
            rho_regression=rho_reg, rho_pass=rho_ok, min_samples=min_samples,
            dispersion=dispersion,
        )  # fmt: skip
        return float(reg), float(ok)

    def spread(c: float, off: float) -> tuple[float, float]:
        theta, sigma2, _ = binary_contrast(kc, nc, ks, ns, c, direction.sign * off)
        return float(theta), float(sigma2) * max(dispersion, 1.0)

    return _compare_normal(
        metric, evidence, spread, (nc, kc, ns, ks), direction, tolerance, alpha, alpha_pass,
        min_samples, required, "one-sided normal mixture, score variance (difference of rates)",
    )  # fmt: skip


def _compare_normal(
    metric: str,
    evidence: Callable[[float, float], tuple[float, float]],
    spread: Callable[[float, float], tuple[float, float]],
    sums: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    direction: Direction,
    tolerance: Tolerance,
    alpha: float,
    alpha_pass: float,
    min_samples: int,
    required: bool,
    method: str,
) -> MetricResult:
    """Verdict and confidence sequence of a normal-mixture comparison; ``evidence(coef,
    offset)`` gives both log e-values at a margin, ``sums`` are ``(n_c, sum_c, n_s, sum_s)``
    per window."""
    nc, sc, ns, ss = sums
    g = direction.sign
    coef = tolerance.coef(direction)
    le_reg, le_ok = evidence(coef, tolerance.absolute)
    n_c, n_s = float(nc.sum()), float(ns.sum())
    m_c = float(sc.sum()) / n_c if n_c else None
    m_s = float(ss.sum()) / n_s if n_s else None
    ready = n_c >= min_samples and n_s >= min_samples
    l_reg, l_ok = math.log(1.0 / alpha), math.log(1.0 / alpha_pass)
    # Evidence that the quantity is above / below x, in "higher" orientation.
    up_l, down_l = (l_reg, l_ok) if g > 0 else (l_ok, l_reg)

    def above(x: float, kind: str) -> bool:
        c, off = (x, 0.0) if kind == "ratio" else (coef, x)
        reg, ok = evidence(c, g * off)
        return (reg if g > 0 else ok) >= up_l

    def below(x: float, kind: str) -> bool:
        c, off = (x, 0.0) if kind == "ratio" else (coef, x)
        reg, ok = evidence(c, g * off)
        return (ok if g > 0 else reg) >= down_l

    if tolerance.absolute == 0.0:
        kind = "ratio"
        estimate = m_c / m_s if m_c is not None and m_s else None
        margin = coef
        lo_x, hi_x = 0.0, 1e6
    else:
        kind = "difference"
        estimate = m_c - coef * m_s if m_c is not None and m_s is not None else None
        margin = g * tolerance.absolute
        theta, sigma2 = spread(coef, tolerance.absolute)
        scale = abs(theta) + math.sqrt(max(sigma2, 0.0)) + 1.0
        lo_x, hi_x = -1e6 * scale, 1e6 * scale
    found = (
        _confidence_bounds(lambda x: above(x, kind), lambda x: below(x, kind), lo_x, hi_x)
        if ready
        else (None, None)
    )
    lower = (-math.inf if kind == "difference" else 0.0) if found[0] is None else found[0]
    upper = math.inf if found[1] is None else found[1]
    return MetricResult(
        metric=metric,
        verdict=_verdict(le_reg, le_ok, alpha, alpha_pass),
        direction=direction,
        method=method,
        n_stable=n_s,
        n_candidate=n_c,
        stable_value=m_s,
        candidate_value=m_c,
        estimate_kind=kind,
        estimate=estimate,
        lower=lower,
        upper=upper,
        margin=margin,
        log_e_regression=le_reg,
        log_e_pass=le_ok,
        threshold_regression=l_reg,
        threshold_pass=l_ok,
        alpha=alpha,
        alpha_pass=alpha_pass,
        required=required,
        note="" if ready else f"needs {min_samples} samples per arm",
    )
