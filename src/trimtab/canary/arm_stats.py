"""Per-arm counters for canary analysis: request counts, events, latency, unit counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from trimtab.stats.intervals import FloatArray

__all__ = [
    "ArmStats",
    "LatencyDistribution",
    "LatencySamples",
    "SketchLatency",
    "UnitCounts",
    "UnitSums",
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
class UnitSums:
    """One quantity per unit of assignment in one arm and window (cost per request, log
    latency): each unit's ``n`` observations, their ``total`` and ``squares`` (sum and sum
    of squares); ``rest_*`` the arm's observations not broken down by unit, each its own
    unit. What the mean and latency tests take their design effect from."""

    n: FloatArray
    total: FloatArray
    squares: FloatArray
    rest_n: float = 0.0
    rest_total: float = 0.0
    rest_squares: float = 0.0


@dataclass(frozen=True, slots=True)
class UnitCounts:
    """One arm's requests per unit of assignment (the sticky user, else the session) in
    one window: ``keys`` with their ``n`` requests, ``errors``, ``refusals`` and
    ``guardrail_fired``; ``rest_*``
    are the arm's requests not broken down (no user or session, or beyond the read's
    bound), each taken as its own unit. ``cost`` and ``log_latency`` are the same units'
    sums of per-request cost and of the log of latency (ms), when read; ``quality`` their
    scored answers and the sums of the answers' online scores (``n`` the answers), when
    read (``quality_score`` at the unit of assignment)."""

    keys: tuple[str, ...]
    n: FloatArray
    errors: FloatArray
    refusals: FloatArray
    guardrail_fired: FloatArray
    rest_n: float = 0.0
    rest_errors: float = 0.0
    rest_refusals: float = 0.0
    rest_guardrail_fired: float = 0.0
    cost: UnitSums | None = None
    log_latency: UnitSums | None = None
    quality: UnitSums | None = None


@dataclass(frozen=True, slots=True)
class ArmStats:
    """One arm's counters over one window (all additive).

    ``n`` requests, of which ``errors`` failed and ``refusals`` were refused by the model;
    ``feedback_n`` got feedback, ``negative_feedback`` of it negative; ``guardrail_fired``
    had a guardrail fire (``attributes.guardrails.fired`` not empty); ``cost_sum`` and
    ``cost_sq_sum`` are the sum and the sum of squares of per-request cost; ``latency`` is
    the arm's latency distribution (samples or a sketch), if latency is analysed; ``units``
    the same requests per sticky user, when known (the error and refusal tests then take
    the design effect of users that differ, :mod:`trimtab.stats.clustered`).
    ``quality_n`` answers were scored online (evals/online.py), ``quality_sum`` and
    ``quality_sq_sum`` the sum and the sum of squares of their scores (an answer's score is
    the mean of its scorers' values, in [0, 1]): the metric ``quality_score``.
    """

    n: int = 0
    errors: int = 0
    refusals: int = 0
    feedback_n: int = 0
    negative_feedback: int = 0
    cost_sum: float = 0.0
    cost_sq_sum: float = 0.0
    latency: LatencyDistribution | None = None
    units: UnitCounts | None = None
    guardrail_fired: int = 0
    quality_n: int = 0
    quality_sum: float = 0.0
    quality_sq_sum: float = 0.0

    def __post_init__(self) -> None:
        counts = (self.errors, self.refusals, self.feedback_n, self.guardrail_fired)
        if min(self.n, self.negative_feedback, *counts) < 0:
            raise ValueError("counts must be >= 0")
        if max(counts) > self.n:
            raise ValueError("errors, refusals, feedback_n and guardrail_fired must be <= n")
        if self.negative_feedback > self.feedback_n:
            raise ValueError("negative_feedback must be <= feedback_n")
        if min(self.quality_n, self.quality_sum, self.quality_sq_sum) < 0:
            raise ValueError("quality counters must be >= 0")
