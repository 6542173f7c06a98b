"""Per-metric comparisons: verdicts, intervals, edge cases and monotonicity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trimtab.stats.means import compare_means
from trimtab.stats.rates import compare_rates, rate_evidence, rate_mixtures
from trimtab.stats.sequential import Direction, Tolerance, Verdict


def test_clear_error_regression_is_a_regression_with_its_statistics() -> None:
    r = compare_rates("error_rate", 40, 1000, 90, 9000)
    assert r.verdict is Verdict.REGRESSION
    assert r.log_e_regression >= r.threshold_regression == pytest.approx(math.log(100))
    assert r.n_candidate == 1000 and r.n_stable == 9000
    assert r.estimate == pytest.approx(4.0)
    assert 1.0 < r.lower < 4.0 < r.upper
    assert r.alpha == 0.01 and r.alpha_pass == 0.05


def test_equal_rates_are_inconclusive_at_zero_tolerance() -> None:
    r = compare_rates("error_rate", 10, 1000, 90, 9000)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.lower < 1.0 < r.upper


def test_a_wide_tolerance_lets_an_unchanged_candidate_pass() -> None:
    r = compare_rates("error_rate", 100, 10_000, 900, 90_000, tolerance=Tolerance(relative=0.5))
    assert r.verdict is Verdict.PASS
    assert r.upper < r.margin == pytest.approx(1.5)


def test_zero_counts_tiny_n_and_all_errors_are_inconclusive() -> None:
    for args in [(0, 0, 0, 0), (0, 5, 0, 45), (1, 1, 0, 9), (5, 5, 45, 45), (0, 10, 1, 90)]:
        r = compare_rates("error_rate", *args)
        assert r.verdict is Verdict.INCONCLUSIVE, args
        assert math.isfinite(r.log_e_regression) and math.isfinite(r.log_e_pass)
    r = compare_rates("error_rate", 0, 0, 0, 0)
    assert r.estimate is None and r.candidate_value is None
    assert r.lower == 0.0 and r.upper == math.inf


def test_all_candidate_requests_failing_against_a_healthy_stable_is_caught_fast() -> None:
    r = compare_rates("error_rate", 20, 20, 2, 180)
    assert r.verdict is Verdict.REGRESSION


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError):
        compare_rates("e", 5, 4, 0, 10)
    with pytest.raises(ValueError):
        compare_rates("e", [1, 2], [10, 10], [1], [90])
    with pytest.raises(ValueError):
        compare_rates("e", 1, 10, 1, 90, alpha=0)
    with pytest.raises(ValueError):
        Tolerance(relative=-0.1)
    with pytest.raises(ValueError):
        Tolerance(relative=1.0).coef(Direction.LOWER_IS_WORSE)
    with pytest.raises(ValueError):
        rate_mixtures(Direction.HIGHER_IS_WORSE, Tolerance(), design_ratio=0.9)


def test_lower_is_worse_mirrors_higher_is_worse() -> None:
    # A cache-hit rate falling from 10 % to 2 % is a regression when lower is worse ...
    down = compare_rates("hits", 20, 1000, 900, 9000, direction=Direction.LOWER_IS_WORSE)
    assert down.verdict is Verdict.REGRESSION
    assert down.upper < 1.0
    # ... with the same evidence as a rise from 2 % to 10 % when higher is worse, the arms'
    # roles swapped (the split test is symmetric in psi <-> 1/psi and w <-> 1 - w).
    up = compare_rates("rate", 900, 9000, 20, 1000)
    assert up.verdict is Verdict.REGRESSION
    assert down.log_e_regression == pytest.approx(up.log_e_regression, rel=1e-9)
    assert down.upper == pytest.approx(1 / up.lower, rel=1e-6)
    # A common event falling (success 90 % -> 80 %) is valid but slow to show this way.
    slow = compare_rates("success", 800, 1000, 8100, 9000, direction=Direction.LOWER_IS_WORSE)
    assert slow.verdict is not Verdict.PASS


def test_absolute_tolerance_on_a_rate_uses_the_normal_mixture() -> None:
    r = compare_rates("error_rate", 40, 2000, 180, 18000, tolerance=Tolerance(absolute=0.005))
    assert r.method.startswith("one-sided normal mixture")
    assert r.estimate_kind == "difference"
    assert r.margin == 0.005
    assert r.lower <= (r.estimate or 0.0) <= r.upper


def test_means_regression_pass_and_interval() -> None:
    rng = np.random.default_rng(11)
    s = np.exp(rng.normal(0, 0.8, 9000))
    worse = np.exp(rng.normal(0, 0.8, 1000)) * 1.4
    same = np.exp(rng.normal(0, 0.8, 4000))
    s4 = np.exp(rng.normal(0, 0.8, 36000))

    def cmp(c: np.ndarray, b: np.ndarray, tol: Tolerance) -> object:
        return compare_means(
            "cost", c.size, c.sum(), (c * c).sum(), b.size, b.sum(), (b * b).sum(), tolerance=tol
        )

    r = cmp(worse, s, Tolerance(relative=0.05))
    assert r.verdict is Verdict.REGRESSION  # type: ignore[attr-defined]
    assert r.lower > 1.05  # type: ignore[attr-defined]
    r = cmp(same, s4, Tolerance(relative=0.10))
    assert r.verdict is Verdict.PASS  # type: ignore[attr-defined]
    assert r.upper < 1.10  # type: ignore[attr-defined]


def test_means_need_min_samples() -> None:
    r = compare_means("cost", 5, 500.0, 5e4, 45, 45.0, 45.0)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.log_e_regression == 0.0 and "needs" in r.note


def test_means_with_no_variance_are_decided_by_the_difference() -> None:
    # Constant and equal (with a 10 % tolerance): within the margin.
    r = compare_means("cost", 50, 50.0, 50.0, 450, 450.0, 450.0, tolerance=Tolerance(0.1))
    assert r.verdict is Verdict.PASS
    assert not math.isnan(r.log_e_regression)
    # No cost recorded in either arm (a route without pricing) does not block a stage.
    r = compare_means("cost", 50, 0.0, 0.0, 450, 0.0, 0.0, tolerance=Tolerance(0.05))
    assert r.verdict is Verdict.PASS
    # Constant and different: the candidate costs twice as much, every time.
    r = compare_means("cost", 50, 100.0, 200.0, 450, 450.0, 450.0, tolerance=Tolerance(0.1))
    assert r.verdict is Verdict.REGRESSION


def test_verdicts_agree_with_the_interval_and_margin() -> None:
    rng = np.random.default_rng(5)
    for _ in range(40):
        n_c = int(rng.integers(50, 3000))
        n_s = 9 * n_c
        p_s = float(rng.uniform(0.005, 0.2))
        p_c = p_s * float(rng.uniform(0.5, 3.0))
        k_c, k_s = int(rng.binomial(n_c, p_c)), int(rng.binomial(n_s, p_s))
        tol = Tolerance(relative=float(rng.choice([0.0, 0.1, 0.3])))
        r = compare_rates("e", k_c, n_c, k_s, n_s, tolerance=tol)
        assert (r.verdict is Verdict.REGRESSION) == (r.lower > r.margin * (1 + 1e-9)), r
        if r.verdict is Verdict.PASS:
            assert r.upper < r.margin * (1 + 1e-9)


@given(
    k_c=st.integers(0, 200),
    extra=st.integers(1, 50),
    n_c=st.integers(200, 2000),
    k_s=st.integers(0, 500),
    relative=st.sampled_from([0.0, 0.1, 0.5]),
)
@settings(max_examples=80, deadline=None)
def test_more_candidate_events_never_look_better(
    k_c: int, extra: int, n_c: int, k_s: int, relative: float
) -> None:
    n_s = 9 * n_c
    k_s = min(k_s, n_s)
    k_c = min(k_c, n_c - extra)
    log_psi0, reg_mix, ok_mix = rate_mixtures(Direction.HIGHER_IS_WORSE, Tolerance(relative))
    kc = np.array([[k_c], [k_c + extra]], dtype=float)
    reg, ok = rate_evidence(
        kc,
        np.full((2, 1), n_c),
        np.full((2, 1), k_s),
        np.full((2, 1), n_s),
        log_psi0=log_psi0,
        regression_mixture=reg_mix,
        pass_mixture=ok_mix,
    )
    assert reg[1] >= reg[0] - 1e-12
    assert ok[1] <= ok[0] + 1e-12


@given(
    shift=st.floats(0.0, 5.0),
    n_c=st.integers(20, 2000),
    mean=st.floats(0.5, 5.0),
)
@settings(max_examples=60, deadline=None)
def test_a_costlier_candidate_never_looks_better(shift: float, n_c: int, mean: float) -> None:
    n_s = 9 * n_c
    sd = mean

    def cmp(m_c: float) -> tuple[float, float]:
        sq_c = n_c * (sd * sd + m_c * m_c)
        sq_s = n_s * (sd * sd + mean * mean)
        r = compare_means(
            "cost", n_c, n_c * m_c, sq_c, n_s, n_s * mean, sq_s, tolerance=Tolerance(0.05)
        )
        return r.log_e_regression, r.log_e_pass

    base, more = cmp(mean), cmp(mean + shift)
    assert more[0] >= base[0] - 1e-9
    assert more[1] <= base[1] + 1e-9
    assert not (more[0] >= math.log(100) and more[1] >= math.log(20)), "regression and pass at once"
