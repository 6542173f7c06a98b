"""The design effect of requests clustered by user (stats.clustered)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from trimtab.stats.clustered import (
    MIN_HISTORY_UNITS,
    MIN_UNITS,
    NO_EVIDENCE,
    adjusted_proneness,
    design_effect,
    effective_clusters,
    history_coefficient,
    majority_arm,
    model_design_effect,
    regression_design_effect,
)
from trimtab.stats.student import t_widening


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


def test_the_effective_clusters_are_the_units_of_equal_influence() -> None:
    """(sum psi^2)^2 / sum psi^4: G for G units of equal influence, near 1 when one unit's
    residual is most of the variance, and the same whatever the rates' scale."""
    cand = np.arange(40) % 2 == 0
    k = np.where(np.arange(40) % 4 < 2, 3.0, 1.0)[None, :]  # |residual| 1 for every unit
    n = np.full((1, 40), 20.0)
    assert float(effective_clusters(k, n, cand)) == pytest.approx(40.0, rel=1e-9)
    # each arm's mean is 2 too: against the arms, the same 40
    arms = float(effective_clusters(k, n, cand, centre="arms"))
    assert arms == pytest.approx(40.0, rel=1e-9)
    heavy = k.copy()
    heavy[0, 0] = 60.0  # one unit's residual ~58 against the others' 1
    assert 1.0 <= float(effective_clusters(heavy, n, cand)) < 1.2
    rng = np.random.default_rng(9)
    mixed = rng.binomial(20, 0.1, (3, 1, 40)).astype(float)
    got = effective_clusters(mixed, np.broadcast_to(n, mixed.shape), cand)
    assert got.shape == (3,) and bool(np.all((got >= 1.0) & (got <= 40.0)))
    assert float(effective_clusters(np.zeros((1, 40)), n, cand)) == 0.0


def test_the_model_design_effect_is_kishs_and_keeps_a_heavy_units_variance() -> None:
    """Equal clusters: ~ 1 + (m - 1) ICC as the sandwich; independent requests: 1; and a
    heavy unit whose errors happen to be just what its rate predicts adds nothing to the
    sandwich (its squared residual is 0) but its model variance to the model's."""
    rng = np.random.default_rng(3)
    users, m = 4000, 20
    p_u = rng.beta(1.0, 49.0, users)  # mean 2 %
    k = rng.binomial(m, p_u)[None, :].astype(float)
    cand = np.arange(users) % 2 == 0
    n = np.full((1, users), float(m))
    icc = float(np.var(p_u) / (p_u.mean() * (1 - p_u.mean())))
    assert float(model_design_effect(k, n, cand)) == pytest.approx(1 + (m - 1) * icc, rel=0.15)
    k2 = (rng.random((1, 5000)) < 0.02).astype(float)
    c2 = rng.random(5000) < 0.3
    assert float(model_design_effect(k2, np.ones((1, 5000)), c2)) == pytest.approx(1.0, abs=1e-3)
    # one heavy unit on the candidate with 2,000 requests and exactly its arm's rate
    heavy_n = np.concatenate([n, [[2000.0]]], axis=1)
    on_c = np.concatenate([cand, [True]])
    pooled = float(k.sum() / n.sum())
    heavy_k = np.concatenate([k, [[round(pooled * 2000)]]], axis=1)  # its residual ~ 0
    sandwich = float(design_effect(heavy_k, heavy_n, on_c))
    model = float(model_design_effect(heavy_k, heavy_n, on_c))
    assert model > 1.4 * sandwich, (model, sandwich)
    few = np.arange(100) < 19
    kf = (np.arange(100) % 7 == 0).astype(float)[None, :]
    assert float(model_design_effect(kf, np.full((1, 100), 5.0), few)) == NO_EVIDENCE


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


def _stratified_difference(y: np.ndarray, arm: np.ndarray) -> float:
    """The candidate's mean minus stable's, over one window, request by request."""
    return float(y[arm].mean() - y[~arm].mean())


