"""Latency sketches: the storage form round-trips and merged sketches keep 1 % accuracy."""

from __future__ import annotations

import math
import random

from ddsketch import DDSketch
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from ddsketch.pb.proto import DDSketchProto
from hypothesis import given, settings
from hypothesis import strategies as st

from trimtab.telemetry.sketch import RELATIVE_ACCURACY, from_bytes, new_sketch, quantile, to_bytes

QUANTILES = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)
# DDSketch's guarantee is |estimate - x| <= 1 % of x; allow for float rounding on top of it
TOLERANCE = RELATIVE_ACCURACY * (1 + 1e-9)


def exact_quantile(ordered: list[float], q: float) -> float:
    """The exact q-quantile: numpy.quantile(values, q, method="lower").

    DDSketch answers with the element of rank floor(q * (n - 1)), which is numpy's "lower"
    method; numpy's default linear interpolation can fall between two far-apart neighbours,
    where no rank-based sketch promises a relative error. numpy is not a dependency of the
    project, so the one line it would compute is written out here.
    """
    return ordered[math.floor(q * (len(ordered) - 1))]


def sketch_of(values: list[float]) -> DDSketch:
    sketch = new_sketch()
    for v in values:
        sketch.add(v)
    return sketch


def merged_through_storage(parts: list[list[float]]) -> DDSketch:
    """Sketch each part, store it, read it back and merge, as the rollup store does."""
    total = new_sketch()
    for part in parts:
        stored = from_bytes(to_bytes(sketch_of(part)))
        if stored.count:
            total.merge(stored)
    return total


def assert_within_accuracy(sketch: DDSketch, values: list[float]) -> None:
    ordered = sorted(values)
    assert sketch.count == len(values)
    for q in QUANTILES:
        exact = exact_quantile(ordered, q)
        estimate = quantile(sketch, q)
        assert estimate is not None
        assert abs(estimate - exact) <= TOLERANCE * exact, (q, exact, estimate)


def assert_same_quantiles(back: DDSketch, original: DDSketch) -> None:
    """The same bins give the same quantiles. The protobuf form stores gamma, from which the
    read-back mapping recomputes its multiplier: equal keys, values equal to ~1e-15."""
    for q in QUANTILES:
        a, b = quantile(back, q), quantile(original, q)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert math.isclose(a, b, rel_tol=1e-12), (q, a, b)


# -- storage form ------------------------------------------------------------------------


def test_empty_sketch_round_trips_and_has_no_quantile() -> None:
    back = from_bytes(to_bytes(new_sketch()))
    assert back.count == 0
    assert quantile(back, 0.5) is None
    assert quantile(new_sketch(), 0.99) is None


def test_round_trip_keeps_count_and_quantiles() -> None:
    sketch = sketch_of([1.0, 2.5, 2.5, 40.0, 1234.5, 0.25])
    raw = to_bytes(sketch)
    assert isinstance(raw, bytes)
    back = from_bytes(raw)
    # the storage form is stable: re-encoding what was read gives the same bytes
    assert to_bytes(back) == raw
    assert back.count == sketch.count
    assert_same_quantiles(back, sketch)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False), max_size=200))
def test_round_trip_property(values: list[float]) -> None:
    sketch = sketch_of(values)
    back = from_bytes(to_bytes(sketch))
    assert back.count == len(values)
    assert_same_quantiles(back, sketch)


def test_merging_a_read_back_sketch_into_an_empty_one() -> None:
    total = new_sketch()
    total.merge(from_bytes(to_bytes(sketch_of([3.0, 4.0]))))
    assert total.count == 2
    assert quantile(total, 0.0) is not None


# -- accuracy ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=300,
    ),
    st.integers(min_value=1, max_value=12),
)
def test_merged_sketches_within_one_percent(values: list[float], pieces: int) -> None:
    parts = [values[i::pieces] for i in range(pieces)]
    assert_within_accuracy(merged_through_storage(parts), values)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False), st.integers(1, 50))
def test_repeated_value_within_one_percent(value: float, n: int) -> None:
    assert_within_accuracy(merged_through_storage([[value] * n]), [value] * n)


def test_ten_thousand_lognormal_latencies_over_sixty_minutes() -> None:
    rng = random.Random(20240613)
    # median ~ 400 ms with a heavy tail, like LLM calls
    latencies = [rng.lognormvariate(math.log(400.0), 0.9) for _ in range(10_000)]
    minutes: list[list[float]] = [[] for _ in range(60)]
    for value in latencies:
        minutes[rng.randrange(60)].append(value)
    assert sum(len(m) for m in minutes) == 10_000
    merged = merged_through_storage(minutes)
    assert_within_accuracy(merged, latencies)
    ordered = sorted(latencies)
    for q in (0.5, 0.95, 0.99):
        exact = exact_quantile(ordered, q)
        assert math.isclose(quantile(merged, q) or 0.0, exact, rel_tol=TOLERANCE)


# -- the stored message: DDSketch's own, without its empty bins --------------------------


def test_stored_form_holds_only_the_non_empty_bins() -> None:
    """ddsketch's writer stores every allocated bin (at least 128 doubles per store, about
    1 KiB for one value); this one the range from the lowest to the highest filled bin."""
    assert len(to_bytes(sketch_of([100.0]))) < 64
    spread = sketch_of([10.0, 11.0, 12.0])  # keys a few bins apart
    message = DDSketchMessage()
    message.ParseFromString(to_bytes(spread))
    counts = list(message.positiveValues.contiguousBinCounts)
    assert counts[0] == counts[-1] == 1.0
    assert sum(counts) == 3.0
    assert not message.negativeValues.contiguousBinCounts


@settings(max_examples=150, deadline=None)
@given(st.lists(st.just(0.0) | st.floats(min_value=1e-6, max_value=1e9), max_size=200))
def test_ddsketch_reads_what_is_stored_and_the_reverse(values: list[float]) -> None:
    """Rows written before this reader (ddsketch's message, zeros included) read the same,
    and ddsketch's own reader reads what is written now: one format, two writers."""
    sketch = sketch_of(values)
    theirs = bytes(DDSketchProto.to_proto(sketch).SerializeToString())  # type: ignore[no-untyped-call]
    assert_same_quantiles(from_bytes(theirs), sketch)
    assert from_bytes(theirs).count == len(values)
    message = DDSketchMessage()
    message.ParseFromString(to_bytes(sketch))
    by_ddsketch = DDSketchProto.from_proto(message)  # type: ignore[no-untyped-call]
    assert by_ddsketch.count == len(values)
    assert_same_quantiles(by_ddsketch, sketch)


def test_a_read_back_sketch_keeps_growing_and_merging() -> None:
    """The stores built from a message take new values on either side of their bins."""
    back = from_bytes(to_bytes(sketch_of([50.0, 60.0])))
    for value in (0.5, 5_000.0, 55.0, 0.0):
        back.add(value)
    other = from_bytes(to_bytes(sketch_of([1e-3, 1e6])))
    back.merge(other)
    expected = sketch_of([50.0, 60.0, 0.5, 5_000.0, 55.0, 0.0, 1e-3, 1e6])
    assert back.count == expected.count == 8
    assert_same_quantiles(back, expected)
