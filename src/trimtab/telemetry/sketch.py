"""Mergeable latency sketches (DDSketch, 1 % relative accuracy) and their storage form.

The storage form is DDSketch's own protobuf message, read and written here without
ddsketch's `DDSketchProto`: that one adds a stored bin at a time (about 0.4 ms for a
sketch of a minute's latencies, twice per rollup merge) and stores every allocated bin,
zeros included. Here the bins between the lowest and the highest non-empty one are copied
in one go, and only those are written: the same message, readable by any DDSketch.
"""

from __future__ import annotations

from typing import Any

from ddsketch import DDSketch
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from ddsketch.pb.ddsketch_pb2 import IndexMapping
from ddsketch.pb.ddsketch_pb2 import Store as StoreMessage
from ddsketch.pb.proto import KeyMappingProto
from ddsketch.store import DenseStore

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
_NONE: int = IndexMapping.NONE  # type: ignore[attr-defined]  # logarithmic, no interpolation


def new_sketch() -> DDSketch:
    return DDSketch(relative_accuracy=RELATIVE_ACCURACY)


def to_bytes(sketch: DDSketch) -> bytes:
    """The sketch as DDSketch's protobuf message, its stores cut to their non-empty bins."""
    mapping = sketch._mapping
    message = DDSketchMessage(
        mapping=KeyMappingProto.to_proto(mapping),  # type: ignore[no-untyped-call]
        positiveValues=_store_message(sketch._store),
        negativeValues=_store_message(sketch._negative_store),
        zeroCount=sketch._zero_count,
    )
    return bytes(message.SerializeToString())


def from_bytes(raw: bytes) -> DDSketch:
    """A sketch from its protobuf message (as written by `to_bytes` or by ddsketch itself).

    As with ddsketch's reader, the message holds no min, max or sum: a sketch read back
    has only its bins, which is what quantiles and merges use."""
    message = DDSketchMessage()
    message.ParseFromString(raw)
    mapping = message.mapping
    if (
        mapping.interpolation == _NONE
        and mapping.gamma == _MAPPING.gamma
        and mapping.indexOffset == _MAPPING._offset
    ):
        key_mapping = _MAPPING  # the one every sketch here uses; read-only once built
    else:
        key_mapping = KeyMappingProto.from_proto(mapping)  # type: ignore[no-untyped-call]
    sketch: DDSketch = DDSketch.__new__(DDSketch)
    # DDSketch's parent's constructor takes the mapping and stores ready-made
    BaseDDSketch.__init__(
        sketch,
        mapping=key_mapping,
        store=_store_of(message.positiveValues),
        negative_store=_store_of(message.negativeValues),
        zero_count=message.zeroCount,
    )
    return sketch


def _store_message(store: DenseStore) -> Any:
    if not store.count:
        return StoreMessage()
    lo, hi = store.min_key - store.offset, store.max_key - store.offset
    return StoreMessage(
        contiguousBinCounts=store.bins[lo : hi + 1], contiguousBinIndexOffset=store.min_key
    )


def _store_of(message: Any) -> DenseStore:
    store = DenseStore()
    counts = list(message.contiguousBinCounts)
    lo, hi = 0, len(counts)
    while lo < hi and not counts[lo]:
        lo += 1
    while hi > lo and not counts[hi - 1]:
        hi -= 1
    if lo < hi:
        first = message.contiguousBinIndexOffset + lo
        store.bins = counts[lo:hi]
        store.offset = first
        store.min_key = first
        store.max_key = first + hi - lo - 1
        store.count = sum(store.bins)
    for key, count in message.binCounts.items():  # the message's sparse form: unused here
        store.add(key, count)
    return store


def quantile(sketch: DDSketch, q: float) -> float | None:
    """The q-quantile, or None for an empty sketch."""
    if sketch.count == 0:
        return None
    value = sketch.get_quantile_value(q)
    return None if value is None else float(value)
