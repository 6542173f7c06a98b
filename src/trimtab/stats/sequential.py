"""Per-metric always-valid comparisons of a candidate against stable, with a tolerance.

Each comparison runs two one-sided tests at the tolerance's margin, both always valid:

* **regression** rejects ``H0: candidate no worse than the margin`` at level ``alpha``. A
  regression verdict means the candidate is worse than stable by more than the tolerance,
  with confidence ``1 - alpha``, however often the test was looked at.
* **pass** rejects ``H0: candidate at least as bad as the margin`` at level ``alpha_pass``.
  A pass verdict means the candidate is within the tolerance, with confidence
  ``1 - alpha_pass``.

At most one of them can fire on the same data in practice (they test opposite sides of the
same margin); if neither has, the metric is inconclusive. The confidence interval reported
with each result comes from inverting the same two tests over the margin, so
``regression <=> the interval lies beyond the margin`` and ``pass <=> it lies inside``.

Rates with a relative tolerance use the split-of-events test (exact given random traffic
assignment; see :mod:`trimtab.stats.intervals`). Means, and rates with an absolute tolerance,
use the one-sided normal mixture with a plug-in variance (asymptotic).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from trimtab.stats.intervals import (
    FloatArray,
    RatioMixture,
    binary_contrast,
    mean_contrast,
    mixture_rho,
    normal_mixture_log_e,
    split_log_e,
)

__all__ = [
    "Direction",
    "Interval",
    "MetricResult",
    "Tolerance",
    "Verdict",
    "compare_differences",
    "compare_means",
    "compare_rates",
    "difference_evidence",
    "mean_evidence",
    "rate_evidence",
    "rate_mixtures",
]


class Direction(StrEnum):
    """Which way is worse for a metric."""

    HIGHER_IS_WORSE = "higher_is_worse"
    LOWER_IS_WORSE = "lower_is_worse"

    @property
    def sign(self) -> float:
        return 1.0 if self is Direction.HIGHER_IS_WORSE else -1.0


class Verdict(StrEnum):
    REGRESSION = "regression"
    PASS = "pass"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How much worse than stable still counts as acceptable.

    The margin is ``stable * (1 + relative) + absolute`` when higher is worse and
    ``stable * (1 - relative) - absolute`` when lower is worse. Rates take a relative margin
    (the split-of-events test works on rate ratios); an absolute one moves them to the
    normal-approximation test. The split-of-events test learns from the events only, so a
    rate is best stated as the rare outcome (errors, not successes): a lower-is-worse rate
    of a common event is tested validly but slowly.
    """

    relative: float = 0.0
    absolute: float = 0.0

    def __post_init__(self) -> None:
        if not (self.relative >= 0.0 and self.absolute >= 0.0):
            raise ValueError("tolerances must be >= 0")
        if not (math.isfinite(self.relative) and math.isfinite(self.absolute)):
            raise ValueError("tolerances must be finite")

    def coef(self, direction: Direction) -> float:
        """Stable's coefficient in the margin: ``1 + relative`` or ``1 - relative``."""
        c = 1.0 + direction.sign * self.relative
        if c <= 0.0:
            raise ValueError("a relative tolerance on a lower-is-worse metric must be < 1")
        return c


@dataclass(frozen=True, slots=True)
class Interval:
    """Another test's view of the same metric (the regression test, when it runs at a
    tolerance other than the non-inferiority margin): its estimate and confidence sequence
    against its margin, in the units of ``estimate_kind``."""

    method: str
    estimate_kind: str
    estimate: float | None
    lower: float
    upper: float
    margin: float


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric's verdict and the statistics behind it.

    ``log_e_regression >= threshold_regression`` (``= log(1/alpha)``) is what makes a
    regression, ``log_e_pass >= threshold_pass`` a pass. ``estimate``, ``lower`` and
    ``upper`` are in the units of ``estimate_kind``: ``"ratio"`` is candidate over stable (for
    latency: the candidate's rate above ``(1 + relative)`` times the reference over stable's
    rate above the reference); ``"difference"`` is ``candidate - coef * stable`` with
    ``coef`` from the relative tolerance. ``margin`` is the tolerance's boundary in the same
    units. The interval is a confidence sequence: it covers the truth at all times with
    probability at least ``1 - alpha - alpha_pass``.

    ``needed`` (required metrics still waiting) is the canary requests the pass test would
    still need if the current estimates held; None when it cannot pass at them or is not
    waiting. ``rollback`` is the regression test's interval when it runs at a tolerance other
    than ``margin``.
    """

    metric: str
    verdict: Verdict
    direction: Direction
    method: str
    n_stable: float
    n_candidate: float
    stable_value: float | None
    candidate_value: float | None
    estimate_kind: str
    estimate: float | None
    lower: float
    upper: float
    margin: float
    log_e_regression: float
    log_e_pass: float
    threshold_regression: float
    threshold_pass: float
    alpha: float
    alpha_pass: float
    required: bool = False
    note: str = ""
    needed: float | None = None
    rollback: Interval | None = None


def _verdict(log_e_reg: float, log_e_pass: float, alpha: float, alpha_pass: float) -> Verdict:
    if log_e_reg >= math.log(1.0 / alpha):
        return Verdict.REGRESSION
    if log_e_pass >= math.log(1.0 / alpha_pass):
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


def _as_windows(x: npt.ArrayLike) -> FloatArray:
    arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError("expected a number or a flat sequence of windows")
    return arr


def _bisect(pred: Callable[[float], bool], lo: float, hi: float, iters: int = 64) -> float:
    """The boundary between ``pred`` true at ``lo`` and false at ``hi`` (pred monotone)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if pred(mid):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _confidence_bounds(
    above: Callable[[float], bool], below: Callable[[float], bool], lo: float, hi: float
) -> tuple[float | None, float | None]:
    """The ends of a confidence interval, bisected on ``[lo, hi]``.

    ``above(x)``: the evidence that the quantity exceeds ``x`` crosses its threshold
    (true for small ``x``); ``below(x)`` likewise for "less than ``x``". The lower end
    is where ``above`` stops holding, the upper end where ``below`` starts; ``None``
    where even ``lo`` (``hi``) is not rejected: no bound on that side.
    """
    lower = _bisect(above, lo, hi) if above(lo) else None
    upper = _bisect(lambda x: not below(x), lo, hi) if below(hi) else None
    return lower, upper


