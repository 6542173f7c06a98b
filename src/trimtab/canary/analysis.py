"""Canary analysis: per-arm counters in, per-metric verdicts and a stage decision out.

Plain data only: the controller folds its per-minute rollups into :class:`ArmStats` (one
per arm, or one per arm per window when the traffic share changed between windows) and
calls :func:`analyze` then :func:`decide` (or :func:`evaluate` for both). Everything is a
sufficient statistic that adds up, so it can be fed after every request or every minute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from trimtab.stats.sequential import (
    Direction,
    MetricResult,
    Tolerance,
    Verdict,
    compare_means,
    compare_rates,
)

__all__ = [
    "DEFAULT_METRICS",
    "Action",
    "ArmStats",
    "Decision",
    "GateLike",
    "LatencyDistribution",
    "LatencySamples",
    "Metric",
    "MetricSpec",
    "SketchLatency",
    "StageGate",
    "analyze",
    "decide",
    "evaluate",
    "latency_thresholds",
]


@runtime_checkable
class LatencyDistribution(Protocol):
    """What the latency test needs from an arm's latencies: a count and tail counts."""

    @property
    def count(self) -> float: ...

    def count_above(self, threshold: float) -> float: ...

    def quantile(self, q: float) -> float | None: ...


@dataclass(frozen=True, slots=True)
class LatencySamples:
    """Raw latencies (ms), sorted once."""

    values: npt.NDArray[np.float64]

    @classmethod
    def of(cls, values: Sequence[float] | npt.ArrayLike) -> LatencySamples:
        return cls(np.sort(np.asarray(values, dtype=np.float64).ravel()))

    @property
    def count(self) -> float:
        return float(self.values.size)

    def count_above(self, threshold: float) -> float:
        return float(self.values.size - np.searchsorted(self.values, threshold, side="right"))

    def quantile(self, q: float) -> float | None:
        if self.values.size == 0:
            return None
        return float(np.quantile(self.values, q))


class SketchLatency:
    """A DDSketch (as kept by the telemetry rollups) seen as a :class:`LatencyDistribution`.

    ``count_above`` counts the buckets wholly above the threshold's bucket, so values within
    the sketch's relative accuracy (1 %) of the threshold count as not above; both arms are
    counted the same way.
    """

    __slots__ = ("sketch",)

    def __init__(self, sketch: Any) -> None:
        self.sketch = sketch

    @property
    def count(self) -> float:
        return float(self.sketch.count)

    def count_above(self, threshold: float) -> float:
        s = self.sketch
        if s.count == 0:
            return 0.0
        if threshold <= 0.0:
            return float(s.count) - float(s._zero_count) - float(s._negative_store.count)
        key = int(s._mapping.key(threshold))
        store = s._store
        total = 0.0
        for i, c in enumerate(store.bins):
            if c and i + store.offset > key:
                total += float(c)
        return total

    def quantile(self, q: float) -> float | None:
        if self.sketch.count == 0:
            return None
        v = self.sketch.get_quantile_value(q)
        return None if v is None else float(v)


@dataclass(frozen=True, slots=True)
class ArmStats:
    """One arm's counters over one window (all additive).

    ``n`` requests, of which ``errors`` failed and ``refusals`` were refused by the model;
    ``feedback_n`` got feedback, ``negative_feedback`` of it negative; ``cost_sum`` and
    ``cost_sq_sum`` are the sum and the sum of squares of per-request cost; ``latency`` is
    the arm's latency distribution (samples or a sketch), if latency is analysed.
    """

    n: int = 0
    errors: int = 0
    refusals: int = 0
    feedback_n: int = 0
    negative_feedback: int = 0
    cost_sum: float = 0.0
    cost_sq_sum: float = 0.0
    latency: LatencyDistribution | None = None

    def __post_init__(self) -> None:
        if min(self.n, self.errors, self.refusals, self.feedback_n, self.negative_feedback) < 0:
            raise ValueError("counts must be >= 0")
        if self.errors > self.n or self.refusals > self.n or self.feedback_n > self.n:
            raise ValueError("errors, refusals and feedback_n must be <= n")
        if self.negative_feedback > self.feedback_n:
            raise ValueError("negative_feedback must be <= feedback_n")


