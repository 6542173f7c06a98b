"""Plain-data analysis of both arms, latency sources, and the stage decision."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trimtab.canary.analysis import analyze, arm_arrays, evidence
from trimtab.canary.arm_stats import (
    ArmStats,
    LatencySamples,
    SketchLatency,
    UnitCounts,
    UnitSums,
)
from trimtab.canary.clustering import unit_dispersion
from trimtab.canary.decision import Action, StageGate, decide, evaluate
from trimtab.canary.metrics import DEFAULT_METRICS, Metric, MetricSpec, latency_thresholds
from trimtab.canary.plans import Stage
from trimtab.stats.clustered import (
    adjusted_proneness,
    design_effect,
    effective_clusters,
    history_coefficient,
    majority_arm,
    proneness,
    regression_design_effect,
)
from trimtab.stats.intervals import mixture_rho
from trimtab.stats.means import difference_evidence, mean_evidence
from trimtab.stats.rates import rate_evidence, rate_mixtures
from trimtab.stats.sequential import Direction, Tolerance, Verdict
from trimtab.stats.student import t_widening
from trimtab.telemetry.sketch import new_sketch


def _arm(
    rng: np.random.Generator,
    n: int,
    *,
    err: float = 0.01,
    lat: float = 1.0,
    cost: float = 1.0,
    neg: float = 0.1,
) -> ArmStats:
    c = np.exp(rng.normal(math.log(0.002), 0.8, n)) * cost
    fb = int(rng.binomial(n, 0.2))
    return ArmStats(
        n=n,
        errors=int(rng.binomial(n, err)),
        feedback_n=fb,
        negative_feedback=int(rng.binomial(fb, neg)),
        cost_sum=float(c.sum()),
        cost_sq_sum=float((c * c).sum()),
        latency=LatencySamples.of(np.exp(rng.normal(7.0, 0.5, n)) * lat),
    )


def test_arm_stats_validate_counts() -> None:
    with pytest.raises(ValueError):
        ArmStats(n=5, errors=6)
    with pytest.raises(ValueError):
        ArmStats(n=5, feedback_n=2, negative_feedback=3)
    with pytest.raises(ValueError):
        ArmStats(n=-1)
    with pytest.raises(ValueError):
        ArmStats(n=5, guardrail_fired=6)
    with pytest.raises(ValueError):
        ArmStats(n=5, guardrail_fired=-1)


def test_spec_names_and_latency_rules() -> None:
    assert [s.name for s in DEFAULT_METRICS] == [
        "error_rate",
        "latency_p95",
        "latency_p50",
        "cost",
        "negative_feedback_rate",
        "refusal_rate",
        "guardrail_rate",
        "quality_score",
    ]
    assert MetricSpec(Metric.LATENCY, quantile=0.5).name == "latency_p50"
    with pytest.raises(ValueError):
        MetricSpec(Metric.LATENCY, direction=Direction.LOWER_IS_WORSE)
    with pytest.raises(ValueError):
        MetricSpec(Metric.LATENCY, tolerance=Tolerance(absolute=5.0))
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 0.5\), not 0.5"):
        MetricSpec(Metric.ERROR_RATE, alpha=0.5)
    with pytest.raises(ValueError, match="alpha_pass must be"):
        MetricSpec(Metric.ERROR_RATE, alpha_pass=0.0)


def test_latency_thresholds_stretch_the_candidates() -> None:
    stable, candidate = latency_thresholds(1000.0, Tolerance(relative=0.1))
    assert stable == 1000.0 and candidate == pytest.approx(1100.0)


def test_healthy_candidate_holds_then_advances() -> None:
    rng = np.random.default_rng(1)
    stable, cand = _arm(rng, 90_000), _arm(rng, 10_000)
    results = analyze(stable, cand, latency_reference_ms={0.95: math.exp(7.0 + 1.645 * 0.5)})
    by = {r.metric: r for r in results}
    assert by["latency_p95"].verdict is Verdict.PASS
    assert by["cost"].verdict is Verdict.PASS
    assert all(r.verdict is not Verdict.REGRESSION for r in results)
    early = decide(results, StageGate(min_duration_s=600), elapsed_s=60, canary_requests=10_000)
    assert early.action is Action.HOLD and "60 s of 600 s" in early.reasons[0]
    done = decide(results, StageGate(600, 1000), elapsed_s=600, canary_requests=10_000)
    assert done.action is Action.ADVANCE


def test_regressions_roll_back_at_once_with_reasons() -> None:
    rng = np.random.default_rng(2)
    stable, cand = _arm(rng, 18_000), _arm(rng, 2_000, err=0.05, lat=1.5)
    d = evaluate(stable, cand, gate=StageGate(3600, 10**6), elapsed_s=1)
    assert d.action is Action.ROLLBACK
    assert any(r.startswith("error_rate regressed") for r in d.reasons)
    assert any(r.startswith("latency_p95 regressed") for r in d.reasons)


def test_hold_names_what_is_missing_and_a_plan_stage_is_a_gate() -> None:
    rng = np.random.default_rng(3)
    stable, cand = _arm(rng, 900), _arm(rng, 100)
    results = analyze(stable, cand)
    stage = Stage(percent=10, min_duration_s=300, min_canary_requests=500)
    d = decide(results, stage, elapsed_s=10, canary_requests=100)
    assert d.action is Action.HOLD
    text = " ".join(d.reasons)
    assert "100 of 500 canary requests" in text
    assert "latency_p95 has not passed yet" in text


def test_a_stage_that_does_not_promote_waits_only_for_its_minimums() -> None:
    rng = np.random.default_rng(3)
    results = analyze(_arm(rng, 900), _arm(rng, 100))
    stage = Stage(percent=10, min_duration_s=300, min_canary_requests=100)
    assert decide(results, stage, elapsed_s=300, canary_requests=100).action is Action.HOLD
    d = decide(results, stage, elapsed_s=300, canary_requests=100, final=False)
    assert d.action is Action.ADVANCE and "promotion waits" in d.reasons[0]
    early = decide(results, stage, elapsed_s=299, canary_requests=100, final=False)
    assert early.action is Action.HOLD
    # a regression rolls back whatever the stage
    bad = analyze(ArmStats(n=900, errors=9), ArmStats(n=400, errors=40))
    assert decide(bad, stage, elapsed_s=0, canary_requests=0, final=False).action is (
        Action.ROLLBACK
    )


def test_no_required_metrics_advances_on_the_gate_alone() -> None:
    specs = [MetricSpec(Metric.ERROR_RATE)]
    results = analyze(ArmStats(n=900, errors=9), ArmStats(n=100, errors=1), specs)
    d = decide(results, StageGate(60, 100), elapsed_s=60, canary_requests=100)
    assert d.action is Action.ADVANCE


def test_empty_arms_are_inconclusive_not_errors() -> None:
    results = analyze(ArmStats(), ArmStats())
    assert all(r.verdict is Verdict.INCONCLUSIVE for r in results)
    assert decide(results, elapsed_s=0, canary_requests=0).action is Action.HOLD


def test_windows_must_line_up() -> None:
    with pytest.raises(ValueError):
        analyze([ArmStats(n=1)], [ArmStats(n=1), ArmStats(n=1)])
    with pytest.raises(ValueError):
        analyze([], [])


def test_windows_with_different_shares_are_judged_per_window() -> None:
    # Same error rate in both arms, but the share changes between windows (1 % then 50 %);
    # pooled counts would make the candidate look worse; per-window evidence does not.
    stable = [ArmStats(n=99_000, errors=990), ArmStats(n=5_000, errors=500)]
    cand = [ArmStats(n=1_000, errors=10), ArmStats(n=5_000, errors=500)]
    spec = [MetricSpec(Metric.ERROR_RATE)]
    per_window = analyze(stable, cand, spec)[0]
    pooled = analyze(ArmStats(n=104_000, errors=1490), ArmStats(n=6_000, errors=510), spec)[0]
    assert per_window.verdict is Verdict.INCONCLUSIVE
    assert pooled.verdict is Verdict.REGRESSION  # Simpson's paradox, avoided above


def test_sketch_and_samples_count_the_same_tail() -> None:
    rng = np.random.default_rng(4)
    values = np.exp(rng.normal(7.0, 0.5, 5000))
    sketch = new_sketch()
    for v in values:
        sketch.add(float(v))
    samples = LatencySamples.of(values)
    sk = SketchLatency(sketch)
    assert sk.count == samples.count == 5000
    for t in (500.0, 1000.0, 2500.0, 5000.0):
        exact = samples.count_above(t)
        # buckets are 1 % wide: the sketch may differ only by values within 1 % of t
        near = samples.count_above(t * 0.98) - samples.count_above(t * 1.02)
        assert abs(sk.count_above(t) - exact) <= near
    assert sk.count_above(0.0) == 5000
    q = sk.quantile(0.95)
    assert q is not None and q == pytest.approx(samples.quantile(0.95), rel=0.02)
    assert SketchLatency(new_sketch()).count_above(10.0) == 0.0


def test_latency_analysis_from_sketches_matches_samples() -> None:
    rng = np.random.default_rng(6)
    s_vals = np.exp(rng.normal(7.0, 0.5, 9000))
    c_vals = np.exp(rng.normal(7.0, 0.5, 1000)) * 1.4
    sk_s, sk_c = new_sketch(), new_sketch()
    for v in s_vals:
        sk_s.add(float(v))
    for v in c_vals:
        sk_c.add(float(v))
    spec = [MetricSpec(Metric.LATENCY, tolerance=Tolerance(0.1), pass_ratio=0.65)]
    ref = {0.95: 2500.0}
    a = analyze(
        ArmStats(n=9000, latency=SketchLatency(sk_s)),
        ArmStats(n=1000, latency=SketchLatency(sk_c)),
        spec,
        latency_reference_ms=ref,
    )[0]
    b = analyze(
        ArmStats(n=9000, latency=LatencySamples.of(s_vals)),
        ArmStats(n=1000, latency=LatencySamples.of(c_vals)),
        spec,
        latency_reference_ms=ref,
    )[0]
    assert a.verdict is b.verdict is Verdict.REGRESSION
    assert a.log_e_regression == pytest.approx(b.log_e_regression, rel=0.2)
    assert "reference fixed in advance" in a.note
    assert a.stable_value == pytest.approx(np.quantile(s_vals, 0.95), rel=0.02)


def test_the_vectorised_path_used_by_the_benchmark_matches_analyze() -> None:
    rng = np.random.default_rng(8)
    err, _, _, cost, *_ = DEFAULT_METRICS
    for _ in range(10):
        stable = _arm(rng, int(rng.integers(100, 5000)))
        cand = _arm(rng, int(rng.integers(10, 500)), err=0.02, cost=1.1)
        res = {r.metric: r for r in analyze(stable, cand)}
        lp0, rm, om = rate_mixtures(
            err.direction, err.tolerance, design_ratio=err.design_ratio, pass_ratio=None
        )
        reg, ok = rate_evidence(
            [[cand.errors]],
            [[cand.n]],
            [[stable.errors]],
            [[stable.n]],
            log_psi0=lp0,
            regression_mixture=rm,
            pass_mixture=om,
        )
        assert float(reg[0]) == pytest.approx(res["error_rate"].log_e_regression)
        # the pass side is the non-inferiority test at the absolute margin
        margin = err.pass_margin
        _, ok = difference_evidence(
            [[cand.errors]],
            [[cand.n]],
            [[stable.errors]],
            [[stable.n]],
            sign=1.0,
            coef=1.0,
            offset=margin.absolute,
            rho_regression=mixture_rho(err.design_n, err.alpha),
            rho_pass=mixture_rho(err.pass_design_n, err.alpha_pass),
        )
        assert float(ok[0]) == pytest.approx(res["error_rate"].log_e_pass)
        reg, ok = mean_evidence(
            [[cand.n]],
            [[cand.cost_sum]],
            [[cand.cost_sq_sum]],
            [[stable.n]],
            [[stable.cost_sum]],
            [[stable.cost_sq_sum]],
            sign=1.0,
            coef=cost.tolerance.coef(cost.direction),
            offset=0.0,
            rho_regression=mixture_rho(cost.design_n, cost.alpha),
            rho_pass=mixture_rho(cost.pass_design_n, cost.alpha_pass),
        )
        assert float(reg[0]) == pytest.approx(res["cost"].log_e_regression)
        assert float(ok[0]) == pytest.approx(res["cost"].log_e_pass)


def test_the_guardrail_rate_is_judged_like_the_refusal_rate() -> None:
    """`guardrail_fired` is a rate over all requests, relative tolerance 10 %, guarded."""
    spec = next(s for s in DEFAULT_METRICS if s.metric is Metric.GUARDRAIL_RATE)
    assert (spec.tolerance, spec.required, spec.design_ratio) == (
        Tolerance(relative=0.10), False, 2.0,
    )  # fmt: skip
    stable = ArmStats(n=5000, guardrail_fired=250)  # 5 %
    worse = analyze(stable, ArmStats(n=500, guardrail_fired=75), [spec])[0]  # 15 %
    assert worse.verdict is Verdict.REGRESSION
    assert (worse.stable_value, worse.candidate_value) == (0.05, 0.15)
    same = analyze(stable, ArmStats(n=500, guardrail_fired=25), [spec])[0]
    assert same.verdict is not Verdict.REGRESSION
    # the same counts as refusals give the same evidence
    as_refusals = MetricSpec(Metric.REFUSAL_RATE, tolerance=spec.tolerance)
    refused = analyze(ArmStats(n=5000, refusals=250), ArmStats(n=500, refusals=75), [as_refusals])
    assert refused[0].log_e_regression == worse.log_e_regression


def _by_unit(units: dict[str, tuple[int, int]]) -> ArmStats:
    keys = tuple(units)
    n = np.array([units[k][0] for k in keys], dtype=float)
    errors = np.array([units[k][1] for k in keys], dtype=float)
    zeros = np.zeros(len(keys))
    counts = UnitCounts(keys, n, errors, zeros, zeros)
    return ArmStats(n=int(n.sum()), errors=int(errors.sum()), units=counts)


def test_a_user_who_moved_arms_between_stages_is_one_unit_of_the_design_effect() -> None:
    """Window 0 (10 %): user:a on stable. Window 1 (50 %, by bucket): user:a on the
    candidate. One cluster across both arms, as stats.clustered takes per-window arms."""
    rng = np.random.default_rng(7)
    base = {f"user:{i}": (int(rng.integers(1, 20)), 0) for i in range(60)}
    with_errors = {k: (n, int(rng.binomial(n, 0.05))) for k, (n, _) in base.items()}
    keys = list(with_errors)
    s0 = {k: with_errors[k] for k in keys[:54]}
    c0 = {k: with_errors[k] for k in keys[54:]}
    s1 = {k: with_errors[k] for k in keys[:30]}
    c1 = {k: with_errors[k] for k in keys[30:]}  # users 30..53 moved to the candidate
    (spec,) = [m for m in DEFAULT_METRICS if m.metric is Metric.ERROR_RATE]
    stable, candidate = [_by_unit(s0), _by_unit(s1)], [_by_unit(c0), _by_unit(c1)]
    got = unit_dispersion(stable, candidate, [spec])[spec.name].d
    n = np.array([[with_errors[k][0] for k in keys]] * 2, dtype=float)
    k = np.array([[with_errors[key][1] for key in keys]] * 2, dtype=float)
    arm = np.array([[i >= 54 for i in range(60)], [i >= 30 for i in range(60)]])
    assert float(got) == pytest.approx(float(design_effect(k, n, arm)), rel=1e-12)


def test_the_error_tests_regression_side_is_widened_for_a_few_heavy_users() -> None:
    """Zipf activity, users erring at their own rates: the regression test takes the design
    effect against each arm widened for the few effective users
    (stats.clustered.regression_design_effect), the pass test the pooled one, and the
    note says both, with the t's whole degrees of freedom."""
    rng = np.random.default_rng(21)
    n = np.maximum((3000.0 / np.arange(1, 81)).astype(int), 1)
    errors = rng.binomial(n, np.minimum(0.02 * rng.gamma(0.5, 2.0, n.size), 1.0))
    users = {f"user:{i}": (int(n[i]), int(errors[i])) for i in range(n.size)}
    keys = list(users)
    stable = _by_unit({k: users[k] for i, k in enumerate(keys) if i % 2 == 0})
    candidate = _by_unit({k: users[k] for i, k in enumerate(keys) if i % 2 == 1})
    (spec,) = [m for m in DEFAULT_METRICS if m.metric is Metric.ERROR_RATE]
    unit = unit_dispersion([stable], [candidate], [spec])[spec.name]
    k = np.array([[users[key][1] for key in keys]], dtype=float)
    n_u = np.array([[users[key][0] for key in keys]], dtype=float)
    arm = np.arange(n.size) % 2 == 1
    df = float(effective_clusters(k, n_u, arm, centre="arms"))
    want = float(regression_design_effect(k, n_u, arm, alpha=spec.alpha).d)
    assert unit.d_regression is not None and float(unit.d_regression) == pytest.approx(want)
    arms = float(design_effect(k, n_u, arm, centre="arms"))
    assert want > 0.9 * arms * float(t_widening(df, spec.alpha))  # the requests' t is ~z
    assert unit.regression_units == math.floor(df) and df < 10  # a few heavy users
    assert float(unit.d) == pytest.approx(float(design_effect(k, n_u, arm)))
    assert float(unit.d_regression) > 2 * float(unit.d)
    (result,) = analyze([stable], [candidate], [spec])
    assert (
        f"sticky users: design effect {float(unit.d):.3g} (the regression test's "
        f"{float(unit.d_regression):.3g}: against each arm, t on {math.floor(df)} effective"
        " units)"
    ) in result.note
    # the verdict's log e-value is the widened one's
    s_a, c_a = arm_arrays([stable], {}), arm_arrays([candidate], {})
    reg, _ = evidence(spec, s_a, c_a, {spec.name: unit.d}, {spec.name: unit.d_regression})
    assert result.log_e_regression == pytest.approx(float(reg))
    narrow, _ = evidence(spec, s_a, c_a, {spec.name: unit.d})
    assert float(narrow) != pytest.approx(float(reg))


