"""How many output tokens a budget reserves for a request, learnt from the model's answers.

Per served model, the process keeps the output tokens of its last `window` completed
requests and reserves their `quantile` (nearest rank: the ceil(q * n)-th smallest of the
n kept), capped by the request's own `max_tokens`. Until a model has `min_samples`
answers the reservation is what it always was: the request's cap, else
`default_output_tokens`. See docs/policy.md, "What a request reserves".
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque

from trimtab.config import ReservationConfig


class RecentQuantile:
    """The q-quantile (nearest rank) of the last `window` integers observed.

    The values are kept twice, in arrival order and sorted, so an observation costs a
    binary search and a shift of at most `window` items, and a read is one index.
    """

    __slots__ = ("_arrived", "_index", "_q", "_sorted", "_window")

    def __init__(self, window: int, quantile: float) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        if not 0.0 < quantile <= 1.0:
            raise ValueError("quantile must be in (0, 1]")
        self._window = window
        self._q = quantile
        self._arrived: deque[int] = deque()
        self._sorted: list[int] = []
        self._index = 0  # of the quantile in _sorted, for the number of values kept

    def __len__(self) -> int:
        return len(self._arrived)

    def observe(self, value: int) -> None:
        """Keep `value`, forgetting the oldest value once `window` are kept."""
        if len(self._arrived) == self._window:
            oldest = self._arrived.popleft()
            del self._sorted[bisect_left(self._sorted, oldest)]
        else:  # one more value kept: the quantile's rank may move
            self._index = nearest_rank(self._q, len(self._arrived) + 1) - 1
        self._arrived.append(value)
        insort(self._sorted, value)

    def value(self) -> int | None:
        """The ceil(q * n)-th smallest of the n values kept, or None when none is."""
        return self._sorted[self._index] if self._sorted else None


def nearest_rank(quantile: float, n: int) -> int:
    """ceil(quantile * n), in 1..n; the 1e-9 keeps 0.55 * 100 (55.00000000000001) at 55."""
    return min(n, max(1, math.ceil(quantile * n - 1e-9)))


class OutputEstimator:
    """Output tokens to reserve per model; fed with the output tokens of completed calls."""

    __slots__ = ("_default", "_min_samples", "_models", "_quantile", "_window")

    def __init__(self, config: ReservationConfig) -> None:
        self._quantile = config.output_quantile
        self._window = config.window
        self._min_samples = config.min_samples
        self._default = config.default_output_tokens
        self._models: dict[str, RecentQuantile] = {}

    def observe(self, model: str, output_tokens: int) -> None:
        """Count one completed call of `model` that produced `output_tokens`."""
        recent = self._models.get(model)
        if recent is None:
            recent = self._models[model] = RecentQuantile(self._window, self._quantile)
        recent.observe(max(output_tokens, 0))

    def tokens(self, model: str, cap: int | None) -> int:
        """The output tokens to reserve for a request to `model` that allows at most `cap`."""
        recent = self._models.get(model)
        if recent is None or len(recent) < self._min_samples:
            return cap if cap is not None else self._default
        learnt = recent.value()
        assert learnt is not None  # min_samples >= 1 values are kept
        return learnt if cap is None else min(learnt, cap)

    def samples(self, model: str) -> int:
        """How many completed calls of `model` the estimate is taken from."""
        recent = self._models.get(model)
        return 0 if recent is None else len(recent)
