"""The stage decision: per-metric verdicts and a stage gate in; promote, hold or roll back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from trimtab.canary.analysis import TOO_LITTLE, _windows, analyze
from trimtab.canary.arm_stats import ArmStats
from trimtab.canary.metrics import DEFAULT_METRICS, MetricSpec
from trimtab.stats.sequential import MetricResult, Verdict

__all__ = [
    "Action",
    "Decision",
    "GateLike",
    "StageGate",
    "decide",
    "evaluate",
]


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
    canary_per_s: float | None = None,
) -> Decision:
    """Rollback if any metric regressed; otherwise advance once the stage's minimum
    duration and canary requests are met and, when the step is ``final`` (the one that
    promotes), every required metric has passed; hold otherwise.

    A regression rolls back at once, whatever the stage's minimums: the tests are valid at
    any stopping time, and a regression is no more likely to be false early than late. An
    intermediate stage advances without proof that the candidate is as good: only exposure
    grows, the tests keep running over the whole rollout, and promotion waits for the proof.

    A required metric that has not passed is named with its estimate, interval and margin
    and the canary requests it still needs at its current estimate (and, given the
    stage's ``canary_per_s``, about how long that takes), or that it cannot pass there.
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
                waiting.append(_waiting(r, canary_per_s))
    if waiting:
        return Decision(Action.HOLD, tuple(waiting), results)
    if final:
        why = "all required metrics passed; stage minimums met"
    else:
        why = "no metric regressed; stage minimums met (promotion waits for the required metrics)"
    return Decision(Action.ADVANCE, (why,), results)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _waiting(r: MetricResult, canary_per_s: float | None) -> str:
    shown = (
        f"{r.estimate_kind} {_fmt(r.estimate)} in [{_fmt(r.lower)}, {_fmt(r.upper)}], "
        f"margin {_fmt(r.margin)}"
    )
    head = f"{r.metric} has not passed yet ({r.verdict}: not shown within its margin; {shown})"
    if r.note.startswith(TOO_LITTLE):
        return f"{head}: {r.note}"
    if r.n_candidate < 1 or r.estimate is None:
        return f"{head}: {TOO_LITTLE} to project"
    if r.needed is None:
        return f"{head}: cannot pass at its current estimate"
    more = f"{head}: needs ~{r.needed:,.0f} more canary requests at its current estimate"
    if canary_per_s and canary_per_s > 0:
        more += f" (~{r.needed / canary_per_s / 60:,.0f} min at the current traffic)"
    return more


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
