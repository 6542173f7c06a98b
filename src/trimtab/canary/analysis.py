"""Canary analysis: per-arm counters in, per-metric verdicts and a stage decision out.

Plain data only: the controller folds its per-minute rollups into :class:`ArmStats` (one
per arm, or one per arm per window when the traffic share changed between windows) and
calls :func:`analyze` then :func:`decide` (or :func:`evaluate` for both). Everything is a
sufficient statistic that adds up, so it can be fed after every request or every minute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from trimtab.stats.clustered import MIN_UNITS, NO_EVIDENCE, design_effect
from trimtab.stats.intervals import FloatArray, mixture_rho
from trimtab.stats.means import compare_means, difference_evidence, mean_evidence
from trimtab.stats.rates import compare_rates, rate_evidence, rate_mixtures
from trimtab.stats.sequential import Direction, Interval, MetricResult, Tolerance, Verdict

__all__ = [
    "DEFAULT_METRICS",
    "ERROR_MARGIN",
    "REFUSAL_MARGIN",
    "Action",
    "ArmArrays",
    "ArmStats",
    "Decision",
    "GateLike",
    "LatencyDistribution",
    "LatencySamples",
    "Metric",
    "MetricSpec",
    "SketchLatency",
    "StageGate",
    "UnitCounts",
    "analyze",
    "arm_arrays",
    "decide",
    "evaluate",
    "evidence",
    "latency_thresholds",
    "pooled_quantile",
    "still_needed",
    "unit_dispersion",
    "verdicts",
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
class UnitCounts:
    """One arm's requests per unit of assignment (the sticky user, else the session) in
    one window: ``keys`` with their ``n`` requests, ``errors`` and ``refusals``; ``rest_*``
    are the arm's requests not broken down (no user or session, or beyond the read's
    bound), each taken as its own unit."""

    keys: tuple[str, ...]
    n: FloatArray
    errors: FloatArray
    refusals: FloatArray
    rest_n: float = 0.0
    rest_errors: float = 0.0
    rest_refusals: float = 0.0


@dataclass(frozen=True, slots=True)
class ArmStats:
    """One arm's counters over one window (all additive).

    ``n`` requests, of which ``errors`` failed and ``refusals`` were refused by the model;
    ``feedback_n`` got feedback, ``negative_feedback`` of it negative; ``cost_sum`` and
    ``cost_sq_sum`` are the sum and the sum of squares of per-request cost; ``latency`` is
    the arm's latency distribution (samples or a sketch), if latency is analysed; ``units``
    the same requests per sticky user, when known (the error and refusal tests then take
    the design effect of users that differ, :mod:`trimtab.stats.clustered`).
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
    ``required`` metrics (the plan's guarded ones) must pass before the rollout promotes: shown
    not worse than stable beyond ``margin``, a non-inferiority test; the others only need not
    to regress.

    ``tolerance`` is where a regression begins (rollback when shown worse than stable beyond
    it); ``margin`` is the non-inferiority margin the pass test must clear (None: the
    tolerance). They may differ: errors roll back on any credible rise (tolerance 0) and
    pass once shown within an absolute margin (0.4 percentage points by default), which a
    relative margin on a rare event would take far longer to show. A margin with an
    ``absolute`` part tests the difference of rates (score-type variance at the margin);
    a purely relative one tests their ratio.
    """

    metric: Metric
    direction: Direction = Direction.HIGHER_IS_WORSE
    tolerance: Tolerance = field(default_factory=Tolerance)
    required: bool = False
    margin: Tolerance | None = None
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
            if self.margin is not None and self.margin != self.tolerance:
                raise ValueError("latency's margin is its tolerance (on the quantile)")

    @property
    def pass_margin(self) -> Tolerance:
        """The non-inferiority margin the pass test clears."""
        return self.tolerance if self.margin is None else self.margin

    @property
    def name(self) -> str:
        if self.metric is Metric.LATENCY:
            return f"latency_p{round(self.quantile * 100, 3):g}"
        return str(self.metric)


ERROR_MARGIN = 0.004  # errors: promoted once shown at most 0.4 percentage points above stable
REFUSAL_MARGIN = 0.005  # refusals: at most 0.5 percentage points above stable

DEFAULT_METRICS: tuple[MetricSpec, ...] = (
    # Any credible rise in errors is a regression (a 2x rise is what that test is tuned for);
    # required: promotion waits until errors are shown at most 0.4 points above stable's.
    MetricSpec(
        Metric.ERROR_RATE,
        tolerance=Tolerance(relative=0.0),
        margin=Tolerance(absolute=ERROR_MARGIN),
        required=True,
        design_ratio=2.0,
        pass_design_n=4000.0,
    ),
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
    # Refusals (finish reason content_filter, or Anthropic's refusal): a rise of 10 % is a
    # regression; required: shown at most 0.5 points above stable's (a model that never
    # refuses shows it in ~1,500 canary requests).
    MetricSpec(
        Metric.REFUSAL_RATE,
        tolerance=Tolerance(relative=0.10),
        margin=Tolerance(absolute=REFUSAL_MARGIN),
        required=True,
        design_ratio=2.0,
    ),
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


# --- the evidence: one vectorised function per metric, for the controller and the simulation


@dataclass(frozen=True, slots=True)
class ArmArrays:
    """One arm's additive counters as arrays of shape ``(..., windows)``: what the tests
    read. ``latency_n`` counts the requests with a latency; ``tails`` maps a latency spec's
    name to the arm's requests above that spec's threshold (stable's reference for stable,
    the stretched one for the candidate).

    The controller builds one from its :class:`ArmStats` windows (:func:`arm_arrays`); the
    simulation builds them for many rollouts at once; both call :func:`evidence`.
    """

    n: FloatArray
    errors: FloatArray
    refusals: FloatArray
    feedback_n: FloatArray
    negative_feedback: FloatArray
    cost_sum: FloatArray
    cost_sq_sum: FloatArray
    latency_n: FloatArray
    tails: Mapping[str, FloatArray] = field(default_factory=dict)

    def scaled(self, factor: FloatArray) -> ArmArrays:
        """Every counter times ``factor`` (shape ``(F,)``): shape ``(F, ..., windows)``. The
        same estimates with more requests: what the data would be if the current rates
        held (for the canary requests a metric still needs)."""
        f = np.asarray(factor, dtype=np.float64).reshape((-1,) + (1,) * self.n.ndim)
        values = {name: f * getattr(self, name) for name in _COUNTERS}
        return ArmArrays(**values, tails={k: f * v for k, v in self.tails.items()})


_COUNTERS = (
    "n", "errors", "refusals", "feedback_n", "negative_feedback", "cost_sum", "cost_sq_sum",
    "latency_n",
)  # fmt: skip


def arm_arrays(windows: Sequence[ArmStats], tails: Mapping[str, FloatArray]) -> ArmArrays:
    """The counters of a sequence of windows, shape ``(windows,)``."""
    values = {name: np.array([float(getattr(w, name)) for w in windows]) for name in _COUNTERS[:-1]}
    return ArmArrays(**values, latency_n=_latency_counts(windows), tails=tails)


def _rate_pair(
    spec: MetricSpec, tol: Tolerance, kc: Any, nc: Any, ks: Any, ns: Any, d: Any = 1.0
) -> tuple[FloatArray, FloatArray]:
    """Both log e-values of a rate test at ``tol``: split of events (relative) or the
    difference of rates (absolute)."""
    if tol.absolute == 0.0:
        lp0, reg_mix, ok_mix = rate_mixtures(
            spec.direction, tol, design_ratio=spec.design_ratio, pass_ratio=spec.pass_ratio
        )
        return rate_evidence(
            kc, nc, ks, ns, log_psi0=lp0, regression_mixture=reg_mix, pass_mixture=ok_mix,
            dispersion=d,
        )  # fmt: skip
    return difference_evidence(
        kc, nc, ks, ns, sign=spec.direction.sign, coef=tol.coef(spec.direction),
        offset=tol.absolute, rho_regression=mixture_rho(spec.design_n, spec.alpha),
        rho_pass=mixture_rho(spec.pass_design_n, spec.alpha_pass),
        min_samples=spec.min_samples, dispersion=d,
    )  # fmt: skip


def evidence(
    spec: MetricSpec,
    stable: ArmArrays,
    candidate: ArmArrays,
    dispersion: Mapping[str, FloatArray] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """``(log_e_regression, log_e_pass)`` of one metric, shape ``(...)``.

    ``dispersion`` maps a rate metric's name to its design effect (``D >= 1``, shape
    ``(...)``, :func:`trimtab.stats.clustered.design_effect`): requests clustered by the
    sticky user weigh ``1 / D`` of independent ones.

    The regression test is run at ``spec.tolerance`` and the pass (non-inferiority) test at
    ``spec.pass_margin``; :func:`analyze` reads its verdicts from here, and so does the
    simulation (``bench/canary_sim.py``), for thousands of rollouts at once.
    """
    s, c = stable, candidate
    if spec.metric is Metric.LATENCY:
        k = (c.tails[spec.name], c.latency_n, s.tails[spec.name], s.latency_n)
        return _rate_pair(spec, Tolerance(), *k)
    if spec.metric is Metric.COST:

        def at(tol: Tolerance) -> tuple[FloatArray, FloatArray]:
            return mean_evidence(
                c.n, c.cost_sum, c.cost_sq_sum, s.n, s.cost_sum, s.cost_sq_sum,
                sign=spec.direction.sign, coef=tol.coef(spec.direction), offset=tol.absolute,
                rho_regression=mixture_rho(spec.design_n, spec.alpha),
                rho_pass=mixture_rho(spec.pass_design_n, spec.alpha_pass),
                min_samples=spec.min_samples,
            )  # fmt: skip

        reg, ok = at(spec.tolerance)
        if spec.pass_margin != spec.tolerance:
            _, ok = at(spec.pass_margin)
        return reg, ok
    if spec.metric is Metric.NEGATIVE_FEEDBACK_RATE:
        k = (c.negative_feedback, c.feedback_n, s.negative_feedback, s.feedback_n)
    elif spec.metric is Metric.ERROR_RATE:
        k = (c.errors, c.n, s.errors, s.n)
    else:
        k = (c.refusals, c.n, s.refusals, s.n)
    d = 1.0 if dispersion is None else dispersion.get(spec.name, 1.0)
    reg, ok = _rate_pair(spec, spec.tolerance, *k, d)
    if spec.pass_margin != spec.tolerance:
        _, ok = _rate_pair(spec, spec.pass_margin, *k, d)
    return reg, ok


def verdicts(
    spec: MetricSpec, log_e_regression: FloatArray, log_e_pass: FloatArray
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """``(regressed, passed)`` from :func:`evidence`; a regression outranks a pass."""
    regressed = np.asarray(log_e_regression >= math.log(1.0 / spec.alpha))
    passed = np.asarray(log_e_pass >= math.log(1.0 / spec.alpha_pass)) & ~regressed
    return regressed, passed


_GROWTH = np.geomspace(1.0, 1000.0, 241)[1:]  # 1.03x steps up to 1000x the data so far


def still_needed(
    spec: MetricSpec,
    stable: ArmArrays,
    candidate: ArmArrays,
    dispersion: Mapping[str, FloatArray] | None = None,
) -> float | None:
    """Canary requests the pass test still needs if the current estimates held (both arms
    growing in the proportions so far); None when even 1000 times the data would not pass
    (the estimate sits at or beyond the margin). A projection, not a promise."""
    n_c = float(np.sum(candidate.n))
    if n_c <= 0:
        return None
    _, ok = evidence(spec, stable.scaled(_GROWTH), candidate.scaled(_GROWTH), dispersion)
    hit = np.nonzero(np.asarray(ok) >= math.log(1.0 / spec.alpha_pass))[0]
    if hit.size == 0:
        return None
    return math.ceil(n_c * (float(_GROWTH[hit[0]]) - 1.0))


def pooled_quantile(
    count_above: Callable[[FloatArray], FloatArray],
    total: FloatArray,
    q: float,
    lo: FloatArray,
    hi: FloatArray,
) -> FloatArray:
    """The ``q`` quantile of the windows pooled, by bisection on the tail counts:
    ``count_above(t)`` (``t`` of shape ``(...)``) is the requests above ``t`` over all
    windows, ``total`` all of them, ``[lo, hi]`` brackets the answer. Vectorised, for the
    controller (one rollout) and the simulation (many)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        heavy = count_above(mid) > (1.0 - q) * total
        lo = np.where(heavy, mid, lo)
        hi = np.where(heavy, hi, mid)
    return hi


