"""The t distribution's tail and quantile against scipy.stats.t."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from trimtab.stats.student import t_ppf, t_sf, t_widening


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5, 7, 10, 11, 30, 55, 200])
@pytest.mark.parametrize("x", [-40.0, -3.5, -1.0, -0.2, 0.0, 0.3, 1.0, 2.0, 4.5, 12.0])
def test_the_tail_is_scipys(dof: int, x: float) -> None:
    assert t_sf(x, dof) == pytest.approx(float(stats.t.sf(x, dof)), rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("dof", [1, 2, 3, 6, 9, 12, 40, 120])
@pytest.mark.parametrize("p", [0.001, 0.025, 0.1, 0.5, 0.6, 0.9, 0.95, 0.975, 0.995])
def test_the_quantile_is_scipys(dof: int, p: float) -> None:
    assert t_ppf(p, dof) == pytest.approx(float(stats.t.ppf(p, dof)), rel=1e-9, abs=1e-12)


@given(st.integers(1, 300), st.floats(0.01, 0.99))
def test_the_quantile_inverts_the_tail(dof: int, p: float) -> None:
    assert 1.0 - t_sf(t_ppf(p, dof), dof) == pytest.approx(p, abs=1e-12)


def test_the_limits_and_bad_arguments() -> None:
    assert t_sf(math.inf, 3) == 0.0 and t_sf(-math.inf, 3) == 1.0
    with pytest.raises(ValueError, match="whole number >= 1"):
        t_sf(1.0, 0)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        t_ppf(1.0, 5)


@pytest.mark.parametrize("alpha", [1e-6, 0.0001, 0.001, 0.01, 0.05, 0.2])
def test_the_widening_is_scipys_quantile_ratio_squared(alpha: float) -> None:
    dof = np.array([1, 2, 3, 7, 20, 49, 50, 51, 64, 300, 5_000, 10**7], dtype=np.float64)
    z = float(stats.norm.ppf(1.0 - alpha))
    want = (stats.t.ppf(1.0 - alpha, dof) / z) ** 2
    np.testing.assert_allclose(t_widening(dof, alpha), want, rtol=1e-5)


def test_a_fractional_degree_widens_as_the_whole_one_below_it() -> None:
    got = t_widening(np.array([[0.2, 1.9], [49.99, 50.5]]), 0.01)
    want = t_widening(np.array([[1.0, 1.0], [49.0, 50.0]]), 0.01)
    np.testing.assert_array_equal(got, want)
    assert got.shape == (2, 2) and got[0, 0] > got[1, 0] > got[1, 1] > 1.0
    assert t_widening(np.array([math.inf]), 0.01)[0] == pytest.approx(1.0, abs=1e-9)
    for alpha in (0.5, 1e-7):
        with pytest.raises(ValueError, match=r"in \[1e-06, 0.5\)"):
            t_widening([3.0], alpha)