# --- rates: split of events ---------------------------------------------------------------


def rate_mixtures(
    direction: Direction,
    tolerance: Tolerance,
    *,
    design_ratio: float = 2.0,
    pass_ratio: float | None = None,
    spread: float = 0.35,
    pass_spread: float = 0.6,
) -> tuple[float, RatioMixture, RatioMixture]:
    """``(log psi0, regression mixture, pass mixture)`` for a rate metric.

    ``design_ratio`` (> 1) is the worsening, as a rate ratio beyond the margin, that the
    regression test finds fastest. ``pass_ratio`` (< 1) is the same for the pass test, as a
    ratio to the margin; by default it is where an unchanged candidate sits,
    ``1 / (1 + relative)``, kept at least 10 % from the margin. ``spread`` and
    ``pass_spread`` are the standard deviations of the mixtures in ``log(psi / psi0)``:
    narrower finds effects near the design faster and others more slowly (always validly).
    """
    if design_ratio <= 1.0:
        raise ValueError("design_ratio must be > 1")
    psi0 = tolerance.coef(direction)
    g = direction.sign
    if pass_ratio is None:
        pass_ratio = min(1.0 / psi0, 1.0 / 1.1) if g > 0 else min(psi0, 1.0 / 1.1)
    if not 0.0 < pass_ratio < 1.0:
        raise ValueError("pass_ratio must be in (0, 1)")
    reg = RatioMixture.around(design_ratio if g > 0 else 1.0 / design_ratio, spread=spread)
    ok = RatioMixture.around(pass_ratio if g > 0 else 1.0 / pass_ratio, spread=pass_spread)
    return math.log(psi0), reg, ok