def test_the_design_effect_of_a_mean_matches_the_variance_a_direct_simulation_gives() -> None:
    """Cost per request with sticky users of unequal activity and their own cost level:
    the variance of the difference of means over 2,000 replicated experiments, against the
    binomial-style variance (every request its own unit) times the design effect."""
    rng = np.random.default_rng(8)
    users, reps = 300, 2000
    act = 1.0 / np.arange(1, users + 1) ** 0.8
    level = np.exp(0.5 * rng.standard_normal(users))  # a user's own cost level, fixed
    diffs, naive, ds = [], [], []
    for _ in range(reps):
        n = rng.poisson(4000 * act / act.sum()).astype(float)
        cand = rng.random(users) < 0.3
        owner = np.repeat(np.arange(users), n.astype(int))
        y = level[owner] * np.exp(0.6 * rng.standard_normal(owner.size))
        on = cand[owner]
        diffs.append(_stratified_difference(y, on))
        naive.append(y[on].var(ddof=1) / on.sum() + y[~on].var(ddof=1) / (~on).sum())
        total = np.bincount(owner, weights=y, minlength=users)[None, :]
        squares = np.bincount(owner, weights=y * y, minlength=users)[None, :]
        ds.append(float(design_effect(total, n[None, :], cand, squares=squares)))
    observed = float(np.var(diffs, ddof=1))
    predicted = float(np.mean(naive)) * float(np.mean(ds))
    assert float(np.mean(ds)) > 3  # the users' levels matter here
    assert observed == pytest.approx(predicted, rel=0.15)
    assert observed > 2.5 * float(np.mean(naive))  # and the per-request variance misses it


def test_a_means_design_effect_with_equal_clusters_is_kishs() -> None:
    """m observations per user, user effects of variance s_u^2 on noise s_e^2: D ~ 1 +
    (m - 1) ICC with ICC = s_u^2 / (s_u^2 + s_e^2) (Kish 1965); with squares of 0/1
    values it is the rate's design effect."""
    rng = np.random.default_rng(9)
    users, m = 4000, 10
    y = 0.5 * rng.standard_normal(users)[:, None] + rng.standard_normal((users, m))
    cand = np.arange(users) % 2 == 0
    total, squares = y.sum(1)[None, :], (y * y).sum(1)[None, :]
    d = float(design_effect(total, np.full((1, users), float(m)), cand, squares=squares))
    assert d == pytest.approx(1 + (m - 1) * 0.25 / 1.25, rel=0.1)
    k = (rng.random((1, users)) < 0.1).astype(float) * 3.0
    as_rate = design_effect(k, np.full((1, users), 3.0), cand)
    assert float(design_effect(k, np.full((1, users), 3.0), cand, squares=k)) == float(as_rate)


def test_the_log_latency_design_effect_bounds_the_tail_counts_own() -> None:
    """The latency tests count requests above a quantile; their design effect is taken on
    the log latency, which is at least the tail indicator's (a dichotomised latent normal
    correlates less than the latent one): conservative, never over-confident."""
    rng = np.random.default_rng(10)
    users = 2000
    act = 1.0 / np.arange(1, users + 1)
    for sigma_u in (0.1, 0.25, 0.5):
        n = rng.poisson(20_000 * act / act.sum()).astype(float)
        cand = rng.random(users) < 0.25
        owner = np.repeat(np.arange(users), n.astype(int))
        log_ms = np.log(800) + sigma_u * rng.standard_normal(users)[owner]
        log_ms = log_ms + 0.6 * rng.standard_normal(owner.size)
        tail = (log_ms > np.quantile(log_ms, 0.95)).astype(float)

        def per_user(v: np.ndarray, owner: np.ndarray = owner) -> np.ndarray:
            return np.bincount(owner, weights=v, minlength=users)[None, :]

        for centre in ("pooled", "arms"):  # the controller takes "arms" for a mean
            d_log = float(design_effect(per_user(log_ms), n[None, :], cand,
                                        squares=per_user(log_ms**2), centre=centre))  # fmt: skip
            d_tail = float(design_effect(per_user(tail), n[None, :], cand, centre=centre))
            assert d_log >= d_tail > 1.0


