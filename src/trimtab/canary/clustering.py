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
from trimtab.stats.clustered import (
    MIN_HISTORY_UNITS,
    adjusted_proneness,
    design_effect,
    exposures,
    history_coefficient,
    proneness,
)
from trimtab.stats.intervals import FloatArray

__all__ = ["CLUSTERED", "CLUSTERED_MEANS", "Clustered", "unit_dispersion"]


CLUSTERED = {
    Metric.ERROR_RATE: "errors",
    Metric.REFUSAL_RATE: "refusals",
    Metric.GUARDRAIL_RATE: "guardrail_fired",
}
# the metrics judged on a quantity per request, and the per-unit sums their design effect
# is taken from: cost per request, and the log of latency for the latency tail tests (its
# design effect is at least the tail counts' own: docs/canary.md, "Sticky users")
CLUSTERED_MEANS = {Metric.COST: "cost", Metric.LATENCY: "log_latency"}


@dataclass(frozen=True, slots=True)
class Clustered:
    """A rate metric judged at the unit of assignment: its design effect ``d`` and, when
    the units' rates before the rollout are known, each arm's requests per window as
    exposures (``(2, W)``: stable, candidate; :func:`trimtab.stats.clustered.exposures`),
    with ``adjusted`` the units that had a pre-rollout rate, ``theta`` the estimated
    coefficient of that rate (:func:`trimtab.stats.clustered.history_coefficient`) and
    ``theta_units`` the units it was estimated from."""

    d: FloatArray
    n: FloatArray | None = None
    adjusted: int = 0
    theta: float = 0.0
    theta_units: int = 0

    @property
    def method(self) -> str:
        """How the history entered, for a decision's note: ``CUPED, theta 0.43 from 812
        users`` (or why it was ignored)."""
        if self.theta_units < MIN_HISTORY_UNITS:
            return (
                f"CUPED, theta 0 (history ignored: {self.theta_units} users seen before "
                f"and during the rollout, {MIN_HISTORY_UNITS} needed)"
            )
        return f"CUPED, theta {self.theta:.2f} from {self.theta_units} users"


def unit_dispersion(
    stable: Sequence[ArmStats],
    candidate: Sequence[ArmStats],
    specs: Sequence[MetricSpec],
    before: UnitCounts | None = None,
) -> dict[str, Clustered]:
    """The design effect of the error, refusal and guardrail tests from the windows'
    per-user counts, and of the cost and latency tests from the per-user sums of cost and
    log latency where read (:func:`trimtab.stats.clustered.design_effect`); empty unless
    every window of both arms has per-user counts. A user seen in several windows is one
    unit across them, also when it moved from stable to the candidate as a stage widened
    (``assignment: bucket``); a user in both arms of one window (which sticky assignment
    does not do) is two.

    ``before`` is the route's requests per unit before the rollout started: each unit's
    pre-rollout rate (shrunk, :func:`trimtab.stats.clustered.proneness`) is then its
    covariate, weighted by the coefficient CUPED estimates from the rollout's own units
    (:func:`trimtab.stats.clustered.history_coefficient`: a history that predicts nothing
    is ignored), and the tests take exposures for requests."""
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
    means = _unit_sums(cells, n_w, n_u)
    prior = _prior_rows(before, index)
    out: dict[str, Clustered] = {}
    for spec in specs:
        quantity = CLUSTERED_MEANS.get(spec.metric)
        if quantity is not None and quantity in means:
            m_n, m_k, m_q, r_n, r_k, r_q = means[quantity]
            d = design_effect(m_k, m_n, on_candidate, r_k, r_n, squares=m_q, rest_squares=r_q)
            out[spec.name] = Clustered(d)
            continue
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
        theta, used = history_coefficient(events[name].sum(0), n.sum(0), x, rows >= 0)
        x = adjusted_proneness(x, theta)
        d = design_effect(events[name], n, on_candidate, rest[name], rest_n, x)
        ex = exposures(n, on_candidate, x, rest_n)
        out[spec.name] = Clustered(d, ex, known, float(theta), int(used))
    return out


def _unit_sums(
    cells: Sequence[tuple[int, int, UnitCounts, npt.NDArray[np.int64]]], n_w: int, n_u: int
) -> dict[str, tuple[FloatArray, ...]]:
    """Per quantity read in every cell (``cost``, ``log_latency``): the units' observations,
    sums and sums of squares ``(W, U)`` and the rest's ``(2, W)``."""
    out: dict[str, tuple[FloatArray, ...]] = {}
    for quantity in CLUSTERED_MEANS.values():
        if not all(getattr(units, quantity) is not None for _, _, units, _ in cells):
            continue
        n, k, q = np.zeros((n_w, n_u)), np.zeros((n_w, n_u)), np.zeros((n_w, n_u))
        rn, rk, rq = np.zeros((2, n_w)), np.zeros((2, n_w)), np.zeros((2, n_w))
        for arm, i, units, cols in cells:
            sums = getattr(units, quantity)
            n[i, cols], k[i, cols], q[i, cols] = sums.n, sums.total, sums.squares
            rn[arm, i], rk[arm, i], rq[arm, i] = sums.rest_n, sums.rest_total, sums.rest_squares
        out[quantity] = (n, k, q, rn, rk, rq)
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
