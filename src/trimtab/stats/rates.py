"""Always-valid comparisons of rates: the split-of-events test, or paired differences."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from trimtab.stats.intervals import (
    FloatArray,
    RatioMixture,
    split_log_e,
)
from trimtab.stats.means import compare_differences
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
    "blend",
    "compare_rates",
    "rate_evidence",
    "rate_mixtures",
]


# The regression mixture's shape (issue 12): 65 % of its mass around the design ratio (sd 0.12
# in the log), 35 % around LARGE_FACTOR times it (sd 0.25), so a large regression (errors
# 1 % -> 5 %) is called on the evidence of that part rather than of the design's tail. In
# bench/canary_sim.py's simulate (the default plan, 1,000 rollouts, seed 1, the same traffic
# for each), against the blend before (80 % at sd 0.25, 20 % at sd 0.3): errors 5x rolled
# back after a median of 146 canary requests instead of 154, 2x after 1,538 instead of 1,550,
# +50 % after 8,153 instead of 7,876; latency +30 % after 288 instead of 290 (300 rollouts);
# healthy rollouts the same, rollout for rollout. Against one part of sd 0.35 (before
# 2026-12-03): 5x 170, 2x 1,536. Other blends tried, 5x / 2x: 30 % at 5x with sd 0.2 at the
# design 150 / 1,555; 30 % with sd 0.15 150 / 1,530; 40 % with sd 0.15 145 / 1,558. Any
# fixed weights keep the test an e-process.
SPREAD = 0.12
LARGE_WEIGHT = 0.35
LARGE_FACTOR = 2.5
LARGE_SPREAD = 0.25


def blend(parts: list[tuple[float, RatioMixture]]) -> RatioMixture:
    """The mixture ``sum_i w_i M_i`` of mixtures on one grid (weights renormalised): a mixture
    of e-values with fixed weights is an e-value, so any blend is as valid as its parts."""
    grid = parts[0][1].log_ratios
    if any(m.log_ratios != grid for _, m in parts):
        raise ValueError("blended mixtures must share their grid")
    if any(not w > 0.0 for w, _ in parts):
        raise ValueError("blend weights must be > 0")
    log_w = np.logaddexp.reduce(
        [math.log(w) + np.asarray(m.log_weights, dtype=np.float64) for w, m in parts], axis=0
    )
    log_w -= np.logaddexp.reduce(log_w)
    return RatioMixture(log_ratios=grid, log_weights=tuple(float(x) for x in log_w))


def rate_mixtures(
    direction: Direction,
    tolerance: Tolerance,
    *,
    design_ratio: float = 2.0,
    pass_ratio: float | None = None,
    spread: float = SPREAD,
    pass_spread: float = 0.6,
    large_weight: float = LARGE_WEIGHT,
    large_factor: float = LARGE_FACTOR,
    large_spread: float = LARGE_SPREAD,
) -> tuple[float, RatioMixture, RatioMixture]:
    """``(log psi0, regression mixture, pass mixture)`` for a rate metric.

    ``design_ratio`` (> 1) is the worsening, as a rate ratio beyond the margin, that the
    regression test finds fastest. ``pass_ratio`` (< 1) is the same for the pass test, as a
    ratio to the margin; by default it is where an unchanged candidate sits,
    ``1 / (1 + relative)``, kept at least 10 % from the margin. ``spread`` and
    ``pass_spread`` are the standard deviations of the mixtures in ``log(psi / psi0)``:
    narrower finds effects near the design faster and others more slowly (always validly).
    ``large_weight`` of the regression mixture sits around ``large_factor`` times the design
    ratio (sd ``large_spread``): large regressions are found sooner, for ``log(1 /
    (1 - large_weight))`` nats more evidence at the design (0 turns it off).
    """
    if design_ratio <= 1.0:
        raise ValueError("design_ratio must be > 1")
    if not 0.0 <= large_weight < 1.0 or large_factor <= 1.0:
        raise ValueError("need 0 <= large_weight < 1 and large_factor > 1")
    psi0 = tolerance.coef(direction)
    g = direction.sign
    if pass_ratio is None:
        pass_ratio = min(1.0 / psi0, 1.0 / 1.1) if g > 0 else min(psi0, 1.0 / 1.1)
    if not 0.0 < pass_ratio < 1.0:
        raise ValueError("pass_ratio must be in (0, 1)")
    reg = RatioMixture.around(design_ratio if g > 0 else 1.0 / design_ratio, spread=spread)
    if large_weight > 0.0:
        large = design_ratio * large_factor
        big = RatioMixture.around(large if g > 0 else 1.0 / large, spread=large_spread)
        reg = blend([(1.0 - large_weight, reg), (large_weight, big)])
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