def test_cuped_recovers_the_coefficient_of_a_history_that_half_persists() -> None:
    """Units' rates during the rollout are 1 + 0.5 (x - 1) + noise in x, their rate before
    it: theta ~ 0.5; a history that predicts nothing gets ~0; too few units, 0."""
    rng = np.random.default_rng(11)
    units = 3000
    x = rng.gamma(2.0, 0.5, units)
    n = rng.integers(50, 500, units).astype(float)
    known = np.ones(units, bool)
    for beta in (1.0, 0.5):
        prone = np.maximum(1 + beta * (x - 1) + 0.3 * rng.standard_normal(units), 0.0)
        k = rng.poisson(0.02 * n * prone).astype(float)
        theta, used = history_coefficient(k, n, x, known)
        assert float(theta) == pytest.approx(beta, abs=0.06) and float(used) == units
    unrelated = rng.poisson(0.02 * n * rng.gamma(2.0, 0.5, units)).astype(float)
    assert float(history_coefficient(unrelated, n, x, known)[0]) < 0.06
    few = np.arange(units) < MIN_HISTORY_UNITS - 1
    assert float(history_coefficient(k, n, x, few)[0]) == 0.0
    # in closed form: the n-weighted least-squares line of k / n on x, its slope over its
    # value at x = 1 (the fit p n (1 + theta (x - 1)))
    slope, intercept = np.polyfit(x, k / n, 1, w=np.sqrt(n))
    want = min(slope / (intercept + slope), 1.0)
    assert float(history_coefficient(k, n, x, known)[0]) == pytest.approx(want)
    assert float(adjusted_proneness(x[:3], 0.5)[1]) == pytest.approx(1 + 0.5 * (x[1] - 1))


def test_the_history_coefficient_is_fitted_within_each_arm() -> None:
    """Counts that follow the model exactly, a candidate 1.5 times as error-prone, and the
    error-prone users (by their history) mostly on it: within the arms the fit recovers
    theta; pooled over them the candidate's excess is read as history predicting more
    (theta too high, which would credit the worse candidate with more expected events)."""
    rng = np.random.default_rng(3)
    users = 400
    x = rng.gamma(2.0, 0.5, users)
    n = rng.integers(20, 200, users).astype(float)
    cand = x > np.quantile(x, 0.4)
    theta = 0.6
    k = 0.02 * np.where(cand, 1.5, 1.0) * n * (1.0 + theta * (x - 1.0))
    known = np.ones(users, dtype=bool)
    within, used = history_coefficient(k, n, x, known, cand)
    assert float(within) == pytest.approx(theta, rel=1e-9) and float(used) == users
    pooled, _ = history_coefficient(k, n, x, known)
    assert float(pooled) > theta + 0.1
    # with the arms alike, both fits agree and recover theta
    same = 0.02 * n * (1.0 + theta * (x - 1.0))
    assert float(history_coefficient(same, n, x, known)[0]) == pytest.approx(theta, rel=1e-9)
    assert float(history_coefficient(same, n, x, known, cand)[0]) == pytest.approx(theta, rel=1e-9)
    # a unit's arm: where most of its requests were, a mover counted where it ended up
    per_window = np.array([[1.0, 5.0, 2.0], [3.0, 1.0, 2.0]])
    on = np.array([[False, False, True], [True, True, True]])
    assert majority_arm(per_window, on).tolist() == [True, False, True]


