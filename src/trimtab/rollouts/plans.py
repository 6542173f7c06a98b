"""Rollout plans: the stages traffic moves through, each with its minimums and maximum."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Stage(BaseModel):
    """One step: `percent` of the route's traffic on the candidate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    percent: float = Field(gt=0, le=100)
    min_duration_s: float = Field(default=300, ge=0)
    min_canary_requests: int = Field(default=100, ge=0)
    # an inconclusive stage holds until then, and then pauses for a human
    max_duration_s: float = Field(default=3600, gt=0)


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _increasing(self) -> Plan:
        percents = [s.percent for s in self.stages]
        if percents != sorted(set(percents)):
            raise ValueError("stage percentages must increase strictly")
        if percents[-1] != 100:
            raise ValueError("the last stage must send 100 % of traffic to the candidate")
        return self


DEFAULT_PLAN = Plan(
    stages=[
        Stage(percent=1, min_duration_s=300, min_canary_requests=100),
        Stage(percent=5, min_duration_s=300, min_canary_requests=200),
        Stage(percent=25, min_duration_s=600, min_canary_requests=500),
        Stage(percent=50, min_duration_s=600, min_canary_requests=1000),
        Stage(percent=100, min_duration_s=600, min_canary_requests=1000),
    ]
)
