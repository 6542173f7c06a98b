"""Canary analysis: per-arm counters in, per-metric verdicts and a stage decision out.

Plain data only: the controller folds its per-minute rollups into :class:`ArmStats` (one
per arm, or one per arm per window when the traffic share changed between windows) and
calls :func:`analyze`, then :func:`trimtab.canary.decision.decide` (or
:func:`trimtab.canary.decision.evaluate` for both). Everything is a sufficient statistic
that adds up, so it can be fed after every request or every minute. The counters are in
:mod:`trimtab.canary.arm_stats`, the metrics and their defaults in
:mod:`trimtab.canary.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from trimtab.canary.arm_stats import ArmStats, UnitCounts
from trimtab.canary.clustering import Clustered, unit_dispersion
from trimtab.canary.metrics import DEFAULT_METRICS, Metric, MetricSpec, latency_thresholds
from trimtab.stats.clustered import MIN_UNITS, NO_EVIDENCE
from trimtab.stats.intervals import FloatArray, mixture_rho
from trimtab.stats.means import compare_means, difference_evidence, mean_evidence
from trimtab.stats.rates import compare_rates, rate_evidence, rate_mixtures
from trimtab.stats.sequential import Interval, MetricResult, Tolerance, Verdict

__all__ = [
    "ArmArrays",
    "analyze",
    "arm_arrays",
    "evidence",
    "pooled_quantile",
    "quality_note",
    "still_needed",
    "verdicts",
    "with_history",
]


def _windows(arm: ArmStats | Sequence[ArmStats]) -> tuple[ArmStats, ...]:
    if isinstance(arm, ArmStats):
        return (arm,)
    return tuple(arm)


# --- the evidence: one vectorised function per metric, for the controller and the simulation


@dataclass(frozen=True, slots=True)
class ArmArrays:
    """One arm's additive counters as arrays of shape ``(..., windows)``: what the tests
    read. ``latency_n`` counts the requests with a latency; ``quality_*`` are the scored
    answers and the sums of their scores (``quality_score``); ``tails`` maps a latency spec's
    name to the arm's requests above that spec's threshold (stable's reference for stable,
    the stretched one for the candidate).

    The controller builds one from its :class:`ArmStats` windows (:func:`arm_arrays`); the
    simulation builds them for many rollouts at once; both call :func:`evidence`.
    """

    n: FloatArray
    errors: FloatArray
    refusals: FloatArray
    feedback_n: FloatArray
    negative_feedback: FloatArray
    cost_sum: FloatArray
    cost_sq_sum: FloatArray
    guardrail_fired: FloatArray
    quality_n: FloatArray
    quality_sum: FloatArray
    quality_sq_sum: FloatArray
    latency_n: FloatArray
    tails: Mapping[str, FloatArray] = field(default_factory=dict)

    def scaled(self, factor: FloatArray) -> ArmArrays:
        """Every counter times ``factor`` (shape ``(F,)``): shape ``(F, ..., windows)``. The
        same estimates with more requests: what the data would be if the current rates
        held (for the canary requests a metric still needs)."""
        f = np.asarray(factor, dtype=np.float64).reshape((-1,) + (1,) * self.n.ndim)
        values = {name: f * getattr(self, name) for name in _COUNTERS}
        return ArmArrays(**values, tails={k: f * v for k, v in self.tails.items()})


_COUNTERS = (
    "n", "errors", "refusals", "feedback_n", "negative_feedback", "cost_sum", "cost_sq_sum",
    "guardrail_fired", "quality_n", "quality_sum", "quality_sq_sum", "latency_n",
)  # fmt: skip


def arm_arrays(windows: Sequence[ArmStats], tails: Mapping[str, FloatArray]) -> ArmArrays:
    """The counters of a sequence of windows, shape ``(windows,)``."""
    values = {name: np.array([float(getattr(w, name)) for w in windows]) for name in _COUNTERS[:-1]}
    return ArmArrays(**values, latency_n=_latency_counts(windows), tails=tails)


def _rate_pair(
    spec: MetricSpec, tol: Tolerance, kc: Any, nc: Any, ks: Any, ns: Any, d: Any = 1.0
) -> tuple[FloatArray, FloatArray]:
    """Both log e-values of a rate test at ``tol``: split of events (relative) or the
    difference of rates (absolute)."""
    if tol.absolute == 0.0:
        lp0, reg_mix, ok_mix = rate_mixtures(
            spec.direction, tol, design_ratio=spec.design_ratio, pass_ratio=spec.pass_ratio
        )
        return rate_evidence(
            kc, nc, ks, ns, log_psi0=lp0, regression_mixture=reg_mix, pass_mixture=ok_mix,
            dispersion=d,
        )  # fmt: skip
    return difference_evidence(
        kc, nc, ks, ns, sign=spec.direction.sign, coef=tol.coef(spec.direction),
        offset=tol.absolute, rho_regression=mixture_rho(spec.design_n, spec.alpha),
        rho_pass=mixture_rho(spec.pass_design_n, spec.alpha_pass),
        min_samples=spec.min_samples, dispersion=d,
    )  # fmt: skip


def _mean_pair(
    spec: MetricSpec, tol: Tolerance, arms: tuple[FloatArray, ...], d: Any = 1.0
) -> tuple[FloatArray, FloatArray]:
    """Both log e-values of a mean's normal-mixture test at ``tol``; ``arms`` is the
    candidate's then stable's ``(n, sum, sum of squares)``, ``d`` the design effect."""
    return mean_evidence(
        *arms, sign=spec.direction.sign, coef=tol.coef(spec.direction), offset=tol.absolute,
        rho_regression=mixture_rho(spec.design_n, spec.alpha),
        rho_pass=mixture_rho(spec.pass_design_n, spec.alpha_pass),
        min_samples=spec.min_samples, dispersion=d,
    )  # fmt: skip


def _means(spec: MetricSpec, s: ArmArrays, c: ArmArrays) -> tuple[FloatArray, ...]:
    """A mean metric's sufficient statistics, the candidate's then stable's."""
    if spec.metric is Metric.COST:
        return (c.n, c.cost_sum, c.cost_sq_sum, s.n, s.cost_sum, s.cost_sq_sum)
    return (
        c.quality_n, c.quality_sum, c.quality_sq_sum, s.quality_n, s.quality_sum, s.quality_sq_sum
    )  # fmt: skip


