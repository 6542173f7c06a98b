"""The always-valid primitives: normal CDF, normal mixture, split-of-events e-values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trimtab.stats.intervals import (
    RatioMixture,
    binary_contrast,
    log_normal_cdf,
    mean_contrast,
    mixture_rho,
    normal_mixture_boundary,
    normal_mixture_log_e,
    split_log_e,
)


def test_log_normal_cdf_matches_erfc_in_both_tails() -> None:
    xs = np.array([-30.0, -8.0, -3.0, -1.0, 0.0, 0.5, 2.0, 6.0, 10.0])
    got = log_normal_cdf(xs)
    for x, g in zip(xs, got, strict=True):
        want = math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
        assert g == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_normal_mixture_is_stable_for_huge_statistics() -> None:
    le = normal_mixture_log_e(np.array([-1e100, -1e6, 0.0, 1e6, 1e100]), 100.0, 50.0)
    assert np.all(np.isfinite(le))
    assert le[0] < le[1] < le[2] < 0 < le[3] < le[4]
    # far below zero, M ~ 2 sqrt(rho / a) phi(x) / |x| with x = S / sqrt(a): about -log|x|
    x = -1e6 / math.sqrt(150.0)
    want = math.log(2 * math.sqrt(50 / 150) / (abs(x) * math.sqrt(2 * math.pi)))
    assert float(le[1]) == pytest.approx(want, rel=1e-3)


def test_mixture_rho_is_the_fixed_point_step() -> None:
    two_l = 2 * math.log(100)
    assert mixture_rho(1000, 0.01) == pytest.approx(1000 / (two_l + math.log1p(two_l)))
    with pytest.raises(ValueError):
        mixture_rho(0, 0.01)
    with pytest.raises(ValueError):
        mixture_rho(10, 1.0)


def test_normal_mixture_is_increasing_and_one_at_zero_time() -> None:
    s = np.linspace(-20, 20, 401)
    le = normal_mixture_log_e(s, 100.0, 50.0)
    assert np.all(np.diff(le) > 0)
    # At V = 0 and S = 0 the mixture of martingales starting at 1 is 1.
    assert float(normal_mixture_log_e(0.0, 0.0, 50.0)) == pytest.approx(0.0, abs=1e-6)


@given(
    v=st.floats(min_value=0.0, max_value=1e6),
    alpha=st.floats(min_value=1e-4, max_value=0.5),
    rho=st.floats(min_value=0.1, max_value=1e4),
)
@settings(max_examples=60, deadline=None)
def test_boundary_is_where_the_mixture_reaches_one_over_alpha(
    v: float, alpha: float, rho: float
) -> None:
    b = float(normal_mixture_boundary(v, alpha, rho))
    le = float(normal_mixture_log_e(b, v, rho))
    assert le >= math.log(1 / alpha) - 1e-9
    assert float(normal_mixture_log_e(b * (1 - 1e-6), v, rho)) <= math.log(1 / alpha) + 1e-6


def test_ratio_mixture_weights_are_a_distribution_on_one_side() -> None:
    up = RatioMixture.around(2.0)
    down = RatioMixture.around(0.8)
    for m, sign in ((up, 1), (down, -1)):
        assert math.fsum(math.exp(w) for w in m.log_weights) == pytest.approx(1.0)
        assert all(sign * u > 0 for u in m.log_ratios)
    with pytest.raises(ValueError):
        RatioMixture.around(1.0)
    with pytest.raises(ValueError):
        RatioMixture.around(2.0, smallest=0.5)


def test_split_e_value_is_one_without_events_or_without_information() -> None:
    mix = RatioMixture.around(2.0)
    assert float(split_log_e([0], [0], [0.1], 0.0, mix)) == pytest.approx(0.0, abs=1e-12)
    # A window where every request went to one arm tells nothing about the split.
    assert float(split_log_e([5], [0], [1.0], 0.0, mix)) == pytest.approx(0.0, abs=1e-12)
    assert float(split_log_e([0], [5], [0.0], 0.0, mix)) == pytest.approx(0.0, abs=1e-12)


def test_split_windows_with_equal_shares_add_up_like_one_window() -> None:
    mix = RatioMixture.around(2.0)
    one = split_log_e([7], [40], [0.1], 0.0, mix)
    two = split_log_e([3, 4], [15, 25], [0.1, 0.1], 0.0, mix)
    assert float(one) == pytest.approx(float(two))


def test_split_e_value_has_expectation_one_at_the_null() -> None:
    # E[e-value] = 1 exactly for a fixed number of events at psi = psi0 (a martingale).
    mix = RatioMixture.around(2.0)
    k = 30
    share = 0.1
    kc = np.arange(k + 1)
    log_e = split_log_e(kc[:, None], (k - kc)[:, None], np.full((k + 1, 1), share), 0.0, mix)
    pmf = np.array([math.comb(k, int(i)) * share**i * (1 - share) ** (k - i) for i in kc])
    assert float((pmf * np.exp(log_e)).sum()) == pytest.approx(1.0, rel=1e-9)


def test_split_vectorises_over_leading_axes() -> None:
    mix = RatioMixture.around(2.0)
    kc = np.array([[1], [5], [20]])
    ks = np.array([[30], [30], [30]])
    out = split_log_e(kc, ks, np.full((3, 1), 0.1), 0.0, mix)
    assert out.shape == (3,)
    assert out[0] < out[1] < out[2]


def test_mean_contrast_single_window_and_variance_floor() -> None:
    rng = np.random.default_rng(3)
    c = rng.normal(10, 2, 500)
    s = rng.normal(10, 1, 4500)
    theta, sigma2, n_c = mean_contrast(
        [c.size], [c.sum()], [(c * c).sum()], [s.size], [s.sum()], [(s * s).sum()], 1.0
    )
    assert float(n_c) == 500
    assert float(theta) == pytest.approx(c.mean() - s.mean())
    want = c.var(ddof=1) + s.var(ddof=1) * 500 / 4500
    assert float(sigma2) == pytest.approx(want, rel=1e-6)
    # The candidate's variance is never taken below stable's scaled to the margin.
    theta, sigma2, _ = mean_contrast(
        [s.size], [s.sum()], [(s * s).sum()], [c.size], [c.sum()], [(c * c).sum()], 1.1
    )
    assert float(sigma2) >= 1.1**2 * c.var(ddof=1)


def test_mean_contrast_skips_windows_missing_an_arm() -> None:
    theta, _, n_c = mean_contrast(
        [10, 5], [20.0, 500.0], [40.0, 1e5], [90, 0], [90.0, 0], [90, 0], 1
    )
    assert float(n_c) == 10
    assert float(theta) == pytest.approx(2.0 - 1.0)


@pytest.mark.parametrize(
    ("s", "v", "rho"), [(0.0, 10.0, 5.0), (8.0, 100.0, 20.0), (-3.0, 50.0, 7.0)]
)
def test_normal_mixture_is_the_half_normal_integral_by_scipy(
    s: float, v: float, rho: float
) -> None:
    """M(S, V) against scipy's quadrature of exp(lambda S - lambda^2 V / 2) over the
    half-normal lambda with variance 1 / rho (Howard et al. 2021, the one-sided mixture)."""
    from scipy import integrate
    from scipy import stats as sps

    def integrand(lam: float) -> float:
        return math.exp(lam * s - lam * lam * v / 2) * 2 * float(sps.norm.pdf(lam, scale=rho**-0.5))

    value, _ = integrate.quad(integrand, 0, math.inf)
    assert float(normal_mixture_log_e(s, v, rho)) == pytest.approx(math.log(value), rel=1e-5)


def test_binary_contrast_by_hand() -> None:
    """Two windows; the variance at the margin (Farrington & Manning's restricted rate)."""
    theta, sigma2, n_c = binary_contrast([3, 2], [100, 100], [20, 10], [900, 400], 1.0, 0.004)
    assert float(n_c) == 200
    assert float(theta) == pytest.approx(((3 / 100 - 20 / 900) + (2 / 100 - 10 / 400)) / 2)
    p_c, p_s = 6 / 202, 31 / 1302
    p_m = p_s + 0.004
    var_c = max(p_c * (1 - p_c), p_m * (1 - p_m))
    spread = (100**2 / 900 + 100**2 / 400) / 200
    assert float(sigma2) == pytest.approx(var_c + p_s * (1 - p_s) * spread)
    # no events at all: still a variance, from the pseudo-events and the margin
    _, sigma2, _ = binary_contrast([0], [50], [0], [450], 1.0, 0.005)
    assert float(sigma2) > 0.005 * 0.995
