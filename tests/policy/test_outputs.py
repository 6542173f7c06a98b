"""The output-token estimator: the recent quantile of a model's answers, its cold start and
the request's cap."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trimtab.config import ConfigError, ReservationConfig, parse_config
from trimtab.policy.outputs import OutputEstimator, RecentQuantile, nearest_rank


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.integers(0, 5000), max_size=400),
    window=st.integers(1, 50),
    quantile=st.floats(0.01, 1.0),
)
def test_the_quantile_is_the_nearest_rank_of_the_last_window(
    values: list[int], window: int, quantile: float
) -> None:
    recent = RecentQuantile(window, quantile)
    for i, value in enumerate(values):
        recent.observe(value)
        kept = sorted(values[max(0, i + 1 - window) : i + 1])
        assert len(recent) == len(kept)
        # the smallest value with at least a share q of the kept values at or below it
        rank = next(r for r in range(1, len(kept) + 1) if r >= quantile * len(kept) - 1e-9)
        assert recent.value() == kept[rank - 1]
    if not values:
        assert recent.value() is None


def test_nearest_rank_is_not_moved_by_float_noise() -> None:
    assert 0.55 * 100 > 55 and nearest_rank(0.55, 100) == 55  # 55.00000000000001 in floats
    assert nearest_rank(0.95, 20) == 19  # the 19th of 20 is the p95
    assert nearest_rank(0.95, 200) == 190
    assert nearest_rank(0.95, 10) == 10  # with few answers: the largest
    assert nearest_rank(1.0, 7) == 7 and nearest_rank(0.01, 7) == 1


def test_p95_of_200_answers_leaves_ten_above_it() -> None:
    recent = RecentQuantile(200, 0.95)
    values = random.Random(3).sample(range(1000), 250)
    for value in values:
        recent.observe(value)
    kept = sorted(values[-200:])
    assert recent.value() == kept[189]
    assert sum(v > kept[189] for v in kept) == 10


def estimator(**fields: object) -> OutputEstimator:
    return OutputEstimator(ReservationConfig.model_validate(fields))


def test_a_cold_model_reserves_the_cap_or_the_default() -> None:
    est = estimator(min_samples=5, default_output_tokens=1024)
    assert est.tokens("m", None) == 1024
    assert est.tokens("m", 4000) == 4000  # the client's own cap, as before
    for _ in range(4):
        est.observe("m", 30)
    assert est.tokens("m", None) == 1024  # four answers are not enough
    est.observe("m", 30)
    assert est.tokens("m", None) == 30
    assert est.tokens("m", 4000) == 30  # what answers really are, below a generous cap
    assert est.tokens("m", 10) == 10  # and never above the cap


def test_models_learn_separately_and_old_answers_are_forgotten() -> None:
    est = estimator(min_samples=3, window=3, output_quantile=0.5)
    for value in (100, 300, 200):
        est.observe("long", value)
    for value in (5, 6, 7):
        est.observe("short", value)
    assert (est.tokens("long", None), est.tokens("short", None)) == (200, 6)
    for value in (10, 20, 30):
        est.observe("long", value)  # the window holds the last three only
    assert est.tokens("long", None) == 20
    assert est.samples("long") == 3 and est.samples("unseen") == 0


def test_a_negative_count_is_kept_as_zero() -> None:
    est = estimator(min_samples=1)
    est.observe("m", -4)
    assert est.tokens("m", None) == 0


def test_the_config_is_checked() -> None:
    base = {"providers": {"sim": {"kind": "simulator"}}}
    with pytest.raises(
        ConfigError, match=re.escape("min_samples (50) must not exceed window (20)")
    ):
        parse_config({**base, "reservation": {"window": 20, "min_samples": 50}}, "x.yaml")
    with pytest.raises(ConfigError, match="output_quantile"):
        parse_config({**base, "reservation": {"output_quantile": 1.5}}, "x.yaml")
    with pytest.raises(ConfigError, match="quantil"):
        parse_config({**base, "reservation": {"quantile": 0.9}}, "x.yaml")  # a typo
    parsed = parse_config({**base, "reservation": {"min_samples": 5}}, "x.yaml").reservation
    assert (parsed.output_quantile, parsed.window, parsed.min_samples) == (0.95, 200, 5)
    assert parsed.default_output_tokens == 1024
