"""Pure pieces of rollouts: plans, gates, sticky assignment."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from trimtab.canary.assignment import bucket, on_candidate, sticky_key
from trimtab.canary.gates import Attestation, missing_evidence
from trimtab.canary.metrics import DEFAULT_METRICS, ERROR_MARGIN, REFUSAL_MARGIN
from trimtab.canary.plans import (
    BUILTIN_PLANS,
    DEFAULT_PLAN,
    LOW_TRAFFIC_PLAN,
    TIER_SCALE,
    Plan,
    Stage,
)
from trimtab.stats.sequential import Tolerance


def test_default_plan() -> None:
    assert [s.percent for s in DEFAULT_PLAN.stages] == [1, 5, 25, 50, 100]


@pytest.mark.parametrize("percents", [[5, 1, 100], [1, 1, 100], [1, 50]])
def test_bad_plans_are_refused(percents: list[float]) -> None:
    with pytest.raises(ValidationError):
        Plan(stages=[Stage(percent=p) for p in percents])


def test_a_plan_changes_metric_tolerances_and_what_is_required() -> None:
    assert DEFAULT_PLAN.specs() == DEFAULT_METRICS
    plan = Plan.model_validate(
        {
            "stages": [Stage(percent=100)],
            "metrics": {
                "latency_p95": {"tolerance": 0.3},
                "negative_feedback_rate": {"required": True},
            },
        }
    )
    specs = {s.name: s for s in plan.specs()}
    assert specs["latency_p95"].tolerance.relative == 0.3 and specs["latency_p95"].required
    assert specs["negative_feedback_rate"].required
    assert specs["cost"] == next(s for s in DEFAULT_METRICS if s.name == "cost")


def test_errors_and_refusals_are_guarded_with_absolute_margins_a_plan_can_change() -> None:
    specs = {s.name: s for s in DEFAULT_PLAN.specs()}
    guarded = {name for name, s in specs.items() if s.required}
    assert guarded == {"error_rate", "refusal_rate", "latency_p95", "cost"}
    err = specs["error_rate"]
    # any credible rise rolls back; promotion needs errors within 0.4 points of stable's
    assert err.tolerance == Tolerance(relative=0.0)
    assert err.pass_margin == Tolerance(absolute=0.004)
    plan = Plan.model_validate(
        {
            "stages": [Stage(percent=100)],
            "metrics": {"error_rate": {"margin": 0.002}, "refusal_rate": {"tolerance": 0.2}},
        }
    )
    changed = {s.name: s for s in plan.specs()}
    assert changed["error_rate"].pass_margin == Tolerance(absolute=0.002)
    assert changed["error_rate"].tolerance == err.tolerance
    # a relative tolerance is the margin too
    assert changed["refusal_rate"].pass_margin == Tolerance(relative=0.2)


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (
            {"latency": {}},
            "unknown metric .latency.: use one of error_rate, latency_p95, latency_p50",
        ),
        ({"error_rate": {"tolerance": 0}}, "error_rate with a tolerance of 0 can never pass"),
        (
            {"negative_feedback_rate": {"required": True, "tolerance": 0}},
            "negative_feedback_rate with a tolerance of 0 can never pass",
        ),
        ({"cost": {"margin": 0.01}}, "an absolute margin is for rare events"),
        ({"cost": {"tolerance": -1}}, "greater than or equal to 0"),
        ({"cost": {"tolerence": 1}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_metric_rules_are_refused(metrics: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Plan(stages=[Stage(percent=100)], metrics=metrics)  # type: ignore[arg-type]


@given(st.text(min_size=1), st.text(min_size=1))
def test_bucket_is_stable_and_in_range(rollout: str, key: str) -> None:
    assert bucket(rollout, key) == bucket(rollout, key)
    assert 0 <= bucket(rollout, key) < 10_000


def test_split_is_close_to_the_percentage_and_monotonic() -> None:
    keys = [f"user:{i}" for i in range(20_000)]
    for percent in (1, 5, 25, 50):
        share = sum(on_candidate("r1", k, percent) for k in keys) / len(keys)
        assert abs(share - percent / 100) < 0.01
    # a caller on the candidate at 5 % is on it at every wider stage
    assert all(on_candidate("r1", k, 25) for k in keys if on_candidate("r1", k, 5))
    assert all(on_candidate("r1", k, 100) for k in keys)


def test_sticky_key_prefers_user_then_session() -> None:
    assert sticky_key("u", "s", "r") == "user:u"
    assert sticky_key(None, "s", "r") == "session:s"
    assert sticky_key(None, None, "r") == "request:r"


def att(kind: str, result: str = "pass", by: str = "bob") -> Attestation:
    return Attestation(kind, result, by)  # type: ignore[arg-type]


def test_tier_0_needs_nothing() -> None:
    assert missing_evidence(0, "alice", [], has_message=False) == []


def test_tier_1_needs_a_changelog() -> None:
    assert missing_evidence(1, "alice", [], has_message=False)
    assert missing_evidence(1, "alice", [], has_message=True) == []
    assert missing_evidence(1, "alice", [att("changelog")], has_message=False) == []


def test_tier_2_needs_eval_and_an_approval_by_someone_else() -> None:
    missing = missing_evidence(2, "alice", [att("approval", by="alice")], has_message=True)
    assert missing == [
        "a passing eval attestation",
        "an approval by someone other than the author (alice)",
    ]
    assert missing_evidence(2, "alice", [att("eval"), att("approval")], has_message=True) == []
    failed = missing_evidence(2, "alice", [att("eval"), att("eval", "fail"), att("approval")], True)
    assert failed == ["a passing eval attestation (the latest one failed)"]


def test_tier_3_also_needs_red_team() -> None:
    ok = [att("eval"), att("approval"), att("redteam")]
    assert missing_evidence(3, "alice", ok, has_message=True) == []
    assert missing_evidence(3, "alice", ok[:2], has_message=True) == ["a red-team sign-off"]


def test_a_plan_for_a_risk_tier_scales_the_defaults_it_does_not_set() -> None:
    plan = Plan.model_validate(
        {"stages": [Stage(percent=100)], "metrics": {"latency_p95": {"tolerance": 0.3}}}
    )
    assert plan.for_tier(2) is plan  # tier 2 judges by the defaults
    for tier, scale in TIER_SCALE.items():
        specs = {s.name: s for s in plan.for_tier(tier).specs()}
        assert specs["latency_p95"].tolerance.relative == 0.3  # the plan's own rule is kept
        assert specs["error_rate"].tolerance.relative == 0.0  # any credible rise still rolls back
        assert specs["error_rate"].pass_margin.absolute == pytest.approx(ERROR_MARGIN * scale)
        assert specs["cost"].tolerance.relative == pytest.approx(0.05 * scale)
        assert specs["refusal_rate"].pass_margin.absolute == pytest.approx(REFUSAL_MARGIN * scale)
        assert [s.required for s in specs.values()] == [s.required for s in DEFAULT_METRICS]
    assert TIER_SCALE[0] > TIER_SCALE[1] > TIER_SCALE[2] == 1.0 > TIER_SCALE[3]
    fixed = plan.model_copy(update={"scale_with_tier": False})
    assert fixed.for_tier(0) is fixed


def test_the_builtin_plans() -> None:
    assert BUILTIN_PLANS["default"] is DEFAULT_PLAN
    low = BUILTIN_PLANS["low-traffic"]
    assert low is LOW_TRAFFIC_PLAN and low.promote_early and not low.scale_with_tier
    assert [s.percent for s in low.stages] == [10, 50, 100]
    specs = {s.name: s for s in low.specs()}
    assert specs["error_rate"].required and specs["error_rate"].pass_margin.absolute == 0.02
    assert not specs["cost"].required  # guarded only: it must not regress


def test_a_missing_run_backed_eval_is_named_with_what_it_lacks() -> None:
    problems = ("the route has no eval suite tagged 'safety'",)
    missing = missing_evidence(2, "ana", [], has_message=True, eval_problems=problems)
    assert missing[0] == (
        "a passing eval attestation written by `trimtab eval run SUITE --gate` "
        "(the route has no eval suite tagged 'safety')"
    )
    # below tier 2 there are none, and the words are as before
    assert missing_evidence(2, "ana", [], has_message=True)[0] == "a passing eval attestation"
