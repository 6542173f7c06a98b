"""The canary tests at the unit of assignment: the per-user counts of a rollout's windows
gathered into the design effect of each clustered metric, with each user's rate, mean cost
and mean log latency before the rollout as covariates when they are known (docs/canary.md,
"Sticky users")."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

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
    majority_arm,
    proneness,
    regression_design_effect,
)
from trimtab.stats.cuped import adjusted_sums, mean_coefficient, tail_offsets
from trimtab.stats.intervals import FloatArray

__all__ = ["CLUSTERED", "CLUSTERED_MEANS", "Clustered", "unit_dispersion"]


CLUSTERED = {
    Metric.ERROR_RATE: "errors",
    Metric.REFUSAL_RATE: "refusals",
    Metric.GUARDRAIL_RATE: "guardrail_fired",
}
# the metrics judged on a quantity per request, and the per-unit sums their design effect
# is taken from: cost per request, and the log of latency for the latency tail tests (its
# design effect is at least the tail counts' own: docs/canary.md, "Sticky users"), and the
# online score per scored answer
CLUSTERED_MEANS = {
    Metric.COST: "cost",
    Metric.LATENCY: "log_latency",
    Metric.QUALITY_SCORE: "quality",
}
# what a mean's design effect takes its residuals against: each unit against the rest of its
# own arm, so a shifted candidate is not read as spread (a rate's pass test: the pooled rate,
# whose larger D under a difference also covers a heavy user whose history no longer holds;
# a rate's regression test: its arm, widened for the few units its variance rests on,
# stats.clustered.regression_design_effect; docs/canary.md, "Sticky users")
MEANS_CENTRE = "arms"
# the smallest alpha a rate's regression side is widened at (stats.student.t_widening's)
SMALLEST_ALPHA = 1e-6
# the quantities whose per-unit means before the rollout are a covariate (CUPED)
HISTORY_MEANS = {"cost": "mean cost", "log_latency": "mean log latency"}


@dataclass(frozen=True, slots=True)
class Clustered:
    """A metric judged at the unit of assignment: its design effect ``d`` and, when the
    units' history before the rollout is known, what the tests take instead of the arms'
    counters (``(2, W)``: stable, candidate): ``n``, the requests per window as exposures
    (:func:`trimtab.stats.clustered.exposures`; for a latency test, its requests weighted by
    :func:`trimtab.stats.cuped.tail_offsets`), or ``total`` and ``squares``, a mean's
    CUPED-adjusted sums (:func:`trimtab.stats.cuped.adjusted_sums`). ``adjusted`` is the
    units that had a history, ``covariate`` what it was (``rates``, ``mean cost``, ``mean
    log latency``), ``theta`` its estimated coefficient and ``theta_units`` the units it
    was estimated from. A rate's regression test takes ``d_regression`` instead of ``d``
    (:func:`trimtab.stats.clustered.regression_design_effect`), its variance resting on
    ``regression_units`` effective units (users, and each request without one)."""

    d: FloatArray
    n: FloatArray | None = None
    adjusted: int = 0
    theta: float = 0.0
    theta_units: int = 0
    total: FloatArray | None = None
    squares: FloatArray | None = None
    covariate: str = "rates"
    d_regression: FloatArray | None = None
    regression_units: float = 0.0

    @property
    def history(self) -> bool:
        """Whether the tests take the history (exposures or adjusted sums)."""
        return self.n is not None or self.total is not None

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
    thresholds: Mapping[str, float] | None = None,
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
    is ignored), and the tests take exposures for requests. Its units' mean cost and mean
    log latency are the covariates of the cost and latency tests, CUPED's classic form
    (:mod:`trimtab.stats.cuped`): the cost test takes the arms' adjusted sums, the latency
    tests the offsets each unit's predicted latency gives its tail counts at stable's
    threshold (``thresholds``: a latency spec's name to stable's threshold in ms), and both
    the design effect of the adjusted log latency or cost: what the history leaves."""
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
            history = _history_means(before, quantity, prior)
            threshold = (thresholds or {}).get(spec.name, math.inf)
            out[spec.name] = _mean(means[quantity], on_candidate, history, threshold)
            if history is not None:
                out[spec.name] = replace(out[spec.name], covariate=HISTORY_MEANS[quantity])
            continue
        name = CLUSTERED.get(spec.metric)
        if name is None:
            continue
        if prior is None or before is None:
            d = design_effect(events[name], n, on_candidate, rest[name], rest_n)
            out[spec.name] = _with_regression(
                Clustered(d), spec, events[name], n, on_candidate, rest[name], rest_n, None
            )
            continue
        rows, known = prior
        x_before = proneness(getattr(before, name), before.n)
        x = np.where(rows >= 0, x_before[np.maximum(rows, 0)], 1.0)
        judged = majority_arm(n, on_candidate)
        theta, used = history_coefficient(events[name].sum(0), n.sum(0), x, rows >= 0, judged)
        x = adjusted_proneness(x, theta)
        d = design_effect(events[name], n, on_candidate, rest[name], rest_n, x)
        ex = exposures(n, on_candidate, x, rest_n)
        out[spec.name] = _with_regression(
            Clustered(d, ex, known, float(theta), int(used)),
            spec, events[name], n, on_candidate, rest[name], rest_n, x,
        )  # fmt: skip
    return out


