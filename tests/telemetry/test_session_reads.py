"""The session reads' plan (telemetry/session_reads.py): the minute, hour and day ranges
cover the range exactly once, and a span is taken whole only when aligned and unmarked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from trimtab.telemetry.hourly import DAY, HOUR
from trimtab.telemetry.session_reads import plan

BASE = datetime(2026, 11, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_a_month_is_days_and_its_edges() -> None:
    start = BASE + timedelta(hours=5, minutes=17)
    end = BASE + timedelta(days=3, hours=2)
    minutes, hours, days = plan(start, end, {1: {BASE + DAY + HOUR * 2}, 24: {BASE + DAY}})
    assert minutes == [
        (start, BASE + timedelta(hours=6)),
        (BASE + DAY + HOUR * 2, BASE + DAY + HOUR * 3),  # the marked hour of the marked day
    ]
    assert hours == [
        (BASE + timedelta(hours=6), BASE + DAY + HOUR * 2),  # the marked day's first hours
        (BASE + DAY + HOUR * 3, BASE + 2 * DAY),
        (BASE + 3 * DAY, end),  # the last day is not whole
    ]
    assert days == [(BASE + 2 * DAY, BASE + 3 * DAY)]


@given(
    st.integers(0, 5 * 24 * 60),
    st.integers(0, 5 * 24 * 60),
    st.sets(st.integers(0, 5 * 24), max_size=20),
    st.sets(st.integers(0, 5), max_size=3),
)
def test_the_plan_covers_the_range_once(
    a: int, length: int, hours: set[int], days: set[int]
) -> None:
    start = BASE + a * MINUTE
    end = start + length * MINUTE
    dirty = {1: {BASE + h * HOUR for h in hours}, 24: {BASE + d * DAY for d in days}}
    minutes, hour_ranges, day_ranges = plan(start, end, dirty)
    covered: list[tuple[datetime, datetime]] = sorted(minutes + hour_ranges + day_ranges)
    at = start
    for x, y in covered:
        assert x == at and x < y
        at = y
    assert at == max(start, end)
    for x, y in day_ranges:
        for d in range(int((y - x) / DAY)):
            day = x + d * DAY
            assert day == day.replace(hour=0) and day not in dirty[24]
    for x, y in hour_ranges:
        for h in range(int((y - x) / HOUR)):
            assert x + h * HOUR not in dirty[1]
