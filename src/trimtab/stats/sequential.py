"""Per-metric always-valid comparisons of a candidate against stable, with a tolerance.

Each comparison runs two one-sided tests at the tolerance's margin, both always valid:

* **regression** rejects ``H0: candidate no worse than the margin`` at level ``alpha``. A
  regression verdict means the candidate is worse than stable by more than the tolerance,
  with confidence ``1 - alpha``, however often the test was looked at.
* **pass** rejects ``H0: candidate at least as bad as the margin`` at level ``alpha_pass``.
  A pass verdict means the candidate is within the tolerance, with confidence
  ``1 - alpha_pass``.

At most one of them can fire on the same data in practice (they test opposite sides of the
same margin); if neither has, the metric is inconclusive. The confidence interval reported
with each result comes from inverting the same two tests over the margin, so
``regression <=> the interval lies beyond the margin`` and ``pass <=> it lies inside``.

Rates with a relative tolerance use the split-of-events test (exact given random traffic
assignment; see :mod:`trimtab.stats.intervals`), in :mod:`trimtab.stats.rates`. Means, and
rates with an absolute tolerance, use the one-sided normal mixture with a plug-in variance
(asymptotic), in :mod:`trimtab.stats.means`. This module holds what both share: the
result types, the verdict and the inversion into an interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from trimtab.stats.intervals import (
    FloatArray,
)

__all__ = [
    "Direction",
    "Interval",
    "MetricResult",
    "Tolerance",
    "Verdict",
]


class Direction(StrEnum):
    """Which way is worse for a metric."""

    HIGHER_IS_WORSE = "higher_is_worse"
    LOWER_IS_WORSE = "lower_is_worse"

    @property
    def sign(self) -> float:
        return 1.0 if self is Direction.HIGHER_IS_WORSE else -1.0


class Verdict(StrEnum):
    REGRESSION = "regression"
    PASS = "pass"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How much worse than stable still counts as acceptable.

    The margin is ``stable * (1 + relative) + absolute`` when higher is worse and
    ``stable * (1 - relative) - absolute`` when lower is worse. Rates take a relative margin
    (the split-of-events test works on rate ratios); an absolute one moves them to the
    normal-approximation test. The split-of-events test learns from the events only, so a
    rate is best stated as the rare outcome (errors, not successes): a lower-is-worse rate
    of a common event is tested validly but slowly.
    """

    relative: float = 0.0
    absolute: float = 0.0

    def __post_init__(self) -> None:
        if not (self.relative >= 0.0 and self.absolute >= 0.0):
            raise ValueError("tolerances must be >= 0")
        if not (math.isfinite(self.relative) and math.isfinite(self.absolute)):
            raise ValueError("tolerances must be finite")

    def coef(self, direction: Direction) -> float:
        """Stable's coefficient in the margin: ``1 + relative`` or ``1 - relative``."""
        c = 1.0 + direction.sign * self.relative
        if c <= 0.0:
            raise ValueError("a relative tolerance on a lower-is-worse metric must be < 1")
        return c


@dataclass(frozen=True, slots=True)
class Interval:
    """Another test's view of the same metric (the regression test, when it runs at a
    tolerance other than the non-inferiority margin): its estimate and confidence sequence
    against its margin, in the units of ``estimate_kind``."""

    method: str
    estimate_kind: str
    estimate: float | None
    lower: float
    upper: float
    margin: float


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric's verdict and the statistics behind it.

    ``log_e_regression >= threshold_regression`` (``= log(1/alpha)``) is what makes a
    regression, ``log_e_pass >= threshold_pass`` a pass. ``estimate``, ``lower`` and
    ``upper`` are in the units of ``estimate_kind``: ``"ratio"`` is candidate over stable (for
    latency: the candidate's rate above ``(1 + relative)`` times the reference over stable's
    rate above the reference); ``"difference"`` is ``candidate - coef * stable`` with
    ``coef`` from the relative tolerance. ``margin`` is the tolerance's boundary in the same
    units. The interval is a confidence sequence: it covers the truth at all times with
    probability at least ``1 - alpha - alpha_pass``.

    ``needed`` (required metrics still waiting) is the canary requests the pass test would
    still need if the current estimates held; None when it cannot pass at them or is not
    waiting. ``rollback`` is the regression test's interval when it runs at a tolerance other
    than ``margin`` or takes another design effect (a clustered rate's, nearly always).
    """

    metric: str
    verdict: Verdict
    direction: Direction
    method: str
    n_stable: float
    n_candidate: float
    stable_value: float | None
    candidate_value: float | None
    estimate_kind: str
    estimate: float | None
    lower: float
    upper: float
    margin: float
    log_e_regression: float
    log_e_pass: float
    threshold_regression: float
    threshold_pass: float
    alpha: float
    alpha_pass: float
    required: bool = False
    note: str = ""
    needed: float | None = None
    rollback: Interval | None = None


def _verdict(log_e_reg: float, log_e_pass: float, alpha: float, alpha_pass: float) -> Verdict:
    if log_e_reg >= math.log(1.0 / alpha):
        return Verdict.REGRESSION
    if log_e_pass >= math.log(1.0 / alpha_pass):
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


def _as_windows(x: npt.ArrayLike) -> FloatArray:
    arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError("expected a number or a flat sequence of windows")
    return arr


def _bisect(pred: Callable[[float], bool], lo: float, hi: float, iters: int = 64) -> float:
    """The boundary between ``pred`` true at ``lo`` and false at ``hi`` (pred monotone)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if pred(mid):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _confidence_bounds(
    above: Callable[[float], bool], below: Callable[[float], bool], lo: float, hi: float
) -> tuple[float | None, float | None]:
    """The ends of a confidence interval, bisected on ``[lo, hi]``.

    ``above(x)``: the evidence that the quantity exceeds ``x`` crosses its threshold
    (true for small ``x``); ``below(x)`` likewise for "less than ``x``". The lower end
    is where ``above`` stops holding, the upper end where ``below`` starts; ``None``
    where even ``lo`` (``hi``) is not rejected: no bound on that side.
    """
    lower = _bisect(above, lo, hi) if above(lo) else None
    upper = _bisect(lambda x: not below(x), lo, hi) if below(hi) else None
    return lower, upper


def _check_alphas(alpha: float, alpha_pass: float) -> None:
    if not (0.0 < alpha < 1.0 and 0.0 < alpha_pass < 1.0):
        raise ValueError("alpha and alpha_pass must be in (0, 1)")