def test_requests_without_a_user_do_not_widen_the_regression_test() -> None:
    """Every request of both arms without a user (5,000 a side) and errors 1 % -> 2 %: each
    request is a unit of its own, so the regression test is the per-request one (D about
    1, not the widening of an arm with no users) and rolls the candidate back."""
    rng = np.random.default_rng(8)
    none = np.zeros(0)

    def arm(errors: int) -> ArmStats:
        units = UnitCounts((), none, none, none, none, rest_n=5000.0, rest_errors=errors)
        return ArmStats(n=5000, errors=errors, units=units)

    s_e, c_e = int(rng.binomial(5000, 0.01)), int(rng.binomial(5000, 0.02))
    (spec,) = [m for m in DEFAULT_METRICS if m.metric is Metric.ERROR_RATE]
    unit = unit_dispersion([arm(s_e)], [arm(c_e)], [spec])[spec.name]
    assert unit.d_regression is not None and float(unit.d_regression) < 1.01
    assert unit.regression_units > 100  # about the errors
    (clustered,) = analyze([arm(s_e)], [arm(c_e)], [spec])
    (plain,) = analyze([ArmStats(n=5000, errors=s_e)], [ArmStats(n=5000, errors=c_e)], [spec])
    assert clustered.verdict is Verdict.REGRESSION
    assert clustered.log_e_regression == pytest.approx(plain.log_e_regression, rel=0.02)