class Metric(StrEnum):
    ERROR_RATE = "error_rate"
    REFUSAL_RATE = "refusal_rate"
    NEGATIVE_FEEDBACK_RATE = "negative_feedback_rate"
    LATENCY = "latency"
    COST = "cost"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """How one metric is judged.

    ``alpha`` bounds the chance of ever calling a regression when the candidate is within
    the tolerance; ``alpha_pass`` the chance of ever calling a pass when it is not.
    ``design_ratio`` (rates, latency) is the rate ratio beyond the margin that the
    regression test detects fastest, and ``pass_ratio`` the same for the pass test (None:
    automatic); ``design_n`` / ``pass_design_n`` (cost) are the canary sample sizes at which
    the normal-mixture tests are tightest. ``quantile`` is the latency quantile compared.
    ``required`` metrics must pass before a stage may advance; the others only need not to
    regress.
    """

    metric: Metric
    direction: Direction = Direction.HIGHER_IS_WORSE
    tolerance: Tolerance = field(default_factory=Tolerance)
    required: bool = False
    alpha: float = 0.01
    alpha_pass: float = 0.05
    design_ratio: float = 2.0
    pass_ratio: float | None = None
    design_n: float = 1000.0
    pass_design_n: float = 2000.0
    quantile: float = 0.95
    min_samples: int = 10

    def __post_init__(self) -> None:
        if self.metric is Metric.LATENCY:
            if self.direction is not Direction.HIGHER_IS_WORSE:
                raise ValueError("latency is higher-is-worse")
            if self.tolerance.absolute != 0.0:
                raise ValueError("latency takes a relative tolerance (on the quantile)")
            if not 0.0 < self.quantile < 1.0:
                raise ValueError("quantile must be in (0, 1)")

    @property
    def name(self) -> str:
        if self.metric is Metric.LATENCY:
            return f"latency_p{round(self.quantile * 100, 3):g}"
        return str(self.metric)


DEFAULT_METRICS: tuple[MetricSpec, ...] = (
    # Any credible rise in errors is a regression; a 2x rise is what the test is tuned for.
    MetricSpec(Metric.ERROR_RATE, tolerance=Tolerance(relative=0.0), design_ratio=2.0),
    # p95 may grow by 10 %; required to pass (the candidate must show it is not slower).
    MetricSpec(
        Metric.LATENCY,
        tolerance=Tolerance(relative=0.10),
        required=True,
        quantile=0.95,
        design_ratio=2.0,
        pass_ratio=0.65,
    ),
    # The median may grow by 10 %: the body of the distribution, not only its tail. Guarded
    # only (proving it within 10 % is no quicker than for p95, and p95 is required already).
    MetricSpec(
        Metric.LATENCY,
        tolerance=Tolerance(relative=0.10),
        quantile=0.5,
        design_ratio=1.5,
    ),
    # Mean cost per request may grow by 5 %; required to pass.
    MetricSpec(Metric.COST, tolerance=Tolerance(relative=0.05), required=True),
    # Negative feedback may grow by 10 % (relative); sparse, so only guarded.
    MetricSpec(Metric.NEGATIVE_FEEDBACK_RATE, tolerance=Tolerance(relative=0.10), design_ratio=1.5),
    # Refusals (finish reason content_filter, or Anthropic's refusal) may grow by 10 %; a
    # guardrail signal, so only guarded. Inconclusive, harmlessly, where the model never refuses.
    MetricSpec(Metric.REFUSAL_RATE, tolerance=Tolerance(relative=0.10), design_ratio=2.0),
)


def latency_thresholds(reference_ms: float, tolerance: Tolerance) -> tuple[float, float]:
    """``(stable threshold, candidate threshold)`` for the latency tail test.

    Stable's requests are counted above the reference quantile ``q_ref`` and the
    candidate's above ``(1 + relative) q_ref``. If the candidate's latencies are no worse
    than stable's stretched by ``1 + relative`` (stochastically), its rate above the second
    threshold is at most stable's above the first; so the split-of-events test of
    ``H0: rate ratio <= 1`` on these counts tests "the candidate's quantile is within the
    tolerance", and it stays valid whatever ``q_ref`` is. With ``q_ref`` stable's own p95
    the ratio is about the candidate's tail mass beyond 1.1 x p95 over 5 %.
    """
    return reference_ms, reference_ms * (1.0 + tolerance.relative)


def _windows(arm: ArmStats | Sequence[ArmStats]) -> tuple[ArmStats, ...]:
    if isinstance(arm, ArmStats):
        return (arm,)
    return tuple(arm)


