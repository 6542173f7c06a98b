"""The canary tests at the unit of assignment: the per-user counts of a rollout's windows
gathered into the design effect of each clustered rate metric, with each user's rate
before the rollout as a covariate when it is known (docs/canary.md, "Sticky users")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trimtab.canary.arm_stats import ArmStats, UnitCounts
from trimtab.canary.metrics import Metric, MetricSpec
from trimtab.stats.clustered import design_effect, exposures, proneness
from trimtab.stats.intervals import FloatArray

__all__ = ["CLUSTERED", "Clustered", "unit_dispersion"]


CLUSTERED = {
    Metric.ERROR_RATE: "errors",
    Metric.REFUSAL_RATE: "refusals",
    Metric.GUARDRAIL_RATE: "guardrail_fired",
}


@dataclass(frozen=True, slots=True)
class Clustered:
    """A rate metric judged at the unit of assignment: its design effect ``d`` and, when
    the units' rates before the rollout are known, each arm's requests per window as
    exposures (``(2, W)``: stable, candidate; :func:`trimtab.stats.clustered.exposures`),
    with ``adjusted`` the units that had a pre-rollout rate."""

    d: FloatArray
    n: FloatArray | None = None
    adjusted: int = 0


def unit_dispersion(
    stable: Sequence[ArmStats],
    candidate: Sequence[ArmStats],
    specs: Sequence[MetricSpec],
    before: UnitCounts | None = None,
) -> dict[str, Clustered]:
    """The design effect of the error, refusal and guardrail tests from the windows' per-user counts
    (:func:`trimtab.stats.clustered.design_effect`); empty unless every window of both
    arms has them. A user seen in several windows is one unit across them, also when it
    moved from stable to the candidate as a stage widened (``assignment: bucket``); a
    user in both arms of one window (which sticky assignment does not do) is two.

    ``before`` is the route's requests per unit before the rollout started: each unit's
    pre-rollout rate (shrunk, :func:`trimtab.stats.clustered.proneness`) is then its
    covariate, and the tests take exposures for requests (a CUPED-style adjustment)."""
    if not all(w.units is not None for w in (*stable, *candidate)):
        return {}
    n_w = len(stable)
    index: dict[str, int] = {}
    # (arm, window, its units, their columns)
    cells: list[tuple[int, int, UnitCounts, npt.NDArray[np.int64]]] = []
    for i in range(n_w):
        taken: set[str] = set()
        for arm, windows in enumerate((stable, candidate)):
            units = windows[i].units
            assert units is not None
            ids = []
            for key in units.keys:
                unit = key if arm == 0 or key not in taken else SECOND + key
                taken.add(unit)
                ids.append(index.setdefault(unit, len(index)))
            cells.append((arm, i, units, np.array(ids, dtype=np.int64)))
    n_u = len(index)
    n = np.zeros((n_w, n_u))
    on_candidate = np.zeros((n_w, n_u), dtype=bool)
    events = {attr: np.zeros((n_w, n_u)) for attr in CLUSTERED.values()}
    rest_n = np.zeros((2, n_w))
    rest = {attr: np.zeros((2, n_w)) for attr in CLUSTERED.values()}
    for arm, i, units, cols in cells:
        n[i, cols] = units.n
        on_candidate[i, cols] = arm == 1
        rest_n[arm, i] = units.rest_n
        for attr in CLUSTERED.values():
            events[attr][i, cols] = getattr(units, attr)
            rest[attr][arm, i] = getattr(units, "rest_" + attr)
    prior = _prior_rows(before, index)
    out: dict[str, Clustered] = {}
    for spec in specs:
        name = CLUSTERED.get(spec.metric)
        if name is None:
            continue
        if prior is None or before is None:
            d = design_effect(events[name], n, on_candidate, rest[name], rest_n)
            out[spec.name] = Clustered(d)
            continue
        rows, known = prior
        x_before = proneness(getattr(before, name), before.n)
        x = np.where(rows >= 0, x_before[np.maximum(rows, 0)], 1.0)
        d = design_effect(events[name], n, on_candidate, rest[name], rest_n, x)
        out[spec.name] = Clustered(d, exposures(n, on_candidate, x, rest_n), known)
    return out


SECOND = "\x00candidate:"  # a key's unit on the candidate when it is on stable in the window


def _prior_rows(
    before: UnitCounts | None, index: Mapping[str, int]
) -> tuple[npt.NDArray[np.int64], int] | None:
    """For each unit of the rollout, its row in ``before`` (-1: none), and how many have
    one; None without a pre-rollout period."""
    if before is None or len(before.keys) == 0:
        return None
    at = {key: i for i, key in enumerate(before.keys)}
    rows = np.full(len(index), -1, dtype=np.int64)
    for unit, j in index.items():
        rows[j] = at.get(unit.removeprefix(SECOND), -1)
    return rows, int((rows >= 0).sum())
