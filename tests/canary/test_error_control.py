"""Error control under continuous monitoring, and power, by simulation (seeded, vectorised).

Each test runs a few hundred rollouts at a 1:9 split and checks every 50 canary requests
(500 requests), as a controller peeking at its counters would. The candidate sits exactly
on the tolerance's margin (the hardest case for the null) or is identical to stable. A test
that is valid at level alpha may call a false regression in at most an alpha share of them,
however often it is looked at; the naive z-test at the same looks is here to show that the
simulation can tell the difference.
"""

from __future__ import annotations

import math

import numpy as np

from trimtab.stats.intervals import mixture_rho
from trimtab.stats.means import mean_evidence
from trimtab.stats.rates import rate_evidence, rate_mixtures
from trimtab.stats.sequential import Direction, Tolerance

ROLLOUTS = 300
LOOK = 500  # requests between looks: ~50 canary requests
SHARE = 0.1


def _rates(
    p_c: float,
    p_s: float,
    *,
    tolerance: Tolerance,
    alpha: float,
    alpha_pass: float,
    looks: int,
    seed: int,
    rollouts: int = ROLLOUTS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First-regression, first-pass and naive-z times (canary requests; inf = never)."""
    rng = np.random.default_rng(seed)
    log_psi0, reg_mix, ok_mix = rate_mixtures(Direction.HIGHER_IS_WORSE, tolerance)
    coef = math.exp(log_psi0)
    kc, nc, ks, ns = (np.zeros((rollouts, 1)) for _ in range(4))
    reg_at, ok_at, naive_at = (np.full(rollouts, np.inf) for _ in range(3))
    for _ in range(looks):
        bc = rng.binomial(LOOK, SHARE, (rollouts, 1))
        nc += bc
        ns += LOOK - bc
        kc += rng.binomial(bc, p_c)
        ks += rng.binomial(LOOK - bc, p_s)
        reg, ok = rate_evidence(
            kc, nc, ks, ns, log_psi0=log_psi0, regression_mixture=reg_mix, pass_mixture=ok_mix
        )
        n_now = nc[:, 0]
        for at, hit in (
            (reg_at, reg >= math.log(1 / alpha)),
            (ok_at, ok >= math.log(1 / alpha_pass)),
            (naive_at, _naive_z(kc, nc, ks, ns, coef) > 1.645),  # one-sided p < alpha = 5 %
        ):
            new = hit & np.isinf(at)
            at[new] = n_now[new]
    return reg_at, ok_at, naive_at


def _naive_z(
    kc: np.ndarray, nc: np.ndarray, ks: np.ndarray, ns: np.ndarray, coef: float
) -> np.ndarray:
    pc, ps = kc[:, 0] / np.maximum(nc[:, 0], 1), ks[:, 0] / np.maximum(ns[:, 0], 1)
    pool = (kc[:, 0] + ks[:, 0]) / np.maximum(nc[:, 0] + ns[:, 0], 1)
    se = np.sqrt(pool * (1 - pool) * (1 / np.maximum(nc[:, 0], 1) + coef**2 / ns[:, 0]))
    return np.where(se > 0, (pc - coef * ps) / np.where(se > 0, se, 1), 0.0)


def test_identical_error_rates_false_regressions_stay_under_alpha() -> None:
    # 300 rollouts x 100 looks (5,000 canary requests each); alpha 5 % for statistical teeth.
    reg, _, naive = _rates(
        0.01, 0.01, tolerance=Tolerance(), alpha=0.05, alpha_pass=0.05, looks=100, seed=1
    )
    false_rate = float(np.isfinite(reg).mean())
    assert false_rate <= 0.05, false_rate
    # Peeking at a fixed-sample z-test inflates its 5 % several times over.
    assert float(np.isfinite(naive).mean()) > 2 * 0.05


def test_candidate_on_the_margin_is_rarely_called_either_way() -> None:
    # Errors 10 % above stable with a 10 % tolerance: neither a regression nor a pass is
    # true, and each may be claimed at most alpha / alpha_pass of the time.
    reg, ok, _ = _rates(
        0.033,
        0.03,
        tolerance=Tolerance(relative=0.1),
        alpha=0.05,
        alpha_pass=0.05,
        looks=100,
        seed=2,
    )
    assert float(np.isfinite(reg).mean()) <= 0.05
    assert float(np.isfinite(ok).mean()) <= 0.05


def test_common_events_are_controlled_too() -> None:
    # Negative feedback at 10 %, identical arms: the split test is conservative here.
    reg, _, _ = _rates(
        0.1, 0.1, tolerance=Tolerance(), alpha=0.05, alpha_pass=0.05, looks=60, seed=3
    )
    assert float(np.isfinite(reg).mean()) <= 0.05


def test_clear_regressions_are_caught_quickly() -> None:
    # Errors 1 % -> 5 %: every rollout rolls back, the median within 300 canary requests.
    reg, ok, _ = _rates(
        0.05,
        0.01,
        tolerance=Tolerance(),
        alpha=0.01,
        alpha_pass=0.05,
        looks=40,
        seed=4,
        rollouts=200,
    )
    assert float(np.isfinite(reg).mean()) >= 0.99
    assert float(np.median(reg)) <= 300
    assert not np.isfinite(ok).any()


def test_an_unchanged_candidate_passes_a_wide_tolerance() -> None:
    reg, ok, _ = _rates(
        0.05,
        0.05,
        tolerance=Tolerance(relative=0.5),
        alpha=0.01,
        alpha_pass=0.05,
        looks=60,
        seed=5,
        rollouts=200,
    )
    assert float(np.isfinite(ok).mean()) >= 0.95
    assert not np.isfinite(reg).any()


def _means(
    factor: float,
    *,
    tolerance: Tolerance,
    alpha: float,
    alpha_pass: float,
    looks: int,
    seed: int,
    sigma: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Log-normal costs (coefficient of variation 1.3 at sigma 1): first regression/pass."""
    rng = np.random.default_rng(seed)
    r = ROLLOUTS
    sums = {k: np.zeros((r, 1)) for k in ("nc", "sc", "qc", "ns", "ss", "qs")}
    reg_at, ok_at = np.full(r, np.inf), np.full(r, np.inf)
    rho_reg, rho_ok = mixture_rho(1000, alpha), mixture_rho(2000, alpha_pass)
    coef = tolerance.coef(Direction.HIGHER_IS_WORSE)
    for _ in range(looks):
        x = np.exp(rng.normal(-(sigma**2) / 2, sigma, (r, LOOK)))
        is_c = rng.random((r, LOOK)) < SHARE
        c = np.where(is_c, x * factor, 0.0)
        s = np.where(is_c, 0.0, x)
        sums["nc"] += is_c.sum(1, keepdims=True)
        sums["ns"] += (~is_c).sum(1, keepdims=True)
        sums["sc"] += c.sum(1, keepdims=True)
        sums["qc"] += (c * c).sum(1, keepdims=True)
        sums["ss"] += s.sum(1, keepdims=True)
        sums["qs"] += (s * s).sum(1, keepdims=True)
        reg, ok = mean_evidence(
            sums["nc"],
            sums["sc"],
            sums["qc"],
            sums["ns"],
            sums["ss"],
            sums["qs"],
            sign=1.0,
            coef=coef,
            offset=tolerance.absolute,
            rho_regression=rho_reg,
            rho_pass=rho_ok,
        )
        n_now = sums["nc"][:, 0]
        hits = (reg >= math.log(1 / alpha), ok >= math.log(1 / alpha_pass))
        for at, hit in zip((reg_at, ok_at), hits, strict=True):
            new = hit & np.isinf(at)
            at[new] = n_now[new]
    return reg_at, ok_at


def test_skewed_costs_on_the_margin_are_controlled_both_ways() -> None:
    tol = Tolerance(relative=0.05)
    reg, ok = _means(1.05, tolerance=tol, alpha=0.05, alpha_pass=0.05, looks=60, seed=6)
    assert float(np.isfinite(reg).mean()) <= 0.05
    assert float(np.isfinite(ok).mean()) <= 0.05


def test_cost_regression_is_caught_and_a_cheaper_candidate_passes() -> None:
    tol = Tolerance(relative=0.05)
    reg, _ = _means(1.5, tolerance=tol, alpha=0.01, alpha_pass=0.05, looks=40, seed=7)
    assert float(np.isfinite(reg).mean()) >= 0.95
    reg, ok = _means(0.8, tolerance=tol, alpha=0.01, alpha_pass=0.05, looks=40, seed=8)
    assert float(np.isfinite(ok).mean()) >= 0.95
    assert not np.isfinite(reg).any()
