"""The rate tests' mixtures: the regression mixture's large-effect part, and blends."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from trimtab.stats.intervals import RatioMixture, split_log_e
from trimtab.stats.rates import (
    LARGE_FACTOR,
    LARGE_WEIGHT,
    SPREAD,
    blend,
    rate_evidence,
    rate_mixtures,
)
from trimtab.stats.sequential import Direction, Tolerance

UP = Direction.HIGHER_IS_WORSE


def _mass_near(mix: RatioMixture, ratio: float, width: float = 0.3) -> float:
    u = np.asarray(mix.log_ratios)
    w = np.exp(np.asarray(mix.log_weights))
    return float(w[np.abs(np.abs(u) - math.log(ratio)) < width].sum())


def test_blend_is_the_weighted_sum_of_its_parts_e_values() -> None:
    a = RatioMixture.around(2.0, spread=0.25)
    b = RatioMixture.around(5.0, spread=0.3)
    mix = blend([(3.0, a), (1.0, b)])  # weights renormalised: 0.75 / 0.25
    assert float(np.exp(np.asarray(mix.log_weights)).sum()) == pytest.approx(1.0)
    k_c, k_s, share = np.array([[7.0], [3.0]]), np.array([[40.0], [45.0]]), np.array([[0.05]] * 2)
    got = np.exp(split_log_e(k_c, k_s, share, 0.0, mix))
    want = 0.75 * np.exp(split_log_e(k_c, k_s, share, 0.0, a)) + 0.25 * np.exp(
        split_log_e(k_c, k_s, share, 0.0, b)
    )
    assert got == pytest.approx(want, rel=1e-12)


def test_blend_refuses_parts_on_other_grids_or_without_weight() -> None:
    a = RatioMixture.around(2.0)
    with pytest.raises(ValueError, match="grid"):
        blend([(0.5, a), (0.5, RatioMixture.around(2.0, points=16))])
    with pytest.raises(ValueError, match="weights"):
        blend([(1.0, a), (0.0, a)])


def test_the_default_regression_mixture_puts_a_third_near_five_times() -> None:
    _, reg, ok = rate_mixtures(UP, Tolerance())
    assert LARGE_WEIGHT == 0.35 and LARGE_FACTOR == 2.5
    # the design part (sd 0.12 around 2x) has almost no mass within 0.3 of log 5; the large
    # part (sd 0.25 around 5x) has three quarters of its there
    assert _mass_near(reg, 5.0) > 0.7 * LARGE_WEIGHT
    alone = RatioMixture.around(2.0, spread=SPREAD)
    assert _mass_near(alone, 5.0) < 0.02
    # large_weight 0 is the design's mixture alone; the pass mixture is unchanged by it
    _, reg0, ok0 = rate_mixtures(UP, Tolerance(), large_weight=0.0)
    assert reg0 == alone and ok0 == ok
    # lower is worse: the mirror image, below the null
    _, down, _ = rate_mixtures(Direction.LOWER_IS_WORSE, Tolerance())
    assert down.log_ratios == tuple(-x for x in reg.log_ratios)
    assert down.log_weights == pytest.approx(reg.log_weights)
    with pytest.raises(ValueError):
        rate_mixtures(UP, Tolerance(), large_weight=1.0)
    with pytest.raises(ValueError):
        rate_mixtures(UP, Tolerance(), large_factor=1.0)


@pytest.mark.parametrize("events, share", [(5, 0.01), (40, 0.05), (200, 0.25), (60, 0.5)])
def test_the_blended_e_value_has_expectation_one_at_the_null(events: int, share: float) -> None:
    # Given K events and psi = 1, the candidate's count is Binomial(K, share) exactly; the
    # e-value's expectation over scipy's pmf is 1 (an e-value, so Ville's bound holds).
    log_psi0, reg, _ = rate_mixtures(UP, Tolerance())
    k_c = np.arange(events + 1, dtype=np.float64)[:, None]
    le = split_log_e(k_c, events - k_c, np.full_like(k_c, share), log_psi0, reg)
    pmf = stats.binom.pmf(np.arange(events + 1), events, share)
    assert float((pmf * np.exp(le)).sum()) == pytest.approx(1.0, rel=1e-9)


def _first_regression(
    p_c: float, mixture: RatioMixture, *, seed: int, rollouts: int = 400
) -> np.ndarray:
    """Canary requests at the first regression, errors at 1 % on stable, at the default plan's
    early shares (100 canary requests at 1 %, 300 at 5 %, then 25 %), a look every 100
    requests; inf: never within 8,000 canary requests."""
    rng = np.random.default_rng(seed)
    shares = np.array([0.01] * 50 + [0.05] * 60 + [0.25] * 300)
    kc, nc, ks, ns = (np.zeros((rollouts, 3)) for _ in range(4))
    at = np.full(rollouts, np.inf)
    for share in shares:
        col = {0.01: 0, 0.05: 1, 0.25: 2}[float(share)]
        c = rng.binomial(100, share, rollouts)
        nc[:, col] += c
        ns[:, col] += 100 - c
        kc[:, col] += rng.binomial(c, p_c)
        ks[:, col] += rng.binomial(100 - c, 0.01)
        reg, _ = rate_evidence(
            kc, nc, ks, ns, log_psi0=0.0, regression_mixture=mixture, pass_mixture=mixture
        )
        new = (reg >= math.log(100)) & np.isinf(at)
        at[new] = nc.sum(1)[new]
        if nc.sum(1).min() > 8000:
            break
    return at


def test_the_large_part_catches_5x_sooner_and_2x_about_as_fast() -> None:
    # The same traffic judged by both mixtures (seeded): 1 % -> 5 % is called sooner with
    # a third of the mass near 5x, and 1 % -> 2 % within a few per cent of the design alone.
    _, new, _ = rate_mixtures(UP, Tolerance())
    old = RatioMixture.around(2.0, spread=0.35)  # the mixture before: one part, sd 0.35
    five_new = _first_regression(0.05, new, seed=11)
    five_old = _first_regression(0.05, old, seed=11)
    assert np.isfinite(five_new).all() and np.isfinite(five_old).all()
    assert np.median(five_new) < 0.95 * np.median(five_old)
    assert (five_new <= five_old).mean() > 0.9
    two_new = _first_regression(0.02, new, seed=12)
    two_old = _first_regression(0.02, old, seed=12)
    assert np.isfinite(two_new).mean() > 0.97
    assert np.median(two_new) <= 1.05 * np.median(two_old)


def test_identical_rates_rarely_regress_with_the_blend() -> None:
    # 400 rollouts x 8,000+ canary requests at alpha 1 %, looked at every 100 requests:
    # false regressions within the binomial 99.9 % bound of 1 % (11 of 400).
    _, new, _ = rate_mixtures(UP, Tolerance())
    at = _first_regression(0.01, new, seed=13)
    bound = stats.binom.ppf(0.999, 400, 0.01)
    assert np.isfinite(at).sum() <= bound