def _spec_kwargs(spec: MetricSpec) -> dict[str, Any]:
    return {
        "direction": spec.direction,
        "tolerance": spec.tolerance,
        "alpha": spec.alpha,
        "alpha_pass": spec.alpha_pass,
        "design_n": spec.design_n,
        "pass_design_n": spec.pass_design_n,
        "min_samples": spec.min_samples,
        "required": spec.required,
    }


def analyze(
    stable: ArmStats | Sequence[ArmStats],
    candidate: ArmStats | Sequence[ArmStats],
    specs: Sequence[MetricSpec] = DEFAULT_METRICS,
    *,
    latency_reference_ms: Mapping[float, float] | None = None,
) -> tuple[MetricResult, ...]:
    """Judge every metric in ``specs``; one :class:`MetricResult` each, in order.

    ``stable`` and ``candidate`` are one :class:`ArmStats` each (cumulative since the start
    of the analysis) or equally long sequences of per-window stats (windows whose traffic
    shares differ, e.g. one per stage, when evidence is carried across stages).

    ``latency_reference_ms`` maps a latency quantile to the reference value of stable's
    quantile, fixed before the analysis starts (e.g. stable's p95 over the hour before the
    rollout). Without one, stable's own quantile over the analysed windows is used, which is
    the same test asymptotically but no longer exact.
    """
    s_w, c_w = _windows(stable), _windows(candidate)
    if len(s_w) != len(c_w) or not s_w:
        raise ValueError("stable and candidate need the same, nonzero number of windows")
    out: list[MetricResult] = []
    for spec in specs:
        kw = _spec_kwargs(spec)
        if spec.metric in (Metric.ERROR_RATE, Metric.REFUSAL_RATE):
            attr = "errors" if spec.metric is Metric.ERROR_RATE else "refusals"
            out.append(
                compare_rates(
                    spec.name,
                    [getattr(a, attr) for a in c_w],
                    [a.n for a in c_w],
                    [getattr(a, attr) for a in s_w],
                    [a.n for a in s_w],
                    design_ratio=spec.design_ratio,
                    pass_ratio=spec.pass_ratio,
                    **kw,
                )
            )
        elif spec.metric is Metric.NEGATIVE_FEEDBACK_RATE:
            out.append(
                compare_rates(
                    spec.name,
                    [a.negative_feedback for a in c_w],
                    [a.feedback_n for a in c_w],
                    [a.negative_feedback for a in s_w],
                    [a.feedback_n for a in s_w],
                    design_ratio=spec.design_ratio,
                    pass_ratio=spec.pass_ratio,
                    **kw,
                )
            )
        elif spec.metric is Metric.COST:
            out.append(
                compare_means(
                    spec.name,
                    [a.n for a in c_w],
                    [a.cost_sum for a in c_w],
                    [a.cost_sq_sum for a in c_w],
                    [a.n for a in s_w],
                    [a.cost_sum for a in s_w],
                    [a.cost_sq_sum for a in s_w],
                    **kw,
                )
            )
        else:
            out.append(_latency(spec, s_w, c_w, latency_reference_ms))
    return tuple(out)


def _pooled_quantile(windows: Sequence[ArmStats], q: float) -> float | None:
    dists = [w.latency for w in windows if w.latency is not None and w.latency.count > 0]
    if not dists:
        return None
    if len(dists) == 1:
        return dists[0].quantile(q)
    # Quantile of the pooled distribution by bisection on the tail counts.
    total = sum(d.count for d in dists)
    values = [v for d in dists if (v := d.quantile(q)) is not None]
    lo, hi = min(values), max(values)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if sum(d.count_above(mid) for d in dists) > (1.0 - q) * total:
            lo = mid
        else:
            hi = mid
    return hi


