"""Rollout plans: the stages traffic moves through, each with its minimums and maximum,
and how strictly each metric is judged."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trimtab.canary.metrics import DEFAULT_METRICS, MetricSpec
from trimtab.stats.sequential import Tolerance

METRIC_NAMES = tuple(spec.name for spec in DEFAULT_METRICS)
ABSOLUTE_MARGIN_METRICS = ("error_rate", "refusal_rate", "quality_score")


class Stage(BaseModel):
    """One step: `percent` of the route's traffic on the candidate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    percent: float = Field(gt=0, le=100)
    min_duration_s: float = Field(default=300, ge=0)
    min_canary_requests: int = Field(default=100, ge=0)
    # an inconclusive stage holds until then, and then pauses for a human
    max_duration_s: float = Field(default=3600, gt=0)


class MetricRule(BaseModel):
    """A plan's change to one metric's defaults (docs/canary.md has them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # how much worse than stable is still acceptable, relative: 0.2 = 20 % (both where a
    # regression begins and the margin promotion must be shown within)
    tolerance: float | None = Field(default=None, ge=0, le=10)
    # the non-inferiority margin in absolute terms, for rare events (error_rate,
    # refusal_rate): 0.004 = 0.4 percentage points above stable's rate; and for the mean
    # online score (quality_score, in [0, 1]): 0.02 = at most 0.02 below stable's
    margin: float | None = Field(default=None, ge=0, le=1)
    # whether it must pass before promotion (a guarded metric; otherwise it only must not
    # regress)
    required: bool | None = None


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: list[Stage] = Field(min_length=1)
    # by metric name: error_rate, latency_p95, latency_p50, cost, negative_feedback_rate,
    # refusal_rate, guardrail_rate, quality_score
    metrics: dict[str, MetricRule] = Field(default_factory=dict)
    # promote from any stage past its minimums once every required metric has passed,
    # without the stages left (they would add exposure, not evidence the plan asks for)
    promote_early: bool = False
    # scale the default tolerances and margins with the route's risk tier (TIER_SCALE);
    # a metric the plan sets itself is left as set
    scale_with_tier: bool = True
    # who is on the candidate (canary/assignment.py): "bucket", the callers whose bucket is
    # under the stage's percentage, so each stage reaches its share of callers (a caller
    # moves to the candidate at most once, never back); "first_seen", the version a caller
    # was first given, kept for the whole rollout (nobody's version changes, but returning
    # callers met at 1 % stay on stable, and the candidate's share of traffic lags the plan)
    assignment: Literal["bucket", "first_seen"] = "bucket"
    # adjust the error, refusal and guardrail tests for each user's own rate in the day
    # before the rollout (CUPED, its coefficient estimated from the rollout's users;
    # docs/canary.md, "Sticky users"): much faster when users' rates persist, and a history
    # that predicts less is weighted less (0.5 % false rollbacks in simulation when half
    # persistent, 0.0 % when fully), so on by default
    adjust_for_history: bool = True

    @model_validator(mode="after")
    def _increasing(self) -> Plan:
        percents = [s.percent for s in self.stages]
        if percents != sorted(set(percents)):
            raise ValueError("stage percentages must increase strictly")
        if percents[-1] != 100:
            raise ValueError("the last stage must send 100 % of traffic to the candidate")
        for name in self.metrics:
            if name not in METRIC_NAMES:
                raise ValueError(f"unknown metric '{name}': use one of {', '.join(METRIC_NAMES)}")
        for name, rule in self.metrics.items():
            if rule.margin is not None and name not in ABSOLUTE_MARGIN_METRICS:
                raise ValueError(
                    "an absolute margin is for rare events and scores "
                    f"({', '.join(ABSOLUTE_MARGIN_METRICS)}); {name} takes a relative tolerance"
                )
        for spec in self.specs():
            m = spec.pass_margin
            if spec.required and m.relative == 0 and m.absolute == 0:
                raise ValueError(
                    f"{spec.name} with a tolerance of 0 can never pass, so it cannot be required"
                )
        return self

    def for_tier(self, tier: int) -> Plan:
        """This plan for a route of risk tier ``tier``: each default tolerance and margin
        the plan does not set itself times ``TIER_SCALE[tier]`` (tier 2 keeps the
        defaults), written into ``metrics`` so the stored plan shows the rules judged by."""
        scale = TIER_SCALE[tier]
        if not self.scale_with_tier or scale == 1.0:
            return self
        metrics = dict(self.metrics)
        for spec in DEFAULT_METRICS:
            if spec.name in metrics:
                continue
            tolerance = spec.tolerance.relative
            margin = spec.pass_margin.absolute
            metrics[spec.name] = MetricRule(
                tolerance=round(tolerance * scale, 6) if tolerance > 0 else None,
                margin=round(margin * scale, 6) if margin > 0 else None,
            )
        return self.model_copy(update={"metrics": metrics})

    def specs(self) -> tuple[MetricSpec, ...]:
        """The metric specs this plan's rollouts are judged by: the defaults, changed by
        `metrics`."""
        out = []
        for spec in DEFAULT_METRICS:
            rule = self.metrics.get(spec.name)
            if rule is not None:
                changes: dict[str, object] = {}
                if rule.tolerance is not None:
                    changes["tolerance"] = Tolerance(relative=rule.tolerance)
                    changes["margin"] = None  # the tolerance is the margin too
                if rule.margin is not None:
                    relative = spec.pass_margin.relative if rule.tolerance is None else 0.0
                    changes["margin"] = Tolerance(relative=relative, absolute=rule.margin)
                if rule.required is not None:
                    changes["required"] = rule.required
                spec = dataclasses.replace(spec, **changes)  # type: ignore[arg-type]
            out.append(spec)
        return tuple(out)


# risk tier -> the factor on the default tolerances and margins: a tier-0 internal tool
# accepts twice the default's drift before it calls a regression, and needs a quarter of the
# canary requests to show non-inferiority (the requests go as 1 / margin^2); a tier-3 route
# judged on three quarters of it needs ~1.8 times as many
TIER_SCALE: dict[int, float] = {0: 2.0, 1: 1.5, 2: 1.0, 3: 0.75}

DEFAULT_PLAN = Plan(
    stages=[
        Stage(percent=1, min_duration_s=300, min_canary_requests=100),
        Stage(percent=5, min_duration_s=300, min_canary_requests=200),
        Stage(percent=25, min_duration_s=600, min_canary_requests=500),
        Stage(percent=50, min_duration_s=600, min_canary_requests=1000),
        Stage(percent=100, min_duration_s=600, min_canary_requests=1000),
    ]
)

# For routes of a few requests a minute (docs/canary.md, "Low-traffic routes"): larger
# first stages so evidence arrives at all, windows of hours, and decisions on what a low
# traffic route can show — errors within 2 points, p95 within 25 %; cost is guarded (it
# must not regress) but not required, refusals within 2 points.
LOW_TRAFFIC_PLAN = Plan(
    stages=[
        Stage(percent=10, min_duration_s=1800, min_canary_requests=20, max_duration_s=43_200),
        Stage(percent=50, min_duration_s=3600, min_canary_requests=100, max_duration_s=259_200),
        Stage(percent=100, min_duration_s=600, min_canary_requests=100),
    ],
    metrics={
        "error_rate": MetricRule(margin=0.02),
        "latency_p95": MetricRule(tolerance=0.25),
        "cost": MetricRule(tolerance=0.10, required=False),
        "refusal_rate": MetricRule(margin=0.02),
    },
    promote_early=True,
    scale_with_tier=False,
)

# the plans every install has, by the name a rollout names them with; the configuration's
# `rollouts.plans` adds to them (and may replace one)
BUILTIN_PLANS: dict[str, Plan] = {"default": DEFAULT_PLAN, "low-traffic": LOW_TRAFFIC_PLAN}