def _pooled_quantile(windows: Sequence[ArmStats], q: float) -> float | None:
    dists = [w.latency for w in windows if w.latency is not None and w.latency.count > 0]
    if not dists:
        return None
    if len(dists) == 1:
        return dists[0].quantile(q)
    total = np.asarray(sum(d.count for d in dists))
    values = [v for d in dists if (v := d.quantile(q)) is not None]

    def above(t: FloatArray) -> FloatArray:
        return np.asarray(sum(d.count_above(float(t)) for d in dists), dtype=np.float64)

    return float(pooled_quantile(above, total, q, np.asarray(min(values)), np.asarray(max(values))))


def _latency_reference(
    spec: MetricSpec, s_w: Sequence[ArmStats], references: Mapping[float, float] | None
) -> tuple[float, str]:
    reference = None if references is None else references.get(spec.quantile)
    if reference is not None:
        return reference, "reference fixed in advance"
    pooled = _pooled_quantile(s_w, spec.quantile)
    if pooled is not None:
        return pooled, "reference is stable's own quantile over the same windows"
    return math.inf, "no stable latencies yet"


def _tails(windows: Sequence[ArmStats], threshold: float) -> FloatArray:
    return np.array(
        [
            w.latency.count_above(threshold)
            if w.latency is not None and math.isfinite(threshold)
            else 0.0
            for w in windows
        ]
    )


