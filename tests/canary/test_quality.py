"""The canary metric quality_score: the mean online score per arm, judged by the normal
mixture on the difference of means; the statistic against scipy (Welch's t, the mixture's
integral, the fixed-sample interval), the minimum sample, a plan requiring it, and its error
rates over many rollouts looked at often."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import integrate
from scipy import stats as sps

from trimtab.canary.analysis import ArmArrays, analyze, evidence, verdicts
from trimtab.canary.arm_stats import ArmStats, LatencySamples
from trimtab.canary.decision import Action, decide
from trimtab.canary.forecast import forecast
from trimtab.canary.metrics import DEFAULT_METRICS, QUALITY_MARGIN, Metric, MetricSpec
from trimtab.canary.plans import DEFAULT_PLAN, MetricRule, Plan
from trimtab.stats.intervals import mixture_rho
from trimtab.stats.sequential import Direction, MetricResult, Verdict

QUALITY = next(s for s in DEFAULT_METRICS if s.metric is Metric.QUALITY_SCORE)
Scores = npt.NDArray[np.float64]


def arm(scores: Scores, n: int = 0) -> ArmStats:
    """An arm whose scored answers scored ``scores`` (and ``n`` requests in all)."""
    return ArmStats(
        n=max(n, scores.size),
        quality_n=scores.size,
        quality_sum=float(scores.sum()),
        quality_sq_sum=float((scores * scores).sum()),
    )


def judged(stable: Scores, candidate: Scores, spec: MetricSpec = QUALITY) -> MetricResult:
    (result,) = analyze(arm(stable), arm(candidate), [spec])
    return result


def log_mixture(s: float, v: float, rho: float) -> float:
    """log of the one-sided normal mixture, by scipy's quadrature (Howard et al. 2021)."""

    def integrand(lam: float) -> float:
        return math.exp(lam * s - lam * lam * v / 2) * 2 * float(sps.norm.pdf(lam, scale=rho**-0.5))

    value, _ = integrate.quad(integrand, 0, math.inf, limit=200)
    return math.log(value)


def test_the_defaults_guard_quality_and_roll_back_on_any_credible_drop() -> None:
    assert QUALITY.name == "quality_score"
    assert QUALITY.direction is Direction.LOWER_IS_WORSE
    assert not QUALITY.required
    assert (QUALITY.tolerance.relative, QUALITY.tolerance.absolute) == (0.0, 0.0)
    assert QUALITY.pass_margin.absolute == QUALITY_MARGIN


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_evidence_is_welchs_t_in_the_normal_mixture_by_scipy(seed: int) -> None:
    """Both log e-values are the mixture, integrated by scipy, at S = sqrt(n_c) t with t
    scipy's Welch statistic: at 0 for the regression test, and with the candidate shifted by
    the margin for the pass test. (The candidate's scores spread more than stable's here:
    with less spread its variance is taken as stable's, a conservative choice.)"""
    rng = np.random.default_rng(seed)
    stable = rng.beta(4.0, 1.0, 900)
    candidate = rng.beta(1.4, 0.45, 120)  # mean ~0.76, wider
    assert candidate.var() > stable.var()
    r = judged(stable, candidate)
    n_c = candidate.size
    t_drop = sps.ttest_ind(candidate, stable, equal_var=False).statistic
    t_within = sps.ttest_ind(candidate + QUALITY_MARGIN, stable, equal_var=False).statistic
    rho_reg = mixture_rho(QUALITY.design_n, QUALITY.alpha)
    rho_ok = mixture_rho(QUALITY.pass_design_n, QUALITY.alpha_pass)
    assert r.log_e_regression == pytest.approx(log_mixture(-math.sqrt(n_c) * t_drop, n_c, rho_reg))
    assert r.log_e_pass == pytest.approx(log_mixture(math.sqrt(n_c) * t_within, n_c, rho_ok))
    assert r.estimate == pytest.approx(candidate.mean() - stable.mean())
    assert (r.estimate_kind, r.margin) == ("difference", -QUALITY_MARGIN)
    assert (r.stable_value, r.candidate_value) == pytest.approx((stable.mean(), candidate.mean()))


