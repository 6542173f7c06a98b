"""slo/sketch_counts.py: a stored sketch's count and its values within each threshold,
read from its protobuf bytes, equal to what the DDSketch gives (`sketch.count`,
`sli.within`); and `Tally`'s per-group sums of many messages equal to summing each
message's counts, on the fast path (whole-number bins) and on every message it leaves
to `Thresholds.counts` (other mappings, interpolation, sparse or negative bins,
fractional weights, unknown or repeated fields, truncated bytes)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from ddsketch import DDSketch
from ddsketch.mapping import LinearlyInterpolatedMapping
from ddsketch.pb.ddsketch_pb2 import DDSketch as SketchMessage
from ddsketch.pb.proto import DDSketchProto
from google.protobuf.message import DecodeError

from trimtab.slo.sketch_counts import Tally, Thresholds, plain
from trimtab.slo.sli import within
from trimtab.telemetry.sketch import from_bytes, new_sketch, to_bytes

# below the mapping's least value, inside, between and above the values
THRESHOLDS = [0.0, 1e-12, 0.0015, 0.01, 0.3, 80.0, 99.5, 500.0, 1000.0, 2480.0, 1e9]


def _sketch(rng: random.Random, n: int, low: float, high: float) -> DDSketch:
    s = new_sketch()
    for _ in range(n):
        s.add(rng.choice((0.0,) * 1 + (rng.uniform(low, high),) * 9))
    return s


def _expected(raw: bytes) -> tuple[int, list[int]]:
    sketch = from_bytes(raw)
    return int(sketch.count), [within(sketch, t) for t in THRESHOLDS]


def _sketches(seed: int) -> list[bytes]:
    """Minute-like and merged hour-like sketches of latencies and costs, empty ones."""
    rng = random.Random(seed)
    out = [to_bytes(new_sketch())]
    for _ in range(60):
        low, high = rng.choice(((80.0, 2480.0), (0.001, 0.031), (1.0, 30_000.0)))
        s = _sketch(rng, rng.randint(1, 50), low, high)
        out.append(to_bytes(s))
        if rng.random() < 0.3:
            s.merge(_sketch(rng, rng.randint(1, 200), low, high))
            out.append(to_bytes(s))
    return out


def _tallied(raws: list[bytes], groups: list[int]) -> dict[int, tuple[int, list[int]]]:
    tally = Tally(Thresholds(THRESHOLDS))
    for g, raw in zip(groups, raws, strict=True):
        tally.add(g, raw)
    return tally.totals()


def _summed(raws: list[bytes], groups: list[int]) -> dict[int, tuple[int, list[int]]]:
    out: dict[int, tuple[int, list[int]]] = {}
    for g, raw in zip(groups, raws, strict=True):
        count, below = _expected(raw)
        c, b = out.get(g, (0, [0] * len(THRESHOLDS)))
        out[g] = (c + count, [x + y for x, y in zip(b, below, strict=True)])
    return out


def test_counts_are_the_sketchs_count_and_within_at_every_threshold() -> None:
    reader = Thresholds(THRESHOLDS)
    for raw in _sketches(14):
        assert reader.counts(raw) == _expected(raw)


def test_a_tally_of_sketches_sums_each_ones_counts_per_group() -> None:
    raws = _sketches(15)
    groups = [random.Random(3).randrange(7) for _ in raws]
    assert _tallied(raws, groups) == _summed(raws, groups)
    assert all(plain(raw) is not None for raw in raws)  # all on the fast path


def _other_forms(rng: random.Random) -> list[bytes]:
    """Messages the fast path leaves to Thresholds.counts, or a batch it cannot sum
    exactly."""
    negative = _sketch(rng, 30, 10.0, 900.0)
    negative.add(-5.0)
    negative.add(-700.0)
    other_accuracy = DDSketch(relative_accuracy=0.05)
    interpolated = DDSketch.__new__(DDSketch)
    from ddsketch.ddsketch import BaseDDSketch
    from ddsketch.store import DenseStore

    BaseDDSketch.__init__(
        interpolated,
        mapping=LinearlyInterpolatedMapping(0.01),
        store=DenseStore(),
        negative_store=DenseStore(),
        zero_count=0.0,
    )
    for v in (12.0, 150.0, 990.0, 2000.0):
        other_accuracy.add(v)
        interpolated.add(v)
    sparse = SketchMessage()
    sparse.ParseFromString(to_bytes(_sketch(rng, 20, 80.0, 2480.0)))
    sparse.positiveValues.binCounts[300] = 2.0  # ddsketch's sparse form beside the bins
    ddsketch_own = DDSketchProto.to_proto(_sketch(rng, 40, 80.0, 2480.0))  # type: ignore[no-untyped-call]
    unknown = to_bytes(_sketch(rng, 5, 80.0, 2480.0)) + b"\x28\x07"  # field 5, varint
    repeated = to_bytes(_sketch(rng, 5, 80.0, 2480.0)) * 2  # protobuf merges the two
    return [
        to_bytes(negative),
        to_bytes(other_accuracy),
        to_bytes(interpolated),
        sparse.SerializeToString(),
        ddsketch_own.SerializeToString(),
        unknown,
        repeated,
    ]


def test_other_forms_are_counted_as_the_sketch_reads_them() -> None:
    rng = random.Random(16)
    others = _other_forms(rng)
    raws = _sketches(17) + others
    rng.shuffle(raws)
    groups = [i % 5 for i in range(len(raws))]
    assert _tallied(raws, groups) == _summed(raws, groups)
    reader = Thresholds(THRESHOLDS)
    for raw in others:
        assert reader.counts(raw) == _expected(raw)
    # fields in another order than protobuf writes them: the same counts, fast or not
    raw = to_bytes(_sketch(rng, 30, 80.0, 2480.0))
    reordered = _reversed_fields(raw)
    assert reordered != raw and plain(reordered) is not None
    assert _tallied([reordered], [0]) == _summed([raw], [0])


def _reversed_fields(raw: bytes) -> bytes:
    """The message with its fields serialized one by one, the last first."""
    message: Any = SketchMessage()
    message.ParseFromString(raw)
    fields = []
    for name in ("mapping", "positiveValues", "negativeValues"):
        one: Any = SketchMessage()
        getattr(one, name).CopyFrom(getattr(message, name))
        fields.append(bytes(one.SerializeToString()))
    fields.append(bytes(SketchMessage(zeroCount=message.zeroCount).SerializeToString()))
    return b"".join(reversed(fields))


def test_fractional_weights_are_summed_message_by_message() -> None:
    # a batch with bins that are not whole numbers: the sums in another order could
    # round otherwise, so each message is counted as Thresholds.counts counts it
    s = new_sketch()
    for v in (90.0, 400.0, 400.0, 1800.0):
        s.add(v, 0.1)
    raws = [*_sketches(18)[:10], to_bytes(s), to_bytes(s)]
    groups = [0] * len(raws)
    assert _tallied(raws, groups) == _summed(raws, groups)


def _one_bin(count: float) -> bytes:
    """A message of one bin holding `count` (DDSketch adds only positive weights)."""
    message: Any = SketchMessage()
    message.ParseFromString(to_bytes(_sketch(random.Random(1), 1, 100.0, 100.0)))
    del message.positiveValues.contiguousBinCounts[:]
    message.positiveValues.contiguousBinCounts.append(count)
    return bytes(message.SerializeToString())


def test_sums_a_double_would_round_are_summed_message_by_message() -> None:
    # summed after a huge count, a message's bins would round (2^50 + 0.99999... is
    # 2^50 + 1, 2^53 + 1 is 2^53): such batches are counted message by message
    tenths = new_sketch()
    for _ in range(10):
        tenths.add(100.0, 0.1)  # one bin of 0.9999999999999999: int() of it is 0
    one = _one_bin(1.0)
    for raws, second in (
        ([_one_bin(2.0**50), to_bytes(tenths)], 0),  # fractional
        ([_one_bin(2.0**53), one], 1),  # whole, but beyond what a double counts exactly
        ([_one_bin(2.0**53), one, _one_bin(-(2.0**52))], 1),  # the same, a negative bin
    ):
        groups = list(range(len(raws)))
        assert _tallied(raws, groups) == _summed(raws, groups)
        assert _summed(raws, groups)[1][0] == second


def test_a_truncated_message_fails_as_protobuf_says() -> None:
    raw = to_bytes(_sketch(random.Random(19), 20, 80.0, 2480.0))
    assert plain(raw[:-3]) is None
    with pytest.raises(DecodeError):
        Tally(Thresholds(THRESHOLDS)).add(0, raw[:-3])
