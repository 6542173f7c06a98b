"""Promotion needs every guarded metric shown not worse beyond its margin (issue 12, item 1):
errors and refusals with absolute margins, a projection of the canary requests still needed,
and the error rate of the non-inferiority test at its margin, by simulation."""

from __future__ import annotations

import math

import numpy as np

from trimtab.canary.analysis import analyze
from trimtab.canary.arm_stats import ArmStats
from trimtab.canary.decision import Action, StageGate, decide
from trimtab.canary.metrics import DEFAULT_METRICS, ERROR_MARGIN, Metric, MetricSpec
from trimtab.stats.intervals import mixture_rho
from trimtab.stats.means import difference_evidence
from trimtab.stats.sequential import Tolerance, Verdict

ERRORS = next(s for s in DEFAULT_METRICS if s.metric is Metric.ERROR_RATE)
REFUSALS = next(s for s in DEFAULT_METRICS if s.metric is Metric.REFUSAL_RATE)


def _by_name(stable: ArmStats, cand: ArmStats, specs: list[MetricSpec]) -> dict[str, object]:
    return {r.metric: r for r in analyze(stable, cand, specs)}


def test_more_errors_that_are_not_yet_a_regression_hold_promotion() -> None:
    """1 % -> 1.5 % on 4,000 canary requests: too little to roll back, and no longer
    enough to promote (before, 'no regression yet' was); the hold says why."""
    stable, cand = ArmStats(n=36_000, errors=360), ArmStats(n=4_000, errors=60)
    results = analyze(stable, cand, [ERRORS])
    (err,) = results
    assert err.verdict is Verdict.INCONCLUSIVE and err.required
    assert err.estimate_kind == "difference" and err.margin == ERROR_MARGIN
    assert err.estimate is not None and abs(err.estimate - 0.005) < 1e-9
    assert err.lower < err.estimate < err.upper
    assert err.upper > ERROR_MARGIN  # the interval is not inside the margin
    # the regression test's own view: the rate ratio against 1
    assert err.rollback is not None and err.rollback.estimate_kind == "ratio"
    assert err.rollback.margin == 1.0 and err.rollback.lower < 1.5 < err.rollback.upper
    d = decide(results, StageGate(), elapsed_s=600, canary_requests=4_000)
    assert d.action is Action.HOLD
    assert "error_rate has not passed yet" in d.reasons[0]
    assert "cannot pass at its current estimate" in d.reasons[0]


def test_a_healthy_error_rate_says_what_it_still_needs_and_then_passes() -> None:
    stable, cand = ArmStats(n=9_000, errors=90), ArmStats(n=1_000, errors=10)
    (err,) = analyze(stable, cand, [ERRORS])
    assert err.verdict is Verdict.INCONCLUSIVE and err.needed is not None
    d = decide([err], elapsed_s=600, canary_requests=1_000, canary_per_s=1.0)
    assert f"needs ~{err.needed:,.0f} more canary requests" in d.reasons[0]
    assert "min at the current traffic" in d.reasons[0]
    # the same rates on that much more data pass; a tenth less does not
    f = 1 + err.needed / 1_000
    (more,) = analyze(
        ArmStats(n=round(9_000 * f), errors=round(90 * f)),
        ArmStats(n=round(1_000 * f), errors=round(10 * f)),
        [ERRORS],
    )
    assert more.verdict is Verdict.PASS and more.needed is None
    g = 1 + 0.9 * err.needed / 1_000
    (less,) = analyze(
        ArmStats(n=round(9_000 * g), errors=round(90 * g)),
        ArmStats(n=round(1_000 * g), errors=round(10 * g)),
        [ERRORS],
    )
    assert less.verdict is Verdict.INCONCLUSIVE
    assert decide([more], elapsed_s=600, canary_requests=1).action is Action.ADVANCE


def test_a_model_that_never_refuses_passes_only_on_enough_requests() -> None:
    """No refusals in either arm is not proof after 50 requests (a zero variance would make
    it one); after a few thousand it is, the rule of three's way."""
    early = _by_name(ArmStats(n=450), ArmStats(n=50), [REFUSALS])["refusal_rate"]
    assert early.verdict is Verdict.INCONCLUSIVE  # type: ignore[attr-defined]
    late = _by_name(ArmStats(n=27_000), ArmStats(n=3_000), [REFUSALS])["refusal_rate"]
    assert late.verdict is Verdict.PASS  # type: ignore[attr-defined]
    assert late.upper < REFUSALS.pass_margin.absolute  # type: ignore[attr-defined]


def test_the_decision_lists_every_guarded_metric() -> None:
    results = analyze(ArmStats(n=900, errors=9), ArmStats(n=100, errors=1))
    d = decide(results, elapsed_s=0, canary_requests=100)
    waiting = " ".join(d.reasons)
    for name in ("error_rate", "latency_p95", "refusal_rate"):
        assert f"{name} has not passed yet" in waiting
    # costs all 0 in both arms are within any margin (docs/canary.md); guarded-only metrics
    # are not waited for
    assert "cost" not in waiting and "latency_p50" not in waiting
    assert "latency_p95 has not passed yet" in waiting and "too little data" in waiting


def _at_margin(p_s: float, delta: float, rollouts: int, looks: int, seed: int) -> np.ndarray:
    """Whether the pass test ever fired, checking every ~50 canary requests at 1:9, for a
    candidate exactly ``delta`` worse than stable."""
    rng = np.random.default_rng(seed)
    kc, nc, ks, ns = (np.zeros((rollouts, 1)) for _ in range(4))
    passed = np.zeros(rollouts, bool)
    rho_reg = mixture_rho(ERRORS.design_n, ERRORS.alpha)
    rho_ok = mixture_rho(ERRORS.pass_design_n, ERRORS.alpha_pass)
    for _ in range(looks):
        bc = rng.binomial(500, 0.1, (rollouts, 1))
        nc += bc
        ns += 500 - bc
        kc += rng.binomial(bc, p_s + delta)
        ks += rng.binomial(500 - bc, p_s)
        _, ok = difference_evidence(
            kc, nc, ks, ns, sign=1.0, coef=1.0, offset=delta,
            rho_regression=rho_reg, rho_pass=rho_ok,
        )  # fmt: skip
        passed |= ok >= math.log(1 / ERRORS.alpha_pass)
    return passed


def test_the_non_inferiority_test_at_its_margin_passes_at_most_alpha_pass() -> None:
    """The hardest case for the pass test: the candidate exactly on the margin, looked at
    200 times. 400 rollouts at 5 %: the binomial 99.9 % upper bound is 9.3 %."""
    for p_s, delta, seed in ((0.01, ERROR_MARGIN, 1), (0.001, 0.002, 2)):
        passed = _at_margin(p_s, delta, rollouts=400, looks=200, seed=seed)
        assert passed.mean() <= 0.093, (p_s, delta, passed.mean())


def test_an_absolute_margin_spec_and_a_relative_one_are_both_non_inferiority() -> None:
    rel = MetricSpec(Metric.ERROR_RATE, tolerance=Tolerance(relative=0.5), required=True)
    assert rel.pass_margin == Tolerance(relative=0.5)
    (r,) = analyze(ArmStats(n=90_000, errors=900), ArmStats(n=10_000, errors=100), [rel])
    assert r.verdict is Verdict.PASS and r.estimate_kind == "ratio" and r.upper < 1.5