def rate_evidence(
    k_candidate: npt.ArrayLike,
    n_candidate: npt.ArrayLike,
    k_stable: npt.ArrayLike,
    n_stable: npt.ArrayLike,
    *,
    log_psi0: float,
    regression_mixture: RatioMixture,
    pass_mixture: RatioMixture,
    dispersion: npt.ArrayLike = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """Vectorised ``(log_e_regression, log_e_pass)`` of the split-of-events test.

    Arrays of shape ``(..., windows)``; the share of each window is its realised
    ``n_candidate / (n_candidate + n_stable)``. ``dispersion`` (``D >= 1``, shape ``(...)``,
    :mod:`trimtab.stats.clustered`) divides both log e-values: requests clustered by user.
    """
    nc = np.asarray(n_candidate, dtype=np.float64)
    ns = np.asarray(n_stable, dtype=np.float64)
    share = nc / np.maximum(nc + ns, 1.0)
    d = np.maximum(np.asarray(dispersion, dtype=np.float64), 1.0)
    reg = split_log_e(k_candidate, k_stable, share, log_psi0, regression_mixture) / d
    ok = split_log_e(k_candidate, k_stable, share, log_psi0, pass_mixture) / d
    return reg, ok


def compare_rates(
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
    design_ratio: float = 2.0,
    pass_ratio: float | None = None,
    design_n: float = 1000.0,
    pass_design_n: float = 2000.0,
    min_samples: int = 10,
    required: bool = False,
    dispersion: float = 1.0,
) -> MetricResult:
    """Compare event rates ``k / n`` of candidate and stable (one value per window, or one).

    With ``tolerance.absolute == 0`` this is the split-of-events test on the rate ratio
    ``psi = p_c / p_s`` against ``psi0 = 1 +/- relative``; otherwise it is the test of their
    difference (:func:`compare_differences`). ``dispersion`` is the design effect of
    requests clustered by user (:mod:`trimtab.stats.clustered`).
    """
    _check_alphas(alpha, alpha_pass)
    kc, nc = _as_windows(k_candidate), _as_windows(n_candidate)
    ks, ns = _as_windows(k_stable), _as_windows(n_stable)
    if not (kc.shape == nc.shape == ks.shape == ns.shape):
        raise ValueError("windows of candidate and stable must line up")
    if np.any(kc < 0) or np.any(ks < 0) or np.any(kc > nc) or np.any(ks > ns):
        raise ValueError("need 0 <= events <= requests")
    if tolerance.absolute != 0.0:
        result = compare_differences(
            metric,
            kc,
            nc,
            ks,
            ns,
            direction=direction,
            tolerance=tolerance,
            alpha=alpha,
            alpha_pass=alpha_pass,
            design_n=design_n,
            pass_design_n=pass_design_n,
            min_samples=min_samples,
            required=required,
            dispersion=dispersion,
        )
        return result
    log_psi0, reg_mix, ok_mix = rate_mixtures(
        direction, tolerance, design_ratio=design_ratio, pass_ratio=pass_ratio
    )
    le_reg, le_ok = rate_evidence(
        kc, nc, ks, ns, log_psi0=log_psi0, regression_mixture=reg_mix, pass_mixture=ok_mix,
        dispersion=dispersion,
    )  # fmt: skip
    reg_f, ok_f = float(le_reg), float(le_ok)
    g = direction.sign
    # Confidence sequence for psi: test "psi <= x" (mixture above x) and "psi >= x" (below).
    up_mix, down_mix = (reg_mix, ok_mix) if g > 0 else (ok_mix, reg_mix)
    up_alpha, down_alpha = (alpha, alpha_pass) if g > 0 else (alpha_pass, alpha)

    def rejects_up(log_x: float) -> bool:  # evidence that psi > x
        le, _ = rate_evidence(
            kc,
            nc,
            ks,
            ns,
            log_psi0=log_x,
            regression_mixture=up_mix,
            pass_mixture=up_mix,
            dispersion=dispersion,
        )
        return float(le) >= math.log(1.0 / up_alpha)

    def rejects_down(log_x: float) -> bool:  # evidence that psi < x
        le, _ = rate_evidence(
            kc,
            nc,
            ks,
            ns,
            log_psi0=log_x,
            regression_mixture=down_mix,
            pass_mixture=down_mix,
            dispersion=dispersion,
        )
        return float(le) >= math.log(1.0 / down_alpha)

    span = 30.0  # in log psi
    log_lower, log_upper = _confidence_bounds(rejects_up, rejects_down, -span, span)
    lower = 0.0 if log_lower is None else math.exp(log_lower)
    upper = math.inf if log_upper is None else math.exp(log_upper)
    n_c, n_s = float(nc.sum()), float(ns.sum())
    p_c = float(kc.sum()) / n_c if n_c else None
    p_s = float(ks.sum()) / n_s if n_s else None
    estimate = p_c / p_s if p_c is not None and p_s else None
    return MetricResult(
        metric=metric,
        verdict=_verdict(reg_f, ok_f, alpha, alpha_pass),
        direction=direction,
        method="split-of-events mixture (rate ratio)",
        n_stable=n_s,
        n_candidate=n_c,
        stable_value=p_s,
        candidate_value=p_c,
        estimate_kind="ratio",
        estimate=estimate,
        lower=lower,
        upper=upper,
        margin=math.exp(log_psi0),
        log_e_regression=reg_f,
        log_e_pass=ok_f,
        threshold_regression=math.log(1.0 / alpha),
        threshold_pass=math.log(1.0 / alpha_pass),
        alpha=alpha,
        alpha_pass=alpha_pass,
        required=required,
    )


# --- means: one-sided normal mixture ------------------------------------------------------


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
) -> tuple[FloatArray, FloatArray]:
    """Vectorised ``(log_e_regression, log_e_pass)`` of the normal-mixture test.

    The contrast is ``theta = sign (mu_c - coef mu_s) - offset``; ``theta > 0`` is a
    regression beyond the margin. Arrays of shape ``(..., windows)``.
    Until both arms have ``min_samples`` observations both log e-values are 0.
    """
    theta, sigma2, n_c = mean_contrast(
        n_candidate, sum_candidate, sq_candidate, n_stable, sum_stable, sq_stable, coef
    )
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
) -> MetricResult:
    """Compare means from sufficient statistics (count, sum, sum of squares per window)."""
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
        )  # fmt: skip
        return float(reg), float(ok)

    def spread(c: float, off: float) -> tuple[float, float]:
        theta, sigma2, _ = mean_contrast(nc, sc, qc, ns, ss, qs, c)
        return float(theta), float(sigma2)

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


def _check_alphas(alpha: float, alpha_pass: float) -> None:
    if not (0.0 < alpha < 1.0 and 0.0 < alpha_pass < 1.0):
        raise ValueError("alpha and alpha_pass must be in (0, 1)")
