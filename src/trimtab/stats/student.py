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
"""

from __future__ import annotations

import math

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
