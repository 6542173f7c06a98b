"""Durations as people type them, shared by the API's parameters and the CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trimtab.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("0s", timedelta(0)),
    ],
)
def test_a_duration_is_read(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_a_duration_too_long_for_a_timedelta_is_the_longest_one() -> None:
    assert parse_duration("1000000000d") == timedelta.max


@pytest.mark.parametrize("text", ["", "15", "m", "1.5h", "1w", "-1h", " 1h", "1h ", "2026-12-01"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    assert parse_duration(text) is None