def test_a_means_design_effect_against_its_arms_does_not_grow_with_the_difference() -> None:
    """Kish's equal clusters with the candidate's every value shifted: against the pooled
    mean each candidate unit's residual carries the shift times its observations and ``D``
    grows with it; against the rest of its own arm it stays Kish's, shifted or not."""
    rng = np.random.default_rng(23)
    users, m = 4000, 10
    y = 0.5 * rng.standard_normal(users)[:, None] + rng.standard_normal((users, m))
    cand = np.arange(users) % 2 == 0
    kish = 1 + (m - 1) * 0.25 / 1.25
    n = np.full((1, users), float(m))
    for shift in (0.0, 1.0):
        z = y + np.where(cand, shift, 0.0)[:, None]
        total, squares = z.sum(1)[None, :], (z * z).sum(1)[None, :]
        arms = float(design_effect(total, n, cand, squares=squares, centre="arms"))
        pooled = float(design_effect(total, n, cand, squares=squares))
        assert arms == pytest.approx(kish, rel=0.1)
        if shift:
            assert pooled > 1.3 * arms  # the shift read as spread
    with pytest.raises(ValueError, match="centre"):
        design_effect(total, n, cand, squares=squares, centre="stable")


def test_a_unit_that_is_most_of_its_arm_is_measured_against_the_rest_of_it() -> None:
    """An early stage: 21 users on the candidate, one of them 90 % of its requests, each
    user with its own level. Against the arm's mean that user's residual is a tenth of its
    deviation (it makes the mean), so the plain sandwich would miss most of the variance;
    left out (over ``1 - h``) it is measured against the others, and the variance of the
    difference over 2,000 replicated experiments is what the per-request variance times
    the design effect says."""
    rng = np.random.default_rng(24)
    n_c = np.concatenate([[1800.0], np.full(20, 10.0)])
    n_s = np.full(300, 30.0)
    n = np.concatenate([n_c, n_s])
    cand = np.arange(n.size) < n_c.size
    owner = np.repeat(np.arange(n.size), n.astype(int))
    on = cand[owner]
    diffs, naive, ds = [], [], []
    for _ in range(2000):
        level = 0.5 * rng.standard_normal(n.size)  # each user's own level, drawn afresh
        y = level[owner] + 0.6 * rng.standard_normal(owner.size)
        diffs.append(float(y[on].mean() - y[~on].mean()))
        naive.append(y[on].var(ddof=1) / on.sum() + y[~on].var(ddof=1) / (~on).sum())
        total = np.bincount(owner, weights=y, minlength=n.size)[None, :]
        squares = np.bincount(owner, weights=y * y, minlength=n.size)[None, :]
        ds.append(float(design_effect(total, n[None, :], cand, squares=squares, centre="arms")))
    observed = float(np.var(diffs, ddof=1))
    predicted = float(np.mean(naive)) * float(np.mean(ds))
    assert observed > 20 * float(np.mean(naive))  # the heavy user's level is most of it
    assert observed == pytest.approx(predicted, rel=0.2)


