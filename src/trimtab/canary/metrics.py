"""The metrics canary analysis judges, their tolerances and the default set."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from trimtab.stats.sequential import Direction, Tolerance

__all__ = [
    "DEFAULT_METRICS",
    "ERROR_MARGIN",
    "QUALITY_MARGIN",
    "REFUSAL_MARGIN",
    "Metric",
    "MetricSpec",
    "latency_thresholds",
]


class Metric(StrEnum):
    ERROR_RATE = "error_rate"
    REFUSAL_RATE = "refusal_rate"
    NEGATIVE_FEEDBACK_RATE = "negative_feedback_rate"
    LATENCY = "latency"
    COST = "cost"
    GUARDRAIL_RATE = "guardrail_rate"
    QUALITY_SCORE = "quality_score"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """How one metric is judged.

    ``alpha`` bounds the chance of ever calling a regression when the candidate is within
    the tolerance; ``alpha_pass`` the chance of ever calling a pass when it is not.
    ``design_ratio`` (rates, latency) is the rate ratio beyond the margin that the
    regression test detects fastest, and ``pass_ratio`` the same for the pass test (None:
    automatic); ``design_n`` / ``pass_design_n`` (cost) are the canary sample sizes at which
    the normal-mixture tests are tightest. ``quantile`` is the latency quantile compared.
    ``min_samples`` is what each arm needs before either test runs (for ``quality_score``:
    scored answers; below it the metric says it has too little data).
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
        for name, value in (("alpha", self.alpha), ("alpha_pass", self.alpha_pass)):
            if not 0.0 < value < 0.5:
                raise ValueError(f"{name} must be in (0, 0.5), not {value}")
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
QUALITY_MARGIN = 0.05  # online quality: a mean score (in [0, 1]) at most 0.05 below stable's

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
    # Guardrail violations (a request on which any check of the version's policy fired,
    # docs/guardrails.md): a rise of 10 % is a regression; guarded only (a candidate that
    # trips guardrails more rolls back, one that trips none has nothing to show).
    MetricSpec(Metric.GUARDRAIL_RATE, tolerance=Tolerance(relative=0.10), design_ratio=2.0),
    # The mean online score of the arm's scored answers (evals/online.py; an answer's scorers
    # averaged, so an answer is one observation): any credible drop is a regression, as for
    # errors; guarded only (it exists only where a suite scores the route online, and a
    # sample of a few percent of answers is slow to show non-inferiority), a plan may
    # require it: then promotion waits until it is shown at most 0.05 below stable's.
    # Nothing runs under 30 scored answers per arm (the plug-in variance needs them).
    MetricSpec(
        Metric.QUALITY_SCORE,
        direction=Direction.LOWER_IS_WORSE,
        tolerance=Tolerance(relative=0.0),
        margin=Tolerance(absolute=QUALITY_MARGIN),
        design_n=300.0,
        pass_design_n=1000.0,
        min_samples=30,
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
