"""Rate-limit scopes, counters and messages: the pure core."""

from __future__ import annotations

import pytest

from trimtab.config import LimitConfig
from trimtab.policy.limits import (
    LimitCheck,
    rate_checks,
    retry_seconds,
    rpm_message,
    tpm_message,
    tpm_retry_after,
)
from trimtab.policy.scopes import resolve_scope

VALUES: dict[str, str | None] = {"tenant": "acme", "key": "key_1", "model": "gpt-mock"}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("tenant:acme", "tenant:acme"),
        ("tenant:*", "tenant:acme"),
        ("tenant:globex", None),
        ("key:*", "key:key_1"),
        ("model:gpt-mock", "model:gpt-mock"),
        ("feature:*", None),  # the request has no feature
    ],
)
def test_resolve_scope(pattern: str, expected: str | None) -> None:
    assert resolve_scope(pattern, VALUES) == expected


def test_no_key_means_key_limits_do_not_apply() -> None:
    assert resolve_scope("key:*", {"key": None}) is None


def test_rate_checks_one_counter_per_scope_with_the_tightest_limit() -> None:
    limits = [
        LimitConfig(scope="tenant:acme", rpm=600, tpm=100_000),
        LimitConfig(scope="tenant:*", rpm=100),
        LimitConfig(scope="key:*", rpm=60),
        LimitConfig(scope="model:gpt-mock", tpm=50_000),
        LimitConfig(scope="model:other", tpm=1),
    ]
    rpm, tpm = rate_checks(limits, VALUES)
    assert rpm == [
        LimitCheck("rl:rpm:tenant:acme", "tenant:acme", "tenant:*", 100),
        LimitCheck("rl:rpm:key:key_1", "key:key_1", "key:*", 60),
    ]
    assert tpm == [
        LimitCheck("rl:tpm:tenant:acme", "tenant:acme", "tenant:acme", 100_000),
        LimitCheck("rl:tpm:model:gpt-mock", "model:gpt-mock", "model:gpt-mock", 50_000),
    ]


def test_retry_seconds_are_whole_and_at_least_one() -> None:
    assert retry_seconds(0.0) == "1"
    assert retry_seconds(0.2) == "1"
    assert retry_seconds(12.01) == "13"


def test_tpm_retry_after_bounds_the_decay() -> None:
    # 15 s into a minute, at the limit exactly: wait for the window to end
    assert tpm_retry_after(100, 100, now=615.0) == pytest.approx(45.0)
    # twice the limit: the window ends, then half of a minute more
    assert tpm_retry_after(200, 100, now=615.0) == pytest.approx(75.0)
    assert tpm_retry_after(50, 100, now=615.0) == 0.0


def test_messages_name_the_limit_and_scope() -> None:
    check = LimitCheck("rl:rpm:key:key_1", "key:key_1", "key:*", 60)
    assert rpm_message(check, "12") == (
        "rate limit exceeded: key:key_1 may send 60 requests per minute (limit 'key:*'); "
        "retry in 12 s"
    )
    check = LimitCheck("rl:tpm:model:m", "model:m", "model:m", 50_000)
    assert tpm_message(check, 50_012.4, "30") == (
        "token rate limit exceeded: model:m used 50012 of 50000 tokens per minute; retry in 30 s"
    )
