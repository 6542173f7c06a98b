"""Student's t distribution with whole degrees of freedom, without scipy.

A server process that forecasts a budget needs two numbers from the t distribution: a
quantile for the prediction interval and a tail for the chance of going over. scipy.stats
would cost about 80 MiB of RSS for them, so they come from the exact finite series of
Abramowitz and Stegun 26.7.3 and 26.7.4 for A(t|nu) = P(|T| <= t), with
theta = atan(t / sqrt(nu)):

    nu odd:   A = (2/pi) (theta + sin(theta) [cos + (2/3) cos^3 + ... + (2*4..(nu-3)) /
                                               (1*3..(nu-2)) cos^(nu-2)])   (nu > 1)
              A = 2 theta / pi                                              (nu = 1)
    nu even:  A = sin(theta) [1 + (1/2) cos^2 + (1*3)/(2*4) cos^4 + ... +
                              (1*3..(nu-3)) / (2*4..(nu-2)) cos^(nu-2)]

The upper tail is (1 - A) / 2 and the quantile is found by bisection on it; the tests
check both against scipy.stats.t.

The canary's clustered tests need the same quantile for many degrees of freedom at once
(:func:`t_widening`): exact below 50 degrees of freedom, and from 50 the Cornish-Fisher
expansion of the t quantile in the normal one, Abramowitz and Stegun 26.7.5 to its
fourth term (the widening within 1e-5 of scipy's, relative, at tails down to 1e-6).
"""

from __future__ import annotations

import math
from functools import cache
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

_BISECTIONS = 200  # enough for any double-precision bracket to close


def _within(t: float, dof: int) -> float:
    """A(t|dof) = P(|T| <= t) for t >= 0."""
    theta = math.atan(t / math.sqrt(dof))
    c2 = math.cos(theta) ** 2
    s = math.sin(theta)
    if dof % 2 == 1:
        if dof == 1:
            return 2.0 * theta / math.pi
        term = math.cos(theta)
        total = term
        for k in range(3, dof - 1, 2):  # term k: (2*4..(k-1)) / (1*3..k) cos^k
            term *= c2 * (k - 1) / k
            total += term
        return 2.0 / math.pi * (theta + s * total)
    term = 1.0
    total = term
    for k in range(2, dof - 1, 2):  # term k: (1*3..(k-1)) / (2*4..k) cos^k
        term *= c2 * (k - 1) / k
        total += term
    return s * total


def t_sf(x: float, dof: int) -> float:
    """P(T > x) for Student's t with `dof` (a whole number >= 1) degrees of freedom."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be a whole number >= 1, not {dof}")
    if math.isinf(x):
        return 0.0 if x > 0 else 1.0
    tail = (1.0 - _within(abs(x), dof)) / 2.0
    return tail if x >= 0 else 1.0 - tail


def t_ppf(p: float, dof: int) -> float:
    """The x with P(T <= x) = p, for 0 < p < 1."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile's probability must be in (0, 1), not {p}")
    if p == 0.5:
        return 0.0
    upper = 1.0 - p if p > 0.5 else p  # the tail beyond |x|
    low, high = 0.0, 1.0
    while t_sf(high, dof) > upper:
        low, high = high, high * 2.0
    for _ in range(_BISECTIONS):
        mid = (low + high) / 2.0
        if mid in (low, high):
            break
        if t_sf(mid, dof) > upper:
            low = mid
        else:
            high = mid
    x = (low + high) / 2.0
    return x if p > 0.5 else -x


_EXPANDED_FROM = 50  # degrees of freedom from which t_widening takes A&S 26.7.5
_SMALLEST_TAIL = 1e-6  # t_widening's smallest alpha
_HUGE = 1e12  # as many degrees of freedom as infinity, for the expansion's powers


@cache
def _exact_quantiles(alpha: float) -> tuple[float, ...]:
    """``t_ppf(1 - alpha, dof)`` for dof 1 to ``_EXPANDED_FROM - 1`` (index dof - 1)."""
    return tuple(t_ppf(1.0 - alpha, dof) for dof in range(1, _EXPANDED_FROM))


def t_widening(dof: npt.ArrayLike, alpha: float) -> npt.NDArray[np.float64]:
    """``(t_dof^{-1}(1 - alpha) / z^{-1}(1 - alpha))^2``: how much wider a one-sided bound
    at ``alpha`` is on ``dof`` degrees of freedom than with the variance known, squared,
    elementwise. A degree of freedom that is not whole is taken down to one that is (the
    wider bound), and below 1 as 1; infinite degrees give 1. ``alpha`` in [1e-6, 0.5),
    where the quantiles are checked against scipy's."""
    if not _SMALLEST_TAIL <= alpha < 0.5:
        raise ValueError(f"a one-sided tail must be in [1e-06, 0.5), not {alpha}")
    v = np.asarray(dof, dtype=np.float64)
    v = np.clip(np.floor(np.nan_to_num(v, nan=1.0, posinf=_HUGE)), 1.0, _HUGE)
    z = NormalDist().inv_cdf(1.0 - alpha)
    exact = np.array(_exact_quantiles(alpha))
    small = v < _EXPANDED_FROM
    big = np.where(small, float(_EXPANDED_FROM), v)
    g1 = (z**3 + z) / 4.0
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96.0
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160.0
    expanded = z + g1 / big + g2 / big**2 + g3 / big**3 + g4 / big**4
    at = np.minimum(v, _EXPANDED_FROM - 1).astype(np.int64) - 1
    t = np.where(small, exact[at], expanded)
    out: npt.NDArray[np.float64] = (t / z) ** 2
    return out