MEANS = (Metric.COST, Metric.QUALITY_SCORE)


def evidence(
    spec: MetricSpec,
    stable: ArmArrays,
    candidate: ArmArrays,
    dispersion: Mapping[str, FloatArray] | None = None,
    regression: Mapping[str, FloatArray] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """``(log_e_regression, log_e_pass)`` of one metric, shape ``(...)``.

    ``dispersion`` maps a metric's name to its design effect (``D >= 1``, shape
    ``(...)``, :func:`trimtab.stats.clustered.design_effect`): requests clustered by the
    sticky user weigh ``1 / D`` of independent ones (rates, latency's tail counts, means).
    ``regression`` maps a metric's name to the design effect its regression test takes
    instead (a rate's, :func:`trimtab.stats.clustered.regression_design_effect`).

    The regression test is run at ``spec.tolerance`` and the pass (non-inferiority) test at
    ``spec.pass_margin``; :func:`analyze` reads its verdicts from here, and so does the
    simulation (``bench/canary_sim.py``), for thousands of rollouts at once.
    """
    s, c = stable, candidate
    d = 1.0 if dispersion is None else dispersion.get(spec.name, 1.0)
    d_reg = None if regression is None else regression.get(spec.name)
    if spec.metric is Metric.LATENCY:
        k = (c.tails[spec.name], c.latency_n, s.tails[spec.name], s.latency_n)
        reg, ok = _rate_pair(spec, Tolerance(), *k, d)
        if d_reg is not None:
            reg, _ = _rate_pair(spec, Tolerance(), *k, d_reg)
        return reg, ok
    if spec.metric in MEANS:
        arms = _means(spec, s, c)
        reg, ok = _mean_pair(spec, spec.tolerance, arms, d)
        if d_reg is not None:
            reg, _ = _mean_pair(spec, spec.tolerance, arms, d_reg)
        if spec.pass_margin != spec.tolerance:
            _, ok = _mean_pair(spec, spec.pass_margin, arms, d)
        return reg, ok
    if spec.metric is Metric.NEGATIVE_FEEDBACK_RATE:
        k = (c.negative_feedback, c.feedback_n, s.negative_feedback, s.feedback_n)
    elif spec.metric is Metric.ERROR_RATE:
        k = (c.errors, c.n, s.errors, s.n)
    elif spec.metric is Metric.GUARDRAIL_RATE:
        k = (c.guardrail_fired, c.n, s.guardrail_fired, s.n)
    else:
        k = (c.refusals, c.n, s.refusals, s.n)
    reg, ok = _rate_pair(spec, spec.tolerance, *k, d)
    if d_reg is not None:
        reg, _ = _rate_pair(spec, spec.tolerance, *k, d_reg)
    if spec.pass_margin != spec.tolerance:
        _, ok = _rate_pair(spec, spec.pass_margin, *k, d)
    return reg, ok


def verdicts(
    spec: MetricSpec, log_e_regression: FloatArray, log_e_pass: FloatArray
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """``(regressed, passed)`` from :func:`evidence`; a regression outranks a pass."""
    regressed = np.asarray(log_e_regression >= math.log(1.0 / spec.alpha))
    passed = np.asarray(log_e_pass >= math.log(1.0 / spec.alpha_pass)) & ~regressed
    return regressed, passed


_GROWTH = np.geomspace(1.0, 1000.0, 241)[1:]  # 1.03x steps up to 1000x the data so far


def still_needed(
    spec: MetricSpec,
    stable: ArmArrays,
    candidate: ArmArrays,
    dispersion: Mapping[str, FloatArray] | None = None,
    canary_requests: float | None = None,
) -> float | None:
    """Canary requests the pass test still needs if the current estimates held (both arms
    growing in the proportions so far); None when even 1000 times the data would not pass
    (the estimate sits at or beyond the margin). A projection, not a promise.
    ``canary_requests`` is the candidate's requests so far when ``candidate.n`` holds
    exposures (:class:`Clustered`)."""
    n_c = float(np.sum(candidate.n)) if canary_requests is None else canary_requests
    if n_c <= 0:
        return None
    _, ok = evidence(spec, stable.scaled(_GROWTH), candidate.scaled(_GROWTH), dispersion)
    hit = np.nonzero(np.asarray(ok) >= math.log(1.0 / spec.alpha_pass))[0]
    if hit.size == 0:
        return None
    return math.ceil(n_c * (float(_GROWTH[hit[0]]) - 1.0))


def pooled_quantile(
    count_above: Callable[[FloatArray], FloatArray],
    total: FloatArray,
    q: float,
    lo: FloatArray,
    hi: FloatArray,
) -> FloatArray:
    """The ``q`` quantile of the windows pooled, by bisection on the tail counts:
    ``count_above(t)`` (``t`` of shape ``(...)``) is the requests above ``t`` over all
    windows, ``total`` all of them, ``[lo, hi]`` brackets the answer. Vectorised, for the
    controller (one rollout) and the simulation (many)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        heavy = count_above(mid) > (1.0 - q) * total
        lo = np.where(heavy, mid, lo)
        hi = np.where(heavy, hi, mid)
    return hi


def _pooled_quantile(windows: Sequence[ArmStats], q: float) -> float | None:
    dists = [w.latency for w in windows if w.latency is not None and w.latency.count > 0]
    if not dists:
        return None
    if len(dists) == 1:
        return dists[0].quantile(q)
    total = np.asarray(sum(d.count for d in dists))
    values = [v for d in dists if (v := d.quantile(q)) is not None]

    def above(t: FloatArray) -> FloatArray:
        return np.asarray(sum(d.count_above(float(t)) for d in dists), dtype=np.float64)

    return float(pooled_quantile(above, total, q, np.asarray(min(values)), np.asarray(max(values))))


def _latency_reference(
    spec: MetricSpec, s_w: Sequence[ArmStats], references: Mapping[float, float] | None
) -> tuple[float, str]:
    reference = None if references is None else references.get(spec.quantile)
    if reference is not None:
        return reference, "reference fixed in advance"
    pooled = _pooled_quantile(s_w, spec.quantile)
    if pooled is not None:
        return pooled, "reference is stable's own quantile over the same windows"
    return math.inf, "no stable latencies yet"


def _tails(windows: Sequence[ArmStats], threshold: float) -> FloatArray:
    return np.array(
        [
            w.latency.count_above(threshold)
            if w.latency is not None and math.isfinite(threshold)
            else 0.0
            for w in windows
        ]
    )


def _latency_counts(windows: Sequence[ArmStats]) -> FloatArray:
    return np.array([0.0 if w.latency is None else w.latency.count for w in windows])


def analyze(
    stable: ArmStats | Sequence[ArmStats],
    candidate: ArmStats | Sequence[ArmStats],
    specs: Sequence[MetricSpec] = DEFAULT_METRICS,
    *,
    latency_reference_ms: Mapping[float, float] | None = None,
    before: UnitCounts | None = None,
) -> tuple[MetricResult, ...]:
    """Judge every metric in ``specs``; one :class:`MetricResult` each, in order.

    ``stable`` and ``candidate`` are one :class:`ArmStats` each (cumulative since the start
    of the analysis) or equally long sequences of per-window stats (windows whose traffic
    shares differ, e.g. one per stage, when evidence is carried across stages).

    ``latency_reference_ms`` maps a latency quantile to the reference value of stable's
    quantile, fixed before the analysis starts (e.g. stable's p95 over the hour before the
    rollout). Without one, stable's own quantile over the analysed windows is used, which is
    the same test asymptotically but no longer exact.

    ``before`` is the route's requests per unit of assignment before the rollout: with
    per-user counts in every window, the error, refusal and guardrail tests then adjust
    for each user's own rate before the rollout, and the cost and latency tests for its
    own mean cost and log latency (:func:`unit_dispersion`, :func:`with_history`).

    Verdicts come from :func:`evidence`. Each result's estimate, interval and margin are
    those of the non-inferiority (pass) test; where the regression test runs at another
    tolerance or design effect, ``rollback`` has its own. ``needed`` is what a required
    metric that has not passed still needs (:func:`still_needed`).
    """
    s_w, c_w = _windows(stable), _windows(candidate)
    if len(s_w) != len(c_w) or not s_w:
        raise ValueError("stable and candidate need the same, nonzero number of windows")
    refs: dict[str, tuple[float, str]] = {}
    s_tails: dict[str, FloatArray] = {}
    c_tails: dict[str, FloatArray] = {}
    for spec in specs:
        if spec.metric is Metric.LATENCY:
            ref, note = _latency_reference(spec, s_w, latency_reference_ms)
            t_s, t_c = latency_thresholds(ref, spec.tolerance)
            refs[spec.name] = (ref, note)
            s_tails[spec.name], c_tails[spec.name] = _tails(s_w, t_s), _tails(c_w, t_c)
    s_arr, c_arr = arm_arrays(s_w, s_tails), arm_arrays(c_w, c_tails)
    stable_thresholds = {
        spec.name: latency_thresholds(refs[spec.name][0], spec.tolerance)[0]
        for spec in specs
        if spec.name in refs
    }
    by_unit = unit_dispersion(s_w, c_w, specs, before, stable_thresholds)
    dispersion = {name: c.d for name, c in by_unit.items()}
    regression = {n: c.d_regression for n, c in by_unit.items() if c.d_regression is not None}
    out: list[MetricResult] = []
    for spec in specs:
        d = float(dispersion.get(spec.name, 1.0))
        d_reg = float(regression.get(spec.name, d))
        unit = by_unit.get(spec.name)
        s_m, c_m = s_arr, c_arr
        if unit is not None:
            s_m, c_m = with_history(spec, unit, s_arr, c_arr)
        le_reg, le_ok = evidence(spec, s_m, c_m, dispersion, regression)
        reg, ok = (float(x) for x in (le_reg, le_ok))
        result = _interval(spec, spec.pass_margin, s_m, c_m, d)
        clustered = ""
        if unit is not None:
            clustered = (
                f"sticky users: fewer than {MIN_UNITS} per arm, no evidence yet"
                if d >= NO_EVIDENCE
                else f"sticky users: design effect {d:.3g}"
            )
            if unit.d_regression is not None and d < NO_EVIDENCE:
                clustered += (
                    f" (the regression test's {d_reg:.3g}: against each arm, t on"
                    f" {unit.regression_units:.0f} effective units)"
                )
            if unit.history:
                clustered += (
                    f"; adjusted for {unit.adjusted} users' {unit.covariate} before the"
                    f" rollout ({unit.method})"
                )
            if unit.n is not None:
                # the requests, not their exposures, are what the arms served
                s_n, c_n = (
                    (s_arr.latency_n, c_arr.latency_n)
                    if spec.metric is Metric.LATENCY
                    else (s_arr.n, c_arr.n)
                )
                result = replace(result, n_stable=float(s_n.sum()), n_candidate=float(c_n.sum()))
        rollback = None
        if spec.pass_margin != spec.tolerance or d_reg != d:
            r = _interval(spec, spec.tolerance, s_m, c_m, d_reg)
            rollback = Interval(r.method, r.estimate_kind, r.estimate, r.lower, r.upper, r.margin)
        if spec.metric is Metric.QUALITY_SCORE:
            result = replace(result, note=quality_note(spec, result))
        if spec.metric is Metric.LATENCY:
            ref, note = refs[spec.name]
            t_s, t_c = latency_thresholds(ref, spec.tolerance)
            result = replace(
                result,
                method="split-of-events mixture on tail counts (quantile)",
                stable_value=_pooled_quantile(s_w, spec.quantile),
                candidate_value=_pooled_quantile(c_w, spec.quantile),
                note=f"{note}; thresholds stable {t_s:.6g} ms, candidate {t_c:.6g} ms",
            )
        if clustered and not str(result.note).startswith(TOO_LITTLE):
            result = replace(
                result, note=f"{result.note}; {clustered}" if result.note else clustered
            )
        regressed, passed = verdicts(spec, le_reg, le_ok)
        verdict = (
            Verdict.REGRESSION if regressed else Verdict.PASS if passed else Verdict.INCONCLUSIVE
        )
        needed = None
        if spec.required and verdict is Verdict.INCONCLUSIVE:
            needed = still_needed(spec, s_m, c_m, dispersion, float(np.sum(c_arr.n)))
        out.append(
            replace(
                result,
                verdict=verdict,
                log_e_regression=reg,
                log_e_pass=ok,
                threshold_regression=math.log(1.0 / spec.alpha),
                threshold_pass=math.log(1.0 / spec.alpha_pass),
                required=spec.required,
                needed=needed,
                rollback=rollback,
            )
        )
    return tuple(out)


def with_history(
    spec: MetricSpec, unit: Clustered, s: ArmArrays, c: ArmArrays
) -> tuple[ArmArrays, ArmArrays]:
    """The arms' counters a test takes when its units' history adjusts it: the error,
    refusal and guardrail tests their requests as exposures; a latency test its requests
    with latencies weighted by their units' tail offsets (each arm's exposures scaled to
    its requests with a latency, which the read bounds); the cost test its CUPED-adjusted
    sums. Unchanged without a history."""
    if unit.total is not None and unit.squares is not None and spec.metric is Metric.COST:
        return (
            replace(s, cost_sum=unit.total[0], cost_sq_sum=unit.squares[0]),
            replace(c, cost_sum=unit.total[1], cost_sq_sum=unit.squares[1]),
        )
    if unit.n is None:
        return s, c
    if spec.metric is Metric.LATENCY:
        scaled = []
        for i, arm in enumerate((s, c)):
            share = np.where(arm.n > 0, arm.latency_n / np.where(arm.n > 0, arm.n, 1.0), 0.0)
            scaled.append(replace(arm, latency_n=unit.n[i] * share))
        return scaled[0], scaled[1]
    return replace(s, n=unit.n[0]), replace(c, n=unit.n[1])


TOO_LITTLE = "too little data"


def quality_note(spec: MetricSpec, result: MetricResult) -> str:
    """What ``quality_score`` was judged on, or that it has too little data to be judged."""
    n_c, n_s = result.n_candidate, result.n_stable
    if n_c == 0 and n_s == 0:
        return f"{TOO_LITTLE}: no scored answers (online scoring scores them, docs/evals.md)"
    counts = f"{n_c:.0f} candidate and {n_s:.0f} stable answers scored online"
    if min(n_c, n_s) < spec.min_samples:
        return f"{TOO_LITTLE}: {counts}, {spec.min_samples} per arm needed"
    return counts


def _interval(
    spec: MetricSpec, tol: Tolerance, s: ArmArrays, c: ArmArrays, d: float = 1.0
) -> MetricResult:
    """The comparison at ``tol`` with its confidence sequence (reporting; the verdict is
    :func:`evidence`'s)."""

    def rates(kc: Any, nc: Any, ks: Any, ns: Any, t: Tolerance) -> MetricResult:
        return compare_rates(
            spec.name, kc, nc, ks, ns, direction=spec.direction, tolerance=t,
            alpha=spec.alpha, alpha_pass=spec.alpha_pass, design_ratio=spec.design_ratio,
            pass_ratio=spec.pass_ratio, design_n=spec.design_n,
            pass_design_n=spec.pass_design_n, min_samples=spec.min_samples, dispersion=d,
        )  # fmt: skip

    if spec.metric in MEANS:
        return compare_means(
            spec.name, *_means(spec, s, c),
            direction=spec.direction, tolerance=tol, alpha=spec.alpha,
            alpha_pass=spec.alpha_pass, design_n=spec.design_n,
            pass_design_n=spec.pass_design_n, min_samples=spec.min_samples, dispersion=d,
        )  # fmt: skip
    if spec.metric is Metric.LATENCY:
        return rates(c.tails[spec.name], c.latency_n, s.tails[spec.name], s.latency_n, Tolerance())
    if spec.metric is Metric.NEGATIVE_FEEDBACK_RATE:
        return rates(c.negative_feedback, c.feedback_n, s.negative_feedback, s.feedback_n, tol)
    if spec.metric is Metric.ERROR_RATE:
        return rates(c.errors, c.n, s.errors, s.n, tol)
    if spec.metric is Metric.GUARDRAIL_RATE:
        return rates(c.guardrail_fired, c.n, s.guardrail_fired, s.n, tol)
    return rates(c.refusals, c.n, s.refusals, s.n, tol)
