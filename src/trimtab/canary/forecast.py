"""How a plan will go on a route's traffic, said before the rollout starts (issue 12, item 6).

The forecast assumes the candidate behaves exactly as stable did over a baseline (the
route's recent traffic) and walks the plan's stages as the controller would, on the
expected counts: how long each stage takes to meet its minimums at the route's rate, and
when every required metric would pass its non-inferiority test. Expected counts make it a
projection of the typical healthy rollout, not a promise: half of healthy rollouts need
more, and a rollout whose users are sticky and differ (the design effect of
`stats.clustered`) needs more still. What it is for is the case it gets right every time:
a plan that cannot decide within its durations on this traffic, which is said before the
rollout starts instead of after it has paused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from trimtab.canary.analysis import ArmArrays, arm_arrays, evidence, still_needed, verdicts
from trimtab.canary.arm_stats import ArmStats
from trimtab.canary.metrics import Metric, MetricSpec, latency_thresholds
from trimtab.canary.plans import Plan
from trimtab.durations import spoken
from trimtab.stats.intervals import FloatArray

__all__ = ["METHOD", "Forecast", "StageForecast", "forecast"]

METHOD = (
    "expected counts: the candidate taken to match stable's rates over the baseline, "
    "the plan's stages walked as the controller walks them"
)
_STEPS = 160  # candidate times per stage searched for the first pass, geometric

Outcome = Literal["advance", "promote", "pause"]


@dataclass(frozen=True, slots=True)
class StageForecast:
    stage: int
    percent: float
    canary_per_s: float
    seconds: float  # how long the stage is expected to run before it moves (or pauses)
    canary_requests: float  # expected canary requests in the stage by then
    outcome: Outcome
    reason: str


@dataclass(frozen=True, slots=True)
class Forecast:
    plan_name: str
    requests_per_s: float
    baseline_requests: int
    baseline_s: float
    stages: tuple[StageForecast, ...]
    promote_after_s: float | None  # None: the plan is expected to pause instead
    promote_canary_requests: float | None
    waiting_on: tuple[str, ...]  # the required metrics that would not pass in time
    warnings: tuple[str, ...]
    method: str = METHOD

    def view(self) -> dict[str, Any]:
        return {
            "plan": self.plan_name,
            "method": self.method,
            "requests_per_s": self.requests_per_s,
            "baseline": {"requests": self.baseline_requests, "seconds": self.baseline_s},
            "stages": [
                {
                    "stage": s.stage,
                    "percent": s.percent,
                    "canary_per_s": s.canary_per_s,
                    "seconds": s.seconds,
                    "canary_requests": round(s.canary_requests),
                    "outcome": s.outcome,
                    "reason": s.reason,
                }
                for s in self.stages
            ],
            "promote_after_s": self.promote_after_s,
            "promote_canary_requests": (
                None
                if self.promote_canary_requests is None
                else round(self.promote_canary_requests)
            ),
            "waiting_on": list(self.waiting_on),
            "warnings": list(self.warnings),
        }


def _twin(baseline: ArmStats, specs: Sequence[MetricSpec]) -> tuple[ArmArrays, ArmArrays]:
    """One window each of stable and of a candidate identical to it: the tails at the
    latency thresholds of each arm, from the baseline's own quantile."""
    s_tails: dict[str, FloatArray] = {}
    c_tails: dict[str, FloatArray] = {}
    dist = baseline.latency
    for spec in specs:
        if spec.metric is not Metric.LATENCY:
            continue
        ref = None if dist is None or dist.count <= 0 else dist.quantile(spec.quantile)
        if dist is None or ref is None:
            s_tails[spec.name] = c_tails[spec.name] = np.zeros(1)
            continue
        t_s, t_c = latency_thresholds(ref, spec.tolerance)
        s_tails[spec.name] = np.array([dist.count_above(t_s)])
        c_tails[spec.name] = np.array([dist.count_above(t_c)])
    return arm_arrays([baseline], s_tails), arm_arrays([baseline], c_tails)


def _windows(base: ArmArrays, factors: FloatArray) -> ArmArrays:
    """The baseline's one window times ``factors`` (shape ``(..., windows)``): expected
    counters of windows of those sizes."""
    f = np.asarray(factors, dtype=np.float64)

    def times(v: FloatArray) -> FloatArray:
        out: FloatArray = float(v[0]) * f
        return out

    return ArmArrays(
        n=times(base.n), errors=times(base.errors), refusals=times(base.refusals),
        feedback_n=times(base.feedback_n), negative_feedback=times(base.negative_feedback),
        cost_sum=times(base.cost_sum), cost_sq_sum=times(base.cost_sq_sum),
        guardrail_fired=times(base.guardrail_fired), quality_n=times(base.quality_n),
        quality_sum=times(base.quality_sum), quality_sq_sum=times(base.quality_sq_sum),
        latency_n=times(base.latency_n), tails={k: times(v) for k, v in base.tails.items()},
    )  # fmt: skip


