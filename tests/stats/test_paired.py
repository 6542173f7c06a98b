"""Paired comparison: each formula against scipy or a case worked by hand, and the error
rates, coverage and power it claims checked by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from trimtab.stats.paired import (
    MIN_ITEMS,
    bca_interval,
    compare,
    detectable_drop,
    holm,
    mcnemar_exact,
    min_exact_flips,
    sign_flip_p,
    verdict,
)


def test_mcnemar_exact_by_hand() -> None:
    # six flips, all one way: 2 * (1/2)^6
    assert mcnemar_exact(6, 0) == pytest.approx(0.03125)
    assert mcnemar_exact(0, 6) == pytest.approx(0.03125)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0  # capped: both tails overlap at the centre


@pytest.mark.parametrize("b", range(0, 30, 3))
@pytest.mark.parametrize("c", [0, 1, 4, 9, 17, 40])
def test_mcnemar_exact_is_scipys_binomial_test(b: int, c: int) -> None:
    if b + c == 0:
        return
    expected = sps.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("b", "c"), [(2_450, 2_550), (2_900, 3_100), (9_800, 10_200), (0, 7_000)])
def test_mcnemar_exact_on_many_discordant_pairs_is_scipys(b: int, c: int) -> None:
    """Both sides of the switch from integers to log space (5,000 discordant pairs)."""
    expected = sps.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_holm_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=12))
def test_holm_never_below_the_raw_value_and_keeps_the_order(p: list[float]) -> None:
    adjusted = holm(p)
    assert all(a >= raw - 1e-15 and a <= 1.0 for a, raw in zip(adjusted, p, strict=True))
    order = sorted(range(len(p)), key=lambda i: p[i])
    assert [adjusted[i] for i in order] == sorted(adjusted[i] for i in order)


def test_min_exact_flips() -> None:
    assert min_exact_flips(0.05) == 6  # 2/2^5 = 0.0625 > 0.05 >= 2/2^6
    assert min_exact_flips(0.01) == 8


def test_bca_interval_agrees_with_scipy() -> None:
    rng = np.random.default_rng(7)
    values = rng.exponential(1.0, 60) - 0.8  # skewed: BCa moves away from the percentiles
    ours = bca_interval(values, 0.95, 40_000, np.random.default_rng(1))
    theirs = sps.bootstrap(
        (values,), np.mean, confidence_level=0.95, n_resamples=40_000, method="BCa", rng=2
    ).confidence_interval
    width = theirs.high - theirs.low
    assert ours[0] == pytest.approx(theirs.low, abs=0.03 * width)
    assert ours[1] == pytest.approx(theirs.high, abs=0.03 * width)


def test_bca_interval_on_few_distinct_values_agrees_with_scipy() -> None:
    rng = np.random.default_rng(8)
    values = rng.choice([-1.0, 0.0, 1.0], size=300, p=[0.1, 0.75, 0.15])
    ours = bca_interval(values, 0.9, 40_000, np.random.default_rng(1))
    theirs = sps.bootstrap(
        (values,), np.mean, confidence_level=0.9, n_resamples=40_000, method="BCa", rng=2
    ).confidence_interval
    width = theirs.high - theirs.low
    assert ours[0] == pytest.approx(theirs.low, abs=0.04 * width)
    assert ours[1] == pytest.approx(theirs.high, abs=0.04 * width)


def test_sign_flip_p_agrees_with_scipys_exact_permutation_test() -> None:
    rng = np.random.default_rng(3)
    base = rng.random(11)
    cand = base + rng.normal(0.15, 0.2, 11)
    exact = sps.permutation_test(
        (base, cand),
        lambda x, y, axis: np.mean(y - x, axis=axis),
        permutation_type="samples",
        n_resamples=10_000,  # 2^11 < 10,000: scipy enumerates every sign assignment
        alternative="two-sided",
        vectorized=True,
    ).pvalue
    # 2^11 assignments fit in 10,000: enumerated, the same number
    assert sign_flip_p(cand - base, 10_000, np.random.default_rng(4)) == pytest.approx(exact)
    # 1,000 do not: drawn at random, within Monte Carlo error
    drawn = sign_flip_p(cand - base, 1_000, np.random.default_rng(4))
    assert drawn == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 1000) + 0.002)


def test_identical_runs() -> None:
    scores = [1.0, 0.0] * 20
    r = compare(scores, scores)
    assert (r.difference, r.low, r.high, r.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert r.binary and (r.to_fail, r.to_pass) == (0, 0)
    # 40 items cannot show a 2-point drop: six one-way flips are the least McNemar sees
    assert r.detectable_drop == pytest.approx(6 / 40)
    assert verdict(r, r.p_value, max_drop=0.02) == "underpowered"
    big = compare([1.0, 0.0] * 1000, [1.0, 0.0] * 1000)
    assert verdict(big, big.p_value, max_drop=0.02) == "no_difference"


def test_every_item_moved_by_the_same_amount() -> None:
    base = [0.2, 0.4, 0.6, 0.8] * 5
    r = compare(base, [b - 0.1 for b in base])
    assert r.low == r.high == pytest.approx(-0.1)
    assert r.p_value == pytest.approx(2 * 0.5**20)  # only the all-same-sign assignments
    assert verdict(r, r.p_value) == "worse"


def test_too_few_items_give_no_verdict() -> None:
    r = compare([1.0] * (MIN_ITEMS - 1), [0.0] * (MIN_ITEMS - 1))
    assert verdict(r, r.p_value) == "too_little_data"


def test_a_real_drop_on_pass_fail_scores() -> None:
    rng = np.random.default_rng(11)
    base = (rng.random(400) < 0.85).astype(float)
    cand = base.copy()
    worse = rng.choice(np.flatnonzero(base == 1), 30, replace=False)
    cand[worse] = 0.0
    r = compare(base, cand)
    assert r.binary and (r.to_fail, r.to_pass) == (30, 0)
    assert r.difference == pytest.approx(-30 / 400)
    assert r.low < r.difference < r.high < 0
    assert r.p_value == pytest.approx(mcnemar_exact(30, 0))
    assert verdict(r, r.p_value) == "worse"
    assert "McNemar" in r.method


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="one length"):
        compare([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        compare([1.0, math.nan], [1.0, 0.0])
    with pytest.raises(ValueError, match="confidence"):
        compare([1.0], [1.0], confidence=1.5)
    with pytest.raises(ValueError, match="negative"):
        mcnemar_exact(-1, 3)


# -- simulation: what the verdicts claim -------------------------------------------------

SIMS = 400


def _same_rate_pairs(
    rng: np.random.Generator, n: int, pass_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Correlated pass/fail pairs with no difference: the candidate keeps the baseline's
    outcome 80 % of the time and is a fresh draw at the same pass rate otherwise."""
    base = (rng.random(n) < pass_rate).astype(float)
    fresh = (rng.random(n) < pass_rate).astype(float)
    return base, np.where(rng.random(n) < 0.8, base, fresh)