def test_the_regression_design_effect_holds_a_one_look_test_at_alpha() -> None:
    """400 users of Zipf 1.0 activity (20,000 requests) erring at 1 % times a gamma
    proneness of mean 1, no difference between the arms, 4,000 draws: a one-sided z test of
    the rate difference on the binomial variance times D rejects at 1 % in more than 1 %
    of draws with the sandwich against the arms alone (1.55 %: its few effective units'
    variance is noisy), and in at most 1 % with it widened by the ratio of t widenings on
    the users' and the requests' degrees of freedom (regression_design_effect: 0.13 %).
    Seeded; the shares are the test's, not bounds."""
    rng = np.random.default_rng(5)
    draws, users = 4000, 400
    cand = np.arange(users) % 2 == 1
    activity = 1.0 / np.arange(1, users + 1)
    activity = activity / activity.sum() * 20_000
    n = np.maximum(rng.poisson(np.broadcast_to(activity, (draws, users))), 1).astype(float)
    x = rng.gamma(1.0, 1.0, (draws, users))
    k = rng.binomial(n.astype(np.int64), np.minimum(0.01 * x, 1.0)).astype(float)
    n_c, n_s = n[:, cand].sum(1), n[:, ~cand].sum(1)
    p = (k[:, cand].sum(1) + k[:, ~cand].sum(1)) / (n_c + n_s)
    z = (k[:, cand].sum(1) / n_c - k[:, ~cand].sum(1) / n_s) / np.sqrt(
        p * (1 - p) * (1 / n_c + 1 / n_s)
    )
    z_99 = float(stats.norm.ppf(0.99))
    arms = design_effect(k[:, None], n[:, None], cand, centre="arms")
    got = regression_design_effect(k[:, None], n[:, None], cand, alpha=0.01)
    widened, df = got.d, got.units
    np.testing.assert_allclose(df, effective_clusters(k[:, None], n[:, None], cand, centre="arms"))
    # every request its own term: a rate's influence is w (1 - p) on an event, -w p off one
    p_c, p_s = k[:, cand].sum(1) / n_c, k[:, ~cand].sum(1) / n_s
    p_arm = np.where(cand, p_c[:, None], p_s[:, None])
    w = np.where(cand, 1.0 / n_c[:, None], -1.0 / n_s[:, None])
    sq = (w**2 * (k * (1 - p_arm) ** 2 + (n - k) * p_arm**2)).sum(1)
    fo = (w**4 * (k * (1 - p_arm) ** 4 + (n - k) * p_arm**4)).sum(1)
    df_requests = sq**2 / fo
    assert float(np.median(df_requests)) > 10 * float(np.median(df))
    factor = np.maximum(t_widening(df, 0.01) / t_widening(df_requests, 0.01), 1.0)
    np.testing.assert_allclose(widened, arms * factor)
    assert float(np.median(df)) < 10
    assert float(np.mean(z / np.sqrt(arms) > z_99)) > 0.012
    assert float(np.mean(z / np.sqrt(widened) > z_99)) <= 0.01
    few = regression_design_effect(k[:2, None, :30], n[:2, None, :30], cand[:30], alpha=0.01)
    assert bool(np.all(few.d == NO_EVIDENCE))  # 15 users an arm


def test_the_regression_design_effect_is_about_1_with_independent_requests() -> None:
    """Every user one request, or no user named at all (20,000 requests erring at 1 %):
    the units' and the requests' degrees of freedom are the same, so the regression side is
    not widened (a widening on them alone would be (t_df / z)^2 on about 200 errors)."""
    rng = np.random.default_rng(3)
    users = 20_000
    cand = np.arange(users) % 2 == 1
    k = (rng.random((50, 1, users)) < 0.01).astype(float)
    one_each = regression_design_effect(k, np.ones((50, 1, users)), cand, alpha=0.01).d
    np.testing.assert_allclose(one_each, design_effect(k, np.ones((1, users)), cand, centre="arms"))
    assert float(np.max(one_each)) < 1.01
    rest_k = rng.binomial(10_000, 0.01, (50, 2, 1)).astype(float)
    rest_n = np.full((50, 2, 1), 10_000.0)
    none = np.zeros((50, 1, 1))
    unnamed = regression_design_effect(none, none, np.zeros(1, bool), rest_k, rest_n, alpha=0.01)
    assert float(np.max(unnamed.d)) < 1.01
    df = effective_clusters(none, none, np.zeros(1, bool), rest_k=rest_k, rest_n=rest_n)
    np.testing.assert_allclose(df, rest_k.sum((1, 2)), rtol=0.05)  # about the errors


def test_requests_without_a_user_are_units_of_the_effective_clusters() -> None:
    """20 users a side with all their requests, and 5,000 requests a side not broken down:
    the rest adds its requests as units, so the degrees of freedom are not the users' few."""
    rng = np.random.default_rng(4)
    cand = np.arange(40) % 2 == 1
    n = np.full((1, 40), 50.0)
    k = rng.binomial(50, 0.01 * rng.gamma(1.0, 1.0, (1, 40))).astype(float)
    alone = float(effective_clusters(k, n, cand))
    rest_k, rest_n = np.array([[50.0], [50.0]]), np.array([[5000.0], [5000.0]])
    with_rest = float(effective_clusters(k, n, cand, rest_k=rest_k, rest_n=rest_n))
    assert alone < 40 < with_rest
    squares = k * 2.0
    mean = effective_clusters(k, n, cand, squares=squares, rest_k=rest_k, rest_n=rest_n)
    assert bool(np.isnan(mean))  # a mean's rest has no fourth moments kept