def forecast(
    plan: Plan,
    baseline: ArmStats,
    baseline_s: float,
    *,
    plan_name: str = "default",
    specs: Sequence[MetricSpec] | None = None,
) -> Forecast:
    """What ``plan`` is expected to do on a route whose recent traffic is ``baseline``
    (stable's counters over the last ``baseline_s`` seconds), if the candidate matches it."""
    specs = tuple(plan.specs() if specs is None else specs)
    rate = baseline.n / baseline_s if baseline_s > 0 else 0.0
    required = [s for s in specs if s.required]
    out: list[StageForecast] = []
    warnings: list[str] = []

    def done(
        after: float | None = None, canary: float | None = None, waiting: Sequence[str] = ()
    ) -> Forecast:
        return Forecast(
            plan_name=plan_name, requests_per_s=rate, baseline_requests=baseline.n,
            baseline_s=baseline_s, stages=tuple(out), promote_after_s=after,
            promote_canary_requests=canary, waiting_on=tuple(waiting), warnings=tuple(warnings),
        )  # fmt: skip

    if baseline.n <= 0:
        warnings.append(
            f"the route had no traffic in the last {spoken(baseline_s)}: no stage can "
            "reach its minimums, and the rollout will pause at its first stage"
        )
        return done()
    base_s, base_c = _twin(baseline, specs)
    stages = plan.stages
    ran = [s for s in stages if s.percent < 100] or list(stages)
    sizes_s: list[float] = []  # expected requests of each window so far, per arm
    sizes_c: list[float] = []
    elapsed = 0.0
    canary_total = 0.0
    for k, st in enumerate(ran):
        w = st.percent / 100.0
        rc, rs = rate * w, rate * (1.0 - w)
        final = k + 1 == len(stages) or stages[k + 1].percent >= 100
        t_min = max(st.min_duration_s, st.min_canary_requests / rc if rc > 0 else math.inf)
        if t_min > st.max_duration_s:
            needs = st.min_canary_requests / rc if rc > 0 else math.inf
            reason = (
                f"its {st.min_canary_requests} canary requests take ~{spoken(needs)} at "
                f"{rc:.3g} canary requests/s, beyond its maximum of "
                f"{spoken(st.max_duration_s)}: it pauses"
            )
            out.append(StageForecast(k, st.percent, rc, st.max_duration_s,
                                     rc * st.max_duration_s, "pause", reason))  # fmt: skip
            warnings.append(f"stage {k + 1} ({st.percent:g} %) cannot meet its minimums: " + reason)
            return done()
        if final or plan.promote_early:
            ts = np.geomspace(max(t_min, 1.0), max(st.max_duration_s, t_min, 1.0), _STEPS)
            n_base = float(base_s.n[0])
            f_s = np.array([[*(x / n_base for x in sizes_s), rs * t / n_base] for t in ts])
            f_c = np.array([[*(x / n_base for x in sizes_c), rc * t / n_base] for t in ts])
            s_arr, c_arr = _windows(base_s, f_s), _windows(base_c, f_c)
            ok = np.ones(ts.size, dtype=bool)
            for spec in required:
                reg, good = evidence(spec, s_arr, c_arr)
                ok &= verdicts(spec, reg, good)[1]
            hit = np.nonzero(ok)[0]
            if hit.size:
                t = float(ts[hit[0]])
                out.append(StageForecast(k, st.percent, rc, t, rc * t, "promote",
                                         "every required metric would have passed"))  # fmt: skip
                return done(elapsed + t, canary_total + rc * t)
            if final:
                t = st.max_duration_s
                last_s, last_c = _windows(base_s, f_s[-1]), _windows(base_c, f_c[-1])
                waiting: list[str] = []
                for spec in required:
                    reg, good = evidence(spec, last_s, last_c)
                    if bool(verdicts(spec, reg, good)[1]):
                        continue
                    more = still_needed(spec, last_s, last_c)
                    waiting.append(
                        f"{spec.name} (~{more:,.0f} more canary requests, "
                        f"~{spoken(more / rc)} more at this stage)"
                        if more is not None and rc > 0
                        else f"{spec.name} (cannot pass at stable's own rates)"
                    )
                reason = "within its maximum not every required metric would pass: it pauses"
                out.append(StageForecast(k, st.percent, rc, t, rc * t, "pause", reason))
                warnings.append(
                    f"the plan is not expected to decide within its durations at "
                    f"{rate:.3g} requests/s: stage {k + 1} ({st.percent:g} %) would pause "
                    f"after {spoken(t)} still waiting for " + "; ".join(waiting)
                )
                return done(waiting=waiting)
        reason = f"its minimums are met after {spoken(t_min)}"
        out.append(StageForecast(k, st.percent, rc, t_min, rc * t_min, "advance", reason))
        sizes_s.append(rs * t_min)
        sizes_c.append(rc * t_min)
        elapsed += t_min
        canary_total += rc * t_min
    raise AssertionError("the plan's last stage before 100 % is final")  # pragma: no cover