def test_the_interval_holds_scipys_fixed_sample_interval() -> None:
    """The confidence sequence is wider than Welch's one-sided intervals at the same levels
    (it holds at every look; they, at one)."""
    rng = np.random.default_rng(4)
    stable, candidate = rng.beta(4.0, 1.0, 2000), rng.beta(3.0, 1.0, 400)
    r = judged(stable, candidate)
    up = sps.ttest_ind(candidate, stable, equal_var=False, alternative="greater")
    down = sps.ttest_ind(candidate, stable, equal_var=False, alternative="less")
    welch_lower = up.confidence_interval(1 - QUALITY.alpha_pass).low
    welch_upper = down.confidence_interval(1 - QUALITY.alpha).high
    assert r.lower < welch_lower < r.estimate < welch_upper < r.upper  # type: ignore[operator]


def test_a_candidate_shown_worse_is_rolled_back() -> None:
    rng = np.random.default_rng(5)
    r = judged(rng.beta(4.0, 1.0, 2000), rng.beta(2.8, 1.2, 300))  # 0.8 -> 0.7
    assert r.verdict is Verdict.REGRESSION
    assert r.rollback is not None and r.rollback.upper < 1.0  # the ratio of means, below 1
    decision = decide([r], elapsed_s=600, canary_requests=300)
    assert decision.action is Action.ROLLBACK
    assert decision.reasons[0].startswith("quality_score regressed")


def test_a_candidate_as_good_passes_and_one_at_the_margin_does_not() -> None:
    rng = np.random.default_rng(6)
    same = judged(rng.beta(4.0, 1.0, 6000), rng.beta(4.0, 1.0, 3000))
    assert same.verdict is Verdict.PASS
    at_margin = rng.beta(4.0, 1.0, 3000) - QUALITY_MARGIN
    assert judged(rng.beta(4.0, 1.0, 6000), at_margin).verdict is not Verdict.PASS


def test_under_the_minimum_sample_it_says_too_little_data() -> None:
    worst = np.zeros(QUALITY.min_samples - 1)  # every answer scored 0: still too few
    r = judged(np.ones(500), worst)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert (r.log_e_regression, r.log_e_pass) == (0.0, 0.0)
    assert r.note == (
        "too little data: 29 candidate and 500 stable answers scored online, 30 per arm needed"
    )
    none = judged(np.zeros(0), np.zeros(0))
    assert none.note.startswith("too little data: no scored answers")
    required = dataclasses.replace(QUALITY, required=True)
    (r,) = analyze(arm(np.ones(500)), arm(worst), [required])
    held = decide([r], elapsed_s=600, canary_requests=1000)
    assert held.action is Action.HOLD
    assert held.reasons[0].endswith("30 per arm needed")
    # at 30 the test runs: 30 zeros against 500 ones is a regression
    assert judged(np.ones(500), np.zeros(30)).verdict is Verdict.REGRESSION


def test_a_plan_can_require_it_with_its_own_margin() -> None:
    plan = Plan.model_validate(
        {
            "stages": [{"percent": 50}, {"percent": 100}],
            "metrics": {"quality_score": {"required": True, "margin": 0.02}},
        }
    )
    spec = next(s for s in plan.specs() if s.name == "quality_score")
    assert spec.required and spec.pass_margin.absolute == 0.02
    assert spec.tolerance.relative == 0.0  # still rolled back on any credible drop
    # the route's risk tier scales the default margin as it does errors' and refusals'
    tier0 = next(s for s in DEFAULT_PLAN.for_tier(0).specs() if s.name == "quality_score")
    assert tier0.pass_margin.absolute == pytest.approx(2 * QUALITY_MARGIN)
    # a relative tolerance works on the ratio of means: at least 90 % of stable's
    rel = Plan.model_validate(
        {"stages": [{"percent": 100}], "metrics": {"quality_score": {"tolerance": 0.1}}}
    )
    spec = next(s for s in rel.specs() if s.name == "quality_score")
    assert spec.tolerance.coef(spec.direction) == pytest.approx(0.9)