def test_false_worse_rate_stays_under_alpha_with_no_difference() -> None:
    rng = np.random.default_rng(20)
    false_worse = 0
    for _ in range(SIMS):
        base, cand = _same_rate_pairs(rng, 200, 0.8)
        r = compare(base, cand, resamples=199, seed=int(rng.integers(1 << 30)))
        false_worse += verdict(r, r.p_value) == "worse"
    # alpha is two-sided 0.05; "worse" is one side: expect <= 2.5 %, allow 3 standard errors
    assert false_worse / SIMS <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / SIMS)


def test_bca_interval_covers_the_true_difference() -> None:
    rng = np.random.default_rng(21)
    covered = 0
    for _ in range(SIMS):
        base = rng.beta(2, 5, 120)
        cand = np.clip(base + rng.normal(-0.03, 0.12, 120), 0, 1)
        r = compare(base, cand, resamples=999, seed=int(rng.integers(1 << 30)))
        covered += r.low <= _TRUE_DIFF <= r.high
    coverage = covered / SIMS
    assert 0.95 - 3 * math.sqrt(0.95 * 0.05 / SIMS) <= coverage <= 0.985


def _true_difference() -> float:
    """The clipped model's true mean difference, from two million draws."""
    rng = np.random.default_rng(99)
    base = rng.beta(2, 5, 2_000_000)
    cand = np.clip(base + rng.normal(-0.03, 0.12, base.size), 0, 1)
    return float((cand - base).mean())


_TRUE_DIFF = _true_difference()


def test_a_drop_of_the_detectable_size_is_found_about_80_percent_of_the_time() -> None:
    rng = np.random.default_rng(22)
    n, sd = 300, 0.15
    drop = detectable_drop(n, sd, binary=False)
    found = 0
    for _ in range(SIMS):
        base = rng.random(n)
        cand = base - drop + rng.normal(0, sd, n)
        r = compare(base, cand, resamples=999, seed=int(rng.integers(1 << 30)))
        found += r.p_value < 0.05 and r.difference < 0
    power = found / SIMS
    assert 0.8 - 4 * math.sqrt(0.16 / SIMS) <= power <= 0.8 + 4 * math.sqrt(0.16 / SIMS)
