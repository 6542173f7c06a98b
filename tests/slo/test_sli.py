"""What a rollup row counts towards each SLI; latency counted from sketch bins."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trimtab.slo.burn import Counts
from trimtab.slo.sli import guardrail_counts, latency_counts, status_counts, within
from trimtab.slo.spec import Sli
from trimtab.telemetry.sketch import from_bytes, new_sketch, to_bytes

AVAILABILITY = Sli("availability")


def test_availability_excludes_client_errors_and_disconnects() -> None:
    assert status_counts(AVAILABILITY, 200, 7) == Counts(7, 7)
    for status in (502, 503, 504, 500):  # provider error, cut stream, unavailable, timeout
        assert status_counts(AVAILABILITY, status, 3) == Counts(0, 3)
    for status in (400, 401, 404, 413, 429, 499):
        assert status_counts(AVAILABILITY, status, 3) == Counts(0, 0)


def test_guardrail_counts_the_requests_a_guardrail_fired_on_as_bad() -> None:
    assert guardrail_counts(200, 10, 3) == Counts(7, 10)
    assert guardrail_counts(200, 10, 0) == Counts(10, 10)
    assert guardrail_counts(502, 4, 1) == Counts(3, 4)  # a provider error is no violation
    # a blocked input (400) or answer (422) is bad; the caller's own 4xx is in neither count
    assert guardrail_counts(400, 5, 2) == Counts(0, 2)
    assert guardrail_counts(422, 1, 1) == Counts(0, 1)
    assert guardrail_counts(401, 6, 0) == Counts(0, 0)


def test_error_rate_by_class() -> None:
    timeout = Sli("error_rate", error_class="timeout")
    assert status_counts(timeout, 504, 2) == Counts(0, 2)
    assert status_counts(timeout, 502, 2) == Counts(2, 2)  # another class: good for this one
    assert status_counts(timeout, 200, 2) == Counts(2, 2)
    assert status_counts(timeout, 499, 2) == Counts(0, 0)
    limited = Sli("error_rate", error_class="rate_limited")
    assert status_counts(limited, 429, 2) == Counts(0, 2)  # a 4xx, but the class's own
    assert status_counts(limited, 400, 2) == Counts(0, 0)
    server = Sli("error_rate", error_class="server")
    assert [status_counts(server, s, 1).bad for s in (500, 502, 503, 504, 200)] == [1, 1, 1, 1, 0]


def test_latency_counts_answered_requests_within_the_threshold() -> None:
    sketch = new_sketch()
    for value in (10.0, 500.0, 1900.0, 2100.0, 9000.0):  # none within 1 % of 2,000
        sketch.add(value)
    sli = Sli("latency", threshold_ms=2000.0)
    stored = from_bytes(to_bytes(sketch))  # as the rollups hand it back
    assert latency_counts(sli, 200, stored) == Counts(3, 5)
    assert latency_counts(sli, 502, stored) == Counts(0, 5)  # failed: bad whatever its speed
    assert latency_counts(sli, 404, stored) == Counts(0, 0)
    zero = new_sketch()
    zero.add(0.0)
    assert within(zero, 1.0) == 1


@settings(max_examples=300)
@given(
    values=st.lists(st.floats(min_value=0.0, max_value=120_000.0), min_size=1, max_size=200),
    threshold=st.floats(min_value=1.0, max_value=100_000.0),
)
def test_within_is_exact_but_for_values_within_one_percent(
    values: list[float], threshold: float
) -> None:
    sketch = new_sketch()
    for v in values:
        sketch.add(v)
    got = within(from_bytes(to_bytes(sketch)), threshold)
    surely_in = sum(v <= threshold / 1.01 for v in values)
    maybe_in = sum(v <= threshold / 0.99 for v in values)
    assert surely_in <= got <= maybe_in