def _latency(
    spec: MetricSpec,
    s_w: Sequence[ArmStats],
    c_w: Sequence[ArmStats],
    references: Mapping[float, float] | None,
) -> MetricResult:
    reference = None if references is None else references.get(spec.quantile)
    note = "reference fixed in advance"
    if reference is None:
        reference = _pooled_quantile(s_w, spec.quantile)
        note = "reference is stable's own quantile over the same windows"
    if reference is None:
        reference = math.inf
        note = "no stable latencies yet"
    t_s, t_c = latency_thresholds(reference, spec.tolerance)

    def tail(arm: ArmStats, t: float) -> tuple[float, float]:
        if arm.latency is None or not math.isfinite(t):
            return 0.0, 0.0
        return arm.latency.count_above(t), arm.latency.count

    c_tail = [tail(a, t_c) for a in c_w]
    s_tail = [tail(a, t_s) for a in s_w]
    result = compare_rates(
        spec.name,
        [k for k, _ in c_tail],
        [n for _, n in c_tail],
        [k for k, _ in s_tail],
        [n for _, n in s_tail],
        design_ratio=spec.design_ratio,
        pass_ratio=spec.pass_ratio,
        **{**_spec_kwargs(spec), "tolerance": Tolerance()},
    )
    q_s = _pooled_quantile(s_w, spec.quantile)
    q_c = _pooled_quantile(c_w, spec.quantile)
    return replace(
        result,
        method="split-of-events mixture on tail counts (quantile)",
        stable_value=q_s,
        candidate_value=q_c,
        note=f"{note}; thresholds stable {t_s:.6g} ms, candidate {t_c:.6g} ms",
    )


# --- the stage decision -------------------------------------------------------------------


class Action(StrEnum):
    ROLLBACK = "rollback"
    ADVANCE = "advance"
    HOLD = "hold"


class GateLike(Protocol):
    """A stage's minimums; :class:`StageGate` or a plan's ``Stage`` both fit."""

    @property
    def min_duration_s(self) -> float: ...

    @property
    def min_canary_requests(self) -> int: ...


@dataclass(frozen=True, slots=True)
class StageGate:
    """What a stage needs, besides the required metrics passing, before it may advance."""

    min_duration_s: float = 0.0
    min_canary_requests: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reasons: tuple[str, ...]
    metrics: tuple[MetricResult, ...]


def decide(
    results: Sequence[MetricResult],
    gate: GateLike = StageGate(),
    *,
    elapsed_s: float,
    canary_requests: int,
    final: bool = True,
) -> Decision:
    """Rollback if any metric regressed; otherwise advance once the stage's minimum
    duration and canary requests are met and, when the step is ``final`` (the one that
    promotes), every required metric has passed; hold otherwise.

    A regression rolls back at once, whatever the stage's minimums: the tests are valid at
    any stopping time, and a regression is no more likely to be false early than late. An
    intermediate stage advances without proof that the candidate is as good: only exposure
    grows, the tests keep running over the whole rollout, and promotion waits for the proof.
    """
    results = tuple(results)
    regressed = [r for r in results if r.verdict is Verdict.REGRESSION]
    if regressed:
        return Decision(
            Action.ROLLBACK,
            tuple(
                f"{r.metric} regressed (log e {r.log_e_regression:.2f} >= "
                f"{r.threshold_regression:.2f}, alpha {r.alpha:g})"
                for r in regressed
            ),
            results,
        )
    waiting: list[str] = []
    if elapsed_s < gate.min_duration_s:
        waiting.append(f"stage has run {elapsed_s:.0f} s of {gate.min_duration_s:.0f} s")
    if canary_requests < gate.min_canary_requests:
        waiting.append(f"{canary_requests} of {gate.min_canary_requests} canary requests")
    if final:
        for r in results:
            if r.required and r.verdict is not Verdict.PASS:
                waiting.append(f"{r.metric} has not passed yet ({r.verdict})")
    if waiting:
        return Decision(Action.HOLD, tuple(waiting), results)
    if final:
        why = "all required metrics passed; stage minimums met"
    else:
        why = "no metric regressed; stage minimums met (promotion waits for the required metrics)"
    return Decision(Action.ADVANCE, (why,), results)


def evaluate(
    stable: ArmStats | Sequence[ArmStats],
    candidate: ArmStats | Sequence[ArmStats],
    specs: Sequence[MetricSpec] = DEFAULT_METRICS,
    gate: GateLike = StageGate(),
    *,
    elapsed_s: float,
    latency_reference_ms: Mapping[float, float] | None = None,
) -> Decision:
    """:func:`analyze` then :func:`decide`."""
    results = analyze(stable, candidate, specs, latency_reference_ms=latency_reference_ms)
    canary = sum(a.n for a in _windows(candidate))
    return decide(results, gate, elapsed_s=elapsed_s, canary_requests=canary)