def _with_regression(
    unit: Clustered,
    spec: MetricSpec,
    k: FloatArray,
    n: FloatArray,
    on_candidate: npt.NDArray[np.bool_],
    rest_k: FloatArray,
    rest_n: FloatArray,
    x: FloatArray | None,
) -> Clustered:
    """A rate's clustering with its regression test's design effect, and the effective units
    (whole, at least 1: the t's degrees of freedom) it is widened for. A test switched off
    by an ``alpha`` below :data:`SMALLEST_ALPHA` is widened as at it."""
    alpha = max(spec.alpha, SMALLEST_ALPHA)
    got = regression_design_effect(k, n, on_candidate, rest_k, rest_n, x, alpha=alpha)
    units = float(np.floor(max(float(got.units), 1.0)))
    return replace(unit, d_regression=got.d, regression_units=units)


def _history_means(
    before: UnitCounts | None, quantity: str, prior: tuple[npt.NDArray[np.int64], int] | None
) -> tuple[FloatArray, npt.NDArray[np.bool_]] | None:
    """Each rollout unit's mean of ``quantity`` before the rollout, and which units had
    one; None for a quantity without a history (online scores) or without a period."""
    if prior is None or before is None or quantity not in HISTORY_MEANS:
        return None
    sums = getattr(before, quantity)
    if sums is None:
        return None
    rows, _ = prior
    at = np.maximum(rows, 0)
    had = (rows >= 0) & (sums.n[at] > 0)
    x = np.where(had, sums.total[at] / np.where(had, sums.n[at], 1.0), 0.0)
    return x, had


def _mean(
    sums: tuple[FloatArray, ...],
    on_candidate: npt.NDArray[np.bool_],
    history: tuple[FloatArray, npt.NDArray[np.bool_]] | None,
    threshold: float,
) -> Clustered:
    """A mean's (or the log latency's) design effect at the unit of assignment; with a
    history, CUPED: the design effect of the adjusted sums, and the arms' adjusted sums
    (cost) or the tail tests' exposures at stable's ``threshold`` (latency, when finite)."""
    m_n, m_k, m_q, r_n, r_k, r_q = sums
    if history is None:
        return Clustered(design_effect(m_k, m_n, on_candidate, r_k, r_n, squares=m_q,
                                       rest_squares=r_q, centre=MEANS_CENTRE))  # fmt: skip
    x, known = history
    theta, used, x_bar = mean_coefficient(
        m_k.sum(0), m_n.sum(0), x, known, majority_arm(m_n, on_candidate)
    )
    k_adj, q_adj, b = adjusted_sums(m_k, m_q, m_n, x, known, theta, x_bar)
    d = design_effect(
        k_adj, m_n, on_candidate, r_k, r_n, squares=q_adj, rest_squares=r_q, centre=MEANS_CENTRE
    )
    total = np.stack([np.where(on_candidate, 0.0, k_adj).sum(-1) + r_k[0],
                      np.where(on_candidate, k_adj, 0.0).sum(-1) + r_k[1]])  # fmt: skip
    squares = np.stack([np.where(on_candidate, 0.0, q_adj).sum(-1) + r_q[0],
                        np.where(on_candidate, q_adj, 0.0).sum(-1) + r_q[1]])  # fmt: skip
    common = Clustered(d, None, int(known.sum()), float(theta), int(used))
    if not math.isfinite(threshold):  # a mean: the tests take its adjusted sums
        return replace(common, total=total, squares=squares)
    n_s = float(np.where(on_candidate, 0.0, m_n).sum() + r_n[0].sum())
    if n_s <= 0 or threshold <= 0:
        return common
    m_s = float(total[0].sum()) / n_s
    sd = math.sqrt(max(float(squares[0].sum()) / n_s - m_s * m_s, 0.0))
    offsets = tail_offsets(b, m_n.sum(0), math.log(threshold), m_s, sd)
    return replace(common, n=exposures(m_n, on_candidate, offsets, r_n))


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
