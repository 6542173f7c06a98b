"""How the simulated rollouts ended, and the summaries the report prints of them (shares
with Wilson 95 % intervals, medians of the canary's requests and of the hours)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from canary_bench.sketch import Array
from trimtab.stats.proportions import wilson_interval

ROLLBACK, PROMOTE, PAUSE, UNDECIDED = "rolled back", "promoted", "paused", "undecided"


@dataclass
class Outcome:
    """Per rollout: how it ended and at how many canary requests (over the rollout)."""

    action: npt.NDArray[np.str_]
    canary_at: Array
    decided_s: Array  # seconds from the start to the decision
    looks: int
    by_metric: dict[str, float]  # share of rollouts each metric rolled back


def share(o: Outcome, action: str) -> tuple[float, float, float]:
    """The share of rollouts that ended in ``action``, and its Wilson 95 % interval."""
    k = int((o.action == action).sum())
    lo, hi = wilson_interval(k, o.action.size)
    return k / o.action.size, lo, hi


def median_canary(o: Outcome, action: str) -> float:
    """The median of the canary's requests at the decision ``action`` (NaN: none)."""
    at = o.canary_at[o.action == action]
    return float(np.median(at)) if at.size else math.nan


def median_hours(o: Outcome, action: str) -> float:
    """The median hours from the start to the decision ``action`` (NaN: none)."""
    at = o.decided_s[o.action == action]
    return float(np.median(at)) / 3600.0 if at.size else math.nan


def pct(x: tuple[float, float, float]) -> str:
    """A share and its interval, as the table prints them."""
    return f"{x[0]:.1%} [{x[1]:.1%}, {x[2]:.1%}]"