def test_the_regression_side_takes_the_users_history_too() -> None:
    """120 users seen the day before with a persistent proneness: the regression side's
    design effect takes the same adjusted proneness as the pass side's (CUPED)."""
    rng = np.random.default_rng(14)
    users = 120
    x_true = rng.gamma(1.0, 1.0, users)
    n = rng.integers(50, 400, users).astype(float)
    k = rng.binomial(n.astype(np.int64), np.minimum(0.02 * x_true, 1.0)).astype(float)
    n_before = np.full(users, 300.0)
    k_before = rng.binomial(300, np.minimum(0.02 * x_true, 1.0)).astype(float)
    keys = [f"user:{i}" for i in range(users)]
    arm = np.arange(users) % 2 == 1
    zeros = np.zeros(users // 2)

    def side(mask: np.ndarray) -> ArmStats:
        units = UnitCounts(tuple(np.array(keys)[mask]), n[mask], k[mask], zeros, zeros)
        return ArmStats(n=int(n[mask].sum()), errors=int(k[mask].sum()), units=units)

    order = np.concatenate([np.flatnonzero(~arm), np.flatnonzero(arm)])  # stable's first
    zeros_all = np.zeros(users)
    before = UnitCounts(tuple(keys), n_before, k_before, zeros_all, zeros_all)
    (spec,) = [m for m in DEFAULT_METRICS if m.metric is Metric.ERROR_RATE]
    unit = unit_dispersion([side(~arm)], [side(arm)], [spec], before)[spec.name]
    assert unit.history and unit.theta > 0.0
    k_o, n_o, arm_o = k[order][None, :], n[order][None, :], arm[order]
    x = proneness(k_before, n_before)[order]
    theta, _ = history_coefficient(k_o.sum(0), n_o.sum(0), x, np.ones(users, bool),
                                   majority_arm(n_o, arm_o))  # fmt: skip
    assert unit.theta == pytest.approx(float(theta))
    x_adj = adjusted_proneness(x, theta)
    want = regression_design_effect(k_o, n_o, arm_o, None, None, x_adj, alpha=spec.alpha).d
    assert unit.d_regression is not None
    assert float(unit.d_regression) == pytest.approx(float(want))
    without = regression_design_effect(k_o, n_o, arm_o, alpha=spec.alpha).d
    assert float(unit.d_regression) < float(without)  # the history explains spread


def test_a_history_of_too_few_users_is_ignored_and_the_note_says_so() -> None:
    """CUPED's coefficient needs 50 users seen before and during the rollout: with 40, theta
    is 0, the exposures are the requests, and the note names the method and why."""
    rng = np.random.default_rng(12)
    users = {f"user:{i}": (int(rng.integers(20, 60)), 0) for i in range(80)}
    with_errors = {k: (n, int(rng.binomial(n, 0.05))) for k, (n, _) in users.items()}
    keys = list(with_errors)
    stable = _by_unit({k: with_errors[k] for k in keys[:50]})
    candidate = _by_unit({k: with_errors[k] for k in keys[50:]})
    known = keys[:40]
    n = np.array([100.0] * len(known))
    before = UnitCounts(
        tuple(known), n, rng.binomial(100, 0.05, len(known)).astype(float),
        np.zeros(len(known)), np.zeros(len(known)),
    )  # fmt: skip
    (spec,) = [m for m in DEFAULT_METRICS if m.metric is Metric.ERROR_RATE]
    got = unit_dispersion([stable], [candidate], [spec], before)[spec.name]
    assert got.theta == 0.0 and got.theta_units == 40 and got.n is not None
    assert got.n[:, 0].tolist() == [stable.n, candidate.n]  # exposures = requests
    (result,) = analyze([stable], [candidate], [spec], before=before)
    assert (
        "(CUPED, theta 0 (history ignored: 40 users seen before and during the rollout, 50 needed))"
        in result.note
    )


def test_a_shifted_candidates_latency_is_not_read_as_spread_among_its_users() -> None:
    """Users with their own latency level, the candidate's every request 25 % slower: the
    latency tests' design effect (the log latency's, each user against the rest of its arm)
    is the same shifted or not, so a larger regression does not buy itself a larger ``D``;
    against the pooled mean it would grow with the shift."""
    rng = np.random.default_rng(25)
    users, m = 400, 200
    level = 0.25 * rng.standard_normal(users)
    noise = 0.6 * rng.standard_normal((users, m))
    on_c = np.arange(users) % 2 == 1
    (spec,) = [s for s in DEFAULT_METRICS if s.metric is Metric.LATENCY and s.quantile == 0.95]

    def arm(log_ms: np.ndarray, mask: np.ndarray) -> ArmStats:
        rows = log_ms[mask]
        n = np.full(rows.shape[0], float(m))
        zeros = np.zeros(rows.shape[0])
        sums = UnitSums(n, rows.sum(1), (rows * rows).sum(1))
        keys = tuple(f"user:{i}" for i in np.flatnonzero(mask))
        units = UnitCounts(keys, n, zeros, zeros, zeros, log_latency=sums)
        return ArmStats(n=int(n.sum()), units=units)

    got = {}
    for shift in (0.0, math.log(1.25)):
        log_ms = math.log(800) + level[:, None] + noise + np.where(on_c, shift, 0.0)[:, None]
        d = unit_dispersion([arm(log_ms, ~on_c)], [arm(log_ms, on_c)], [spec])[spec.name].d
        got[shift] = float(d)
        pooled = design_effect(log_ms.sum(1)[None, :], np.full((1, users), float(m)), on_c,
                               squares=(log_ms**2).sum(1)[None, :])  # fmt: skip
        if shift:
            assert float(pooled) > 1.1 * got[0.0]
    assert got[0.0] > 10.0  # the users' levels matter here
    assert got[math.log(1.25)] == pytest.approx(got[0.0], rel=0.02)
