"""Always-valid statistics for canary analysis: the pure math, vectorised with numpy.

Every test here is an *e-process*: a nonnegative process whose expectation is at most 1 at
every stopping time while the null hypothesis holds. By Ville's inequality (Ville 1939; see
Ramdas, Grünwald, Vovk, Shafer, "Game-theoretic statistics and safe anytime-valid inference",
Statistical Science 2023) the chance that it *ever* reaches 1/alpha is at most alpha, so it may
be checked after every request, every batch or every minute without inflating the error rate.
Tests are carried as log e-values; a test rejects when ``log_e >= log(1/alpha)``.

Two constructions:

Split of events (rates: errors, refusals, negative feedback, slow requests).
    Requests go to the candidate with probability ``w`` and to stable otherwise; an event
    (an error, say) happens with probability ``p_c`` on the candidate and ``p_s`` on stable.
    Given that a request had an event, it came from the candidate with probability
    ``pi(psi) = w psi / (w psi + 1 - w)``, ``psi = p_c / p_s``, independently of every other
    event and of the unknown ``p_s``. Conditioning on the events removes the nuisance rate,
    and what is left is a one-parameter Bernoulli sequence. Its likelihood ratio against
    ``psi0``, mixed over a fixed discrete prior of alternatives on one side of ``psi0``, is a
    test martingale for ``psi = psi0`` and a supermartingale for every ``psi`` on the other
    side, so it tests the composite one-sided null (Wald, "Sequential Analysis", 1947, for the
    likelihood ratio; Robbins, "Statistical methods related to the law of the iterated
    logarithm", 1970, for mixing). The rate-ratio parameterisation of counts in canaries follows
    Lindon, Sanden, Shirikian, "Rapid Regression Detection in Software Deployments through
    Sequential Testing", KDD 2022. Counts may come in windows with different traffic shares
    (``w`` per window); the log likelihoods add up.

One-sided normal mixture (means: cost per request; rates with an absolute margin).
    For an estimated contrast ``theta_hat`` with per-canary-request variance ``sigma^2`` after
    ``n`` canary requests, ``S = n theta_hat / sigma`` behaves like a Brownian motion in
    intrinsic time ``V = n``. Mixing ``exp(lambda S - lambda^2 V / 2)`` over a half-normal
    ``lambda >= 0`` with variance ``1 / rho`` gives Howard, Ramdas, McAuliffe, Sekhon,
    "Time-uniform, nonparametric, nonasymptotic confidence sequences" (Annals of Statistics
    2021), one-sided normal mixture::

        M(S, V) = 2 sqrt(rho / (V + rho)) exp(S^2 / (2 (V + rho))) Phi(S / sqrt(V + rho))

    With a plug-in variance this is an asymptotic confidence sequence (Waudby-Smith, Arnold,
    Howard, Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences",
    Annals of Statistics 2024); for two streams it is the mSPRT of Johari, Pekelis, Walsh,
    "Always valid inference: continuous monitoring of A/B tests" (Operations Research 2022).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "FloatArray",
    "RatioMixture",
    "binary_contrast",
    "log_normal_cdf",
    "mean_contrast",
    "mixture_rho",
    "normal_mixture_boundary",
    "normal_mixture_log_e",
    "split_log_e",
]

_LOG2 = math.log(2.0)
_LOG_HALF = math.log(0.5)
# Numerical Recipes' erfc: erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z / 2), for z >= 0, with a
# relative error below 1.2e-7 everywhere (Press et al., "Numerical Recipes", 2nd ed., 6.2).
_ERFC_COEFFS = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def _f64(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _log_erfc_nonneg(z: FloatArray) -> FloatArray:
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(z, _ERFC_COEFFS[-1])
    for c in reversed(_ERFC_COEFFS[:-1]):
        poly = c + t * poly
    out: FloatArray = np.log(t) - z * z + poly
    return out


def log_normal_cdf(x: npt.ArrayLike) -> FloatArray:
    """``log Phi(x)`` for the standard normal, accurate in both tails (no scipy needed)."""
    xa = _f64(x)
    z = -xa / math.sqrt(2.0)  # Phi(x) = erfc(z) / 2
    az = np.abs(z)
    log_erfc_abs = _log_erfc_nonneg(az)
    # erfc(z) for z < 0 is 2 - erfc(|z|), which lies in [1, 2): no cancellation.
    small = np.log(np.maximum(2.0 - np.exp(log_erfc_abs), 1e-300))
    out: FloatArray = np.where(z >= 0.0, log_erfc_abs, small) + _LOG_HALF
    return out


def mixture_rho(design_n: float, alpha: float) -> float:
    """The mixture's ``rho`` that makes the normal-mixture boundary tightest at ``V = design_n``.

    Minimising the two-sided boundary ``sqrt((V + rho) log((V + rho) / (rho alpha^2)))`` over
    ``rho`` at ``V = v*`` gives ``rho = v* / x`` with ``x = 2 log(1/alpha) + log(1 + x)``; one
    fixed-point step from ``x = 2 log(1/alpha)`` is within a few percent (Howard et al. 2021,
    section 3.5). ``design_n`` is in canary requests (the intrinsic time used here).
    """
    if design_n <= 0 or not 0 < alpha < 1:
        raise ValueError("design_n must be > 0 and alpha in (0, 1)")
    two_l = 2.0 * math.log(1.0 / alpha)
    return design_n / (two_l + math.log1p(two_l))


def normal_mixture_log_e(s: npt.ArrayLike, v: npt.ArrayLike, rho: float) -> FloatArray:
    """Log of the one-sided normal-mixture e-value ``M(S, V)`` (Howard et al. 2021).

    ``S`` is the running sum in standard units (``n theta_hat / sigma``) of the contrast under
    test, centred at its null value, and ``V`` the intrinsic time (``n``). Large positive
    ``S`` is evidence that the contrast is above its null value. ``M`` is increasing in ``S``.
    """
    sa = _f64(s)
    a = _f64(v) + rho
    out: FloatArray = _LOG2 + 0.5 * np.log(rho / a) + _half_square_plus_log_cdf(sa / np.sqrt(a))
    return out


def _half_square_plus_log_cdf(x: FloatArray) -> FloatArray:
    """``x^2 / 2 + log Phi(x)`` without cancelling two huge terms when ``x`` is very negative.

    For ``x < 0``, ``Phi(x) = erfc(z) / 2`` with ``z = -x / sqrt(2)`` and ``z^2 = x^2 / 2``, and
    the ``-z^2`` inside ``log erfc`` cancels exactly.
    """
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(z, _ERFC_COEFFS[-1])
    for c in reversed(_ERFC_COEFFS[:-1]):
        poly = c + t * poly
    negative = np.log(t) + poly + _LOG_HALF
    out: FloatArray = np.where(x < 0.0, negative, 0.5 * x * x + log_normal_cdf(np.abs(x)))
    return out


def normal_mixture_boundary(v: npt.ArrayLike, alpha: float, rho: float) -> FloatArray:
    """The smallest ``S`` with ``M(S, V) >= 1 / alpha``: the one-sided boundary at time ``V``.

    Bisection between two closed-form bounds: ``Phi <= 1`` gives the lower one and
    ``2 Phi >= 1`` for ``S >= 0`` the upper one.
    """
    a = _f64(v) + rho
    big_l = math.log(1.0 / alpha)
    half_log = 0.5 * np.log(a / rho)
    lo = np.sqrt(2.0 * a * np.maximum(big_l - _LOG2 + half_log, 0.0))
    hi = np.sqrt(2.0 * a * (big_l + half_log))
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = normal_mixture_log_e(mid, a - rho, rho) >= big_l
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return hi


@dataclass(frozen=True, slots=True)
class RatioMixture:
    """A discrete mixing distribution over ``u = log(psi / psi0)`` on one side of the null.

    ``log_ratios`` are signed: positive alternatives test "the candidate's rate is above
    ``psi0``", negative ones "below". Any fixed weights give a valid test; where the mass
    sits decides which effects are found fastest (the analogue of the mixing variance of an
    mSPRT).
    """

    log_ratios: tuple[float, ...]
    log_weights: tuple[float, ...]

    @classmethod
    def around(
        cls,
        design_ratio: float,
        *,
        spread: float = 0.6,
        points: int = 32,
        smallest: float = 1.01,
        largest: float = 100.0,
    ) -> RatioMixture:
        """Mass on ``psi / psi0`` between ``smallest`` and ``largest`` (or their inverses).

        Weights follow a normal density in ``log(psi / psi0)`` centred at
        ``log(design_ratio)`` with standard deviation ``spread``, on a log-spaced grid (the
        weights include the grid's Jacobian). ``design_ratio < 1`` builds the mirror image,
        for alternatives below the null.
        """
        if design_ratio <= 0 or design_ratio == 1.0:
            raise ValueError("design_ratio must be > 0 and != 1")
        if not 1.0 < smallest < largest or points < 2 or spread <= 0:
            raise ValueError("need 1 < smallest < largest, points >= 2, spread > 0")
        sign = 1.0 if design_ratio > 1.0 else -1.0
        centre = abs(math.log(design_ratio))
        mags = np.exp(
            np.linspace(math.log(math.log(smallest)), math.log(math.log(largest)), points)
        )
        log_w = -((mags - centre) ** 2) / (2.0 * spread * spread) + np.log(mags)
        log_w -= np.logaddexp.reduce(log_w)
        return cls(
            log_ratios=tuple(float(x) for x in sign * mags),
            log_weights=tuple(float(x) for x in log_w),
        )


def split_log_e(
    k_candidate: npt.ArrayLike,
    k_stable: npt.ArrayLike,
    share: npt.ArrayLike,
    log_psi0: float,
    mixture: RatioMixture,
) -> FloatArray:
    """Log e-value of the split-of-events test of ``psi = p_c / p_s`` against ``psi0``.

    ``k_candidate``, ``k_stable`` (events) and ``share`` (the candidate's share of the
    requests that could have had an event) have shape ``(..., windows)``; the result has
    shape ``(...)``. For alternatives above ``psi0`` in the mixture it tests
    ``H0: psi <= psi0``; for alternatives below, ``H0: psi >= psi0``. Windows with a share of
    0 or 1 carry no information and count for nothing.
    """
    kc = _f64(k_candidate)[..., None]
    ks = _f64(k_stable)[..., None]
    w = _f64(share)[..., None]
    informative = (w > 0.0) & (w < 1.0)
    ws = np.clip(w, 1e-300, 1.0 - 1e-16)
    log_w = np.log(ws)
    log_1mw = np.log1p(-ws)
    u = np.asarray(mixture.log_ratios, dtype=np.float64)
    log_psi = log_psi0 + u  # (J,)

    def log_pi(lp: FloatArray | float) -> tuple[FloatArray, FloatArray]:
        num = log_w + lp
        den = np.logaddexp(num, log_1mw)
        return num - den, log_1mw - den

    lp1, lq1 = log_pi(log_psi)
    lp0, lq0 = log_pi(log_psi0)
    contrib = kc * (lp1 - lp0) + ks * (lq1 - lq0)
    contrib = np.where(informative, contrib, 0.0)
    ll = contrib.sum(axis=-2) + np.asarray(mixture.log_weights, dtype=np.float64)
    out: FloatArray = np.logaddexp.reduce(ll, axis=-1)
    return out


def mean_contrast(
    n_candidate: npt.ArrayLike,
    sum_candidate: npt.ArrayLike,
    sq_candidate: npt.ArrayLike,
    n_stable: npt.ArrayLike,
    sum_stable: npt.ArrayLike,
    sq_stable: npt.ArrayLike,
    coef: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Estimate ``mu_c - coef * mu_s`` from per-window sums; ``(theta_hat, sigma2, n_c)``.

    Inputs have shape ``(..., windows)``. The estimate is stratified by window, each window
    weighted by its canary requests, so a traffic share that changes between windows cannot
    bias it; windows missing either arm are skipped. ``sigma2`` is the variance per canary
    request, ``Var(theta_hat) = sigma2 / n_c``. Arm variances are pooled over windows; the
    candidate's is taken as the larger of its own and ``coef^2`` times stable's (what it would
    be if the candidate were stable scaled to the margin), which keeps a right-skewed metric
    from looking precise exactly when its sample mean happens to be low.
    """
    nc = _f64(n_candidate)
    ns = _f64(n_stable)
    sc, qc = _f64(sum_candidate), _f64(sq_candidate)
    ss, qs = _f64(sum_stable), _f64(sq_stable)
    both = (nc > 0) & (ns > 0)
    ncb = np.where(both, nc, 0.0)
    n_c = ncb.sum(axis=-1)
    safe_nc = np.where(both, nc, 1.0)
    safe_ns = np.where(both, ns, 1.0)
    diff = np.where(both, sc / safe_nc - coef * ss / safe_ns, 0.0)
    theta = (ncb * diff).sum(axis=-1) / np.maximum(n_c, 1.0)

    def pooled_var(n: FloatArray, s: FloatArray, q: FloatArray, mask: FloatArray) -> FloatArray:
        tn = np.where(mask > 0, n, 0.0).sum(axis=-1)
        ts = np.where(mask > 0, s, 0.0).sum(axis=-1)
        tq = np.where(mask > 0, q, 0.0).sum(axis=-1)
        mean = ts / np.maximum(tn, 1.0)
        var = np.maximum(tq / np.maximum(tn, 1.0) - mean * mean, 0.0)
        out: FloatArray = var * tn / np.maximum(tn - 1.0, 1.0)
        return out

    mask = both.astype(np.float64)
    var_c = pooled_var(nc, sc, qc, mask)
    var_s = pooled_var(ns, ss, qs, mask)
    spread = (np.where(both, nc * nc / safe_ns, 0.0)).sum(axis=-1) / np.maximum(n_c, 1.0)
    sigma2 = np.maximum(var_c, coef * coef * var_s) + coef * coef * var_s * spread
    return theta, sigma2, n_c


def binary_contrast(
    k_candidate: npt.ArrayLike,
    n_candidate: npt.ArrayLike,
    k_stable: npt.ArrayLike,
    n_stable: npt.ArrayLike,
    coef: float,
    offset: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Estimate ``p_c - coef * p_s`` from per-window event counts; ``(theta_hat, sigma2, n_c)``.

    The estimate is stratified by window as in :func:`mean_contrast`. The variance is a
    score-type one, evaluated where the test is hardest (Farrington & Manning, "Test
    statistics and sample size formulae for comparative binomial trials with null hypothesis
    of non-zero risk difference or non-unity relative risk", Statistics in Medicine 1990,
    use the restricted estimate at the margin): the candidate's rate is taken as at least the
    margin ``coef * p_s + offset`` (capped at 1/2, where ``p (1 - p)`` peaks), and both rates
    carry one pseudo-event in two requests (``(k + 1) / (n + 2)``), so an arm with no events
    yet is never taken as certain. A rare event (0 errors in 100 requests) therefore passes a
    margin of ``offset`` only once the requests are enough to show the rate below it, as
    with the rule of three, instead of at once on a zero variance.
    """
    nc, ns = _f64(n_candidate), _f64(n_stable)
    kc, ks = _f64(k_candidate), _f64(k_stable)
    both = (nc > 0) & (ns > 0)
    ncb = np.where(both, nc, 0.0)
    n_c = ncb.sum(axis=-1)
    n_s = np.where(both, ns, 0.0).sum(axis=-1)
    safe_nc = np.where(both, nc, 1.0)
    safe_ns = np.where(both, ns, 1.0)
    diff = np.where(both, kc / safe_nc - coef * ks / safe_ns, 0.0)
    theta = (ncb * diff).sum(axis=-1) / np.maximum(n_c, 1.0)
    p_c = (np.where(both, kc, 0.0).sum(axis=-1) + 1.0) / (n_c + 2.0)
    p_s = (np.where(both, ks, 0.0).sum(axis=-1) + 1.0) / (n_s + 2.0)
    p_m = np.clip(coef * p_s + offset, 0.0, 0.5)
    var_c = np.maximum(p_c * (1.0 - p_c), p_m * (1.0 - p_m))
    var_s = p_s * (1.0 - p_s)
    spread = (np.where(both, nc * nc / safe_ns, 0.0)).sum(axis=-1) / np.maximum(n_c, 1.0)
    sigma2: FloatArray = var_c + coef * coef * var_s * spread
    return theta, sigma2, n_c
