"""The design effect of requests clustered by user (stats.clustered)."""

from __future__ import annotations

import numpy as np
import pytest

from trimtab.stats.clustered import MIN_UNITS, NO_EVIDENCE, design_effect


def test_independent_requests_have_no_design_effect_whatever_the_rates() -> None:
    rng = np.random.default_rng(1)
    cand = rng.random(5000) < 0.3
    k = (rng.random((1, 5000)) < np.where(cand, 0.04, 0.02)).astype(float)
    assert float(design_effect(k, np.ones((1, 5000)), cand)) == pytest.approx(1.0, abs=1e-3)


def test_requests_not_broken_down_count_as_one_unit_each() -> None:
    rng = np.random.default_rng(2)
    cand = rng.random(400) < 0.5
    k = (rng.random((1, 400)) < 0.05).astype(float)
    heavy_k, heavy_n = np.array([[30.0, 2.0]]), np.array([[100.0, 100.0]])
    both = design_effect(
        np.concatenate([k, heavy_k], 1), np.concatenate([np.ones((1, 400)), heavy_n], 1),
        np.concatenate([cand, [True, False]]),
    )  # fmt: skip
    rest_k = np.array([[k[0, ~cand].sum()], [k[0, cand].sum()]])
    rest_n = np.array([[(~cand).sum()], [cand.sum()]], dtype=float)
    folded = design_effect(heavy_k, heavy_n, np.array([True, False]), rest_k, rest_n)
    assert float(folded) == pytest.approx(float(both), rel=1e-9)
    assert float(both) > 2  # the heavy error-prone user


def test_equal_clusters_give_kishs_design_effect() -> None:
    """m requests per user, users' rates spread by a beta: D ~ 1 + (m - 1) ICC, with
    ICC = Var(p_u) / (p (1 - p)) (Kish 1965)."""
    rng = np.random.default_rng(3)
    users, m = 4000, 20
    p_u = rng.beta(1.0, 49.0, users)  # mean 2 %
    k = rng.binomial(m, p_u)[None, :].astype(float)
    cand = np.arange(users) % 2 == 0
    d = float(design_effect(k, np.full((1, users), float(m)), cand))
    icc = float(np.var(p_u) / (p_u.mean() * (1 - p_u.mean())))
    assert d == pytest.approx(1 + (m - 1) * icc, rel=0.15)


def test_the_design_effect_is_never_below_one_and_vectorises() -> None:
    rng = np.random.default_rng(4)
    k = (rng.random((7, 3, 50)) < 0.1).astype(float)
    d = design_effect(k, np.ones((7, 3, 50)), rng.random((7, 50)) < 0.5)
    assert d.shape == (7,) and bool(np.all(d >= 1.0))
    nothing = design_effect(np.zeros((1, 50)), np.ones((1, 50)), np.arange(50) % 2 == 0)
    assert float(nothing) == 1.0


def test_too_few_units_give_no_evidence() -> None:
    """19 users on the candidate: their variance cannot be believed yet."""
    cand = np.arange(100) < 19
    k = (np.arange(100) % 7 == 0).astype(float)[None, :]
    assert float(design_effect(k, np.full((1, 100), 5.0), cand)) == NO_EVIDENCE
    more = np.arange(100) < MIN_UNITS
    assert float(design_effect(k, np.full((1, 100), 5.0), more)) < NO_EVIDENCE


def test_per_window_arms_of_units_that_keep_their_arm_change_nothing() -> None:
    rng = np.random.default_rng(5)
    cand = rng.random(300) < 0.4
    k = (rng.random((3, 300)) < 0.05).astype(float)
    n = np.ones((3, 300))
    fixed = design_effect(k, n, cand)
    assert float(design_effect(k, n, np.broadcast_to(cand, (3, 300)))) == float(fixed)


def _sandwich_by_hand(k: np.ndarray, n: np.ndarray, arm: np.ndarray) -> float:
    """The design effect written out unit by unit: each unit's influence on the stratified
    difference summed over its windows, in whichever arm it was in each."""
    windows, units = k.shape
    influence = np.zeros(units)
    binomial = 0.0
    n_c_all = sum(n[w, arm[w]].sum() for w in range(windows))
    for w in range(windows):
        c, s = arm[w], ~arm[w]
        n_c, n_s = n[w, c].sum(), n[w, s].sum()
        p = k[w].sum() / n[w].sum()
        for u in range(units):
            weight = 1.0 / n_c_all if c[u] else -(n_c / n_c_all) / n_s
            influence[u] += weight * (k[w, u] - p * n[w, u])
            binomial += weight**2 * (k[w, u] * (1 - 2 * p) + p * p * n[w, u])
    g = float((n.sum(axis=0) > 0).sum())
    return max(float((influence**2).sum()) * g / (g - 1) / binomial, 1.0)


def test_a_user_who_moved_to_the_candidate_is_one_cluster_across_both_arms() -> None:
    """By bucket, a widening stage moves users from stable onto the candidate: each is one
    unit, its influence summed over both arms (against the formula written out by hand),
    which for an error-prone user who moved is less than two units would count (the two
    arms' influences have opposite signs)."""
    rng = np.random.default_rng(6)
    users = 200
    bucket = rng.random(users)
    arm = np.stack([bucket < 0.1, bucket < 0.5])  # stage 10 %, then 50 %
    prone = rng.gamma(0.5, 2.0, users)
    n = rng.integers(1, 30, (2, users)).astype(float)
    k = rng.binomial(n.astype(int), np.minimum(0.03 * prone, 1.0)).astype(float)
    d = float(design_effect(k, n, arm))
    assert d == pytest.approx(_sandwich_by_hand(k, n, arm), rel=1e-9)
    moved = arm[1] & ~arm[0]
    # the same users split into a stable unit and a candidate unit
    split_k = np.concatenate([k, np.stack([np.zeros(users), k[1]])[:, moved]], axis=1)
    split_k[1, np.flatnonzero(moved)] = 0.0
    split_n = np.concatenate([n, np.stack([np.zeros(users), n[1]])[:, moved]], axis=1)
    split_n[1, np.flatnonzero(moved)] = 0.0
    split_arm = np.concatenate([arm, np.ones((2, int(moved.sum())), bool)], axis=1)
    split_arm[:, np.flatnonzero(moved)] = False
    assert d < float(design_effect(split_k, split_n, split_arm))