def _rollouts(
    rng: np.random.Generator,
    *,
    mean_c: float,
    rollouts: int,
    looks: int,
    per_look: int,
    share: float,
    pass_fail: bool,
) -> tuple[float, float]:
    """Shares of ``rollouts`` that ever regressed and ever passed, the quality test judged
    after every ``per_look`` scored answers (stable's mean 0.8); the regression test keeps
    running after a pass, as in the controller until promotion."""
    sums = {a: np.zeros((3, rollouts, 1)) for a in "sc"}
    regressed = np.zeros(rollouts, dtype=bool)
    passed = np.zeros(rollouts, dtype=bool)
    zero = np.zeros((rollouts, 1))
    for _ in range(looks):
        for a, frac, mean in (("c", share, mean_c), ("s", 1 - share, 0.8)):
            k = rng.binomial(per_look, frac, rollouts)
            width = max(int(k.max()), 1)
            if pass_fail:
                v = (rng.random((rollouts, width)) < mean).astype(np.float64)
            else:
                v = rng.beta(4 * mean, 4 * (1 - mean), (rollouts, width))
            v = np.where(np.arange(width) < k[:, None], v, 0.0)
            sums[a][:, :, 0] += (k, v.sum(1), (v * v).sum(1))

        def arrays(a: str) -> ArmArrays:
            n, total, sq = sums[a]
            return ArmArrays(
                n=n, errors=zero, refusals=zero, feedback_n=zero, negative_feedback=zero,
                cost_sum=zero, cost_sq_sum=zero, guardrail_fired=zero, quality_n=n,
                quality_sum=total, quality_sq_sum=sq, latency_n=zero,
            )  # fmt: skip

        bad, good = verdicts(QUALITY, *evidence(QUALITY, arrays("s"), arrays("c")))
        regressed |= bad
        passed |= good
    return float(regressed.mean()), float(passed.mean())


def _bound(rate: float, n: int) -> float:
    """The share of ``n`` rollouts a true ``rate`` exceeds only 0.1 % of the time."""
    return float(sps.binom.ppf(0.999, n, rate)) / n


@pytest.mark.parametrize(("share", "pass_fail"), [(0.5, False), (0.1, True), (0.05, True)], ids=str)
def test_healthy_candidates_are_rolled_back_at_most_alpha_however_often_looked_at(
    share: float, pass_fail: bool
) -> None:
    """1,000 rollouts, 200 looks each (one every 20 scored answers); the candidate scores
    as stable does. Skewed pass/fail scores on a small canary share are where a plug-in
    variance is least safe."""
    rng = np.random.default_rng(round(share * 100) + pass_fail)
    regressed, _ = _rollouts(
        rng, mean_c=0.8, rollouts=1000, looks=200, per_look=20, share=share, pass_fail=pass_fail
    )
    assert regressed <= _bound(QUALITY.alpha, 1000), regressed


def test_candidates_at_the_margin_pass_at_most_alpha_pass() -> None:
    rng = np.random.default_rng(9)
    _, passed = _rollouts(
        rng, mean_c=0.8 - QUALITY_MARGIN, rollouts=1000, looks=200, per_look=20, share=0.5,
        pass_fail=False,
    )  # fmt: skip
    assert passed <= _bound(QUALITY.alpha_pass, 1000), passed


def test_the_forecast_of_a_plan_requiring_quality_counts_the_scored_share() -> None:
    """At 20 requests/s with a fifth of them scored (sd 0.18) the default plan requiring
    quality still promotes; with no answers scored it waits on quality_score and says so."""
    rng = np.random.default_rng(10)
    required = DEFAULT_PLAN.model_copy(
        update={"metrics": {"quality_score": MetricRule(required=True)}}
    )
    hour = 3600.0
    n = 72_000
    cost = rng.lognormal(np.log(0.002), 0.8, n)
    base = dataclasses.replace(
        arm(rng.beta(3.2, 0.8, n // 5), n),
        cost_sum=float(cost.sum()),
        cost_sq_sum=float((cost * cost).sum()),
        latency=LatencySamples.of(rng.lognormal(np.log(800.0), 0.6, n)),
        errors=n // 100,
    )
    scored = forecast(required, base, hour)
    assert scored.promote_after_s is not None and scored.waiting_on == ()
    unscored = forecast(required, dataclasses.replace(base, quality_n=0), hour)
    assert unscored.promote_after_s is None
    assert unscored.waiting_on == ("quality_score (cannot pass at stable's own rates)",)