def _latency_counts(windows: Sequence[ArmStats]) -> FloatArray:
    return np.array([0.0 if w.latency is None else w.latency.count for w in windows])


CLUSTERED = {Metric.ERROR_RATE: "errors", Metric.REFUSAL_RATE: "refusals"}


def unit_dispersion(
    stable: Sequence[ArmStats], candidate: Sequence[ArmStats], specs: Sequence[MetricSpec]
) -> dict[str, FloatArray]:
    """The design effect of the error and refusal tests from the windows' per-user counts
    (:func:`trimtab.stats.clustered.design_effect`); empty unless every window of both
    arms has them. A user seen in several windows is one unit across them."""
    if not all(w.units is not None for w in (*stable, *candidate)):
        return {}
    index: dict[tuple[int, str], int] = {}
    for arm, windows in enumerate((stable, candidate)):
        for w in windows:
            assert w.units is not None
            for key in w.units.keys:
                index.setdefault((arm, key), len(index))
    n_w, n_u = len(stable), len(index)
    n = np.zeros((n_w, n_u))
    events = {attr: np.zeros((n_w, n_u)) for attr in CLUSTERED.values()}
    rest_n = np.zeros((2, n_w))
    rest = {attr: np.zeros((2, n_w)) for attr in CLUSTERED.values()}
    for arm, windows in enumerate((stable, candidate)):
        for i, w in enumerate(windows):
            units = w.units
            assert units is not None
            cols = np.array([index[(arm, k)] for k in units.keys], dtype=np.int64)
            n[i, cols] = units.n
            rest_n[arm, i] = units.rest_n
            for attr in CLUSTERED.values():
                events[attr][i, cols] = getattr(units, attr)
                rest[attr][arm, i] = getattr(units, "rest_" + attr)
    on_candidate = np.zeros(n_u, dtype=bool)
    on_candidate[[j for (arm, _), j in index.items() if arm == 1]] = True
    out: dict[str, FloatArray] = {}
    for spec in specs:
        name = CLUSTERED.get(spec.metric)
        if name is not None:
            out[spec.name] = design_effect(events[name], n, on_candidate, rest[name], rest_n)
    return out


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

    Verdicts come from :func:`evidence`. Each result's estimate, interval and margin are
    those of the non-inferiority (pass) test; where the regression test runs at another
    tolerance, ``rollback`` has its own. ``needed`` is what a required metric that has not
    passed still needs (:func:`still_needed`).
    """
    s_w, c_w = _windows(stable), _windows(candidate)
    if len(s_w) != len(c_w) or not s_w:
        raise ValueError("stable and candidate need the same, nonzero number of windows")
    refs: dict[str, tuple[float, str]] = {}
    s_tails: dict[str, FloatArray] = {}
    c_tails: dict[str, FloatArray] = {}
    for spec in specs:
        if spec.metric is Metric.LATENCY:
            ref, note = _latency_reference(spec, s_w, latency_reference_ms)
            t_s, t_c = latency_thresholds(ref, spec.tolerance)
            refs[spec.name] = (ref, note)
            s_tails[spec.name], c_tails[spec.name] = _tails(s_w, t_s), _tails(c_w, t_c)
    s_arr, c_arr = arm_arrays(s_w, s_tails), arm_arrays(c_w, c_tails)
    dispersion = unit_dispersion(s_w, c_w, specs)
    out: list[MetricResult] = []
    for spec in specs:
        d = float(dispersion.get(spec.name, 1.0))
        le_reg, le_ok = evidence(spec, s_arr, c_arr, dispersion)
        reg, ok = (float(x) for x in (le_reg, le_ok))
        result = _interval(spec, spec.pass_margin, s_arr, c_arr, d)
        if spec.name in dispersion:
            clustered = (
                f"sticky users: fewer than {MIN_UNITS} per arm, no evidence yet"
                if d >= NO_EVIDENCE
                else f"sticky users: design effect {d:.3g}"
            )
            result = replace(
                result, note=f"{result.note}; {clustered}" if result.note else clustered
            )
        rollback = None
        if spec.pass_margin != spec.tolerance:
            r = _interval(spec, spec.tolerance, s_arr, c_arr, d)
            rollback = Interval(r.method, r.estimate_kind, r.estimate, r.lower, r.upper, r.margin)
        if spec.metric is Metric.LATENCY:
            ref, note = refs[spec.name]
            t_s, t_c = latency_thresholds(ref, spec.tolerance)
            result = replace(
                result,
                method="split-of-events mixture on tail counts (quantile)",
                stable_value=_pooled_quantile(s_w, spec.quantile),
                candidate_value=_pooled_quantile(c_w, spec.quantile),
                note=f"{note}; thresholds stable {t_s:.6g} ms, candidate {t_c:.6g} ms",
            )
        regressed, passed = verdicts(spec, le_reg, le_ok)
        verdict = (
            Verdict.REGRESSION if regressed else Verdict.PASS if passed else Verdict.INCONCLUSIVE
        )
        needed = None
        if spec.required and verdict is Verdict.INCONCLUSIVE:
            needed = still_needed(spec, s_arr, c_arr, dispersion)
        out.append(
            replace(
                result,
                verdict=verdict,
                log_e_regression=reg,
                log_e_pass=ok,
                threshold_regression=math.log(1.0 / spec.alpha),
                threshold_pass=math.log(1.0 / spec.alpha_pass),
                required=spec.required,
                needed=needed,
                rollback=rollback,
            )
        )
    return tuple(out)


def _interval(
    spec: MetricSpec, tol: Tolerance, s: ArmArrays, c: ArmArrays, d: float = 1.0
) -> MetricResult:
    """The comparison at ``tol`` with its confidence sequence (reporting; the verdict is
    :func:`evidence`'s)."""

    def rates(kc: Any, nc: Any, ks: Any, ns: Any, t: Tolerance) -> MetricResult:
        return compare_rates(
            spec.name, kc, nc, ks, ns, direction=spec.direction, tolerance=t,
            alpha=spec.alpha, alpha_pass=spec.alpha_pass, design_ratio=spec.design_ratio,
            pass_ratio=spec.pass_ratio, design_n=spec.design_n,
            pass_design_n=spec.pass_design_n, min_samples=spec.min_samples, dispersion=d,
        )  # fmt: skip

    if spec.metric is Metric.COST:
        return compare_means(
            spec.name, c.n, c.cost_sum, c.cost_sq_sum, s.n, s.cost_sum, s.cost_sq_sum,
            direction=spec.direction, tolerance=tol, alpha=spec.alpha,
            alpha_pass=spec.alpha_pass, design_n=spec.design_n,
            pass_design_n=spec.pass_design_n, min_samples=spec.min_samples,
        )  # fmt: skip
    if spec.metric is Metric.LATENCY:
        return rates(c.tails[spec.name], c.latency_n, s.tails[spec.name], s.latency_n, Tolerance())
    if spec.metric is Metric.NEGATIVE_FEEDBACK_RATE:
        return rates(c.negative_feedback, c.feedback_n, s.negative_feedback, s.feedback_n, tol)
    if spec.metric is Metric.ERROR_RATE:
        return rates(c.errors, c.n, s.errors, s.n, tol)
    return rates(c.refusals, c.n, s.refusals, s.n, tol)


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
    if r.n_candidate < 1 or r.estimate is None:
        return f"{head}: too little data to project"
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
