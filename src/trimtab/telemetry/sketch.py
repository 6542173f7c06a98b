"""Mergeable latency sketches (DDSketch, 1 % relative accuracy) and their storage form."""

from __future__ import annotations

from ddsketch import DDSketch
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from ddsketch.pb.proto import DDSketchProto

RELATIVE_ACCURACY = 0.01


def new_sketch() -> DDSketch:
    return DDSketch(relative_accuracy=RELATIVE_ACCURACY)


def to_bytes(sketch: DDSketch) -> bytes:
    """The sketch as DDSketch's own protobuf message."""
    message = DDSketchProto.to_proto(sketch)  # type: ignore[no-untyped-call]
    return bytes(message.SerializeToString())


def from_bytes(raw: bytes) -> DDSketch:
    message = DDSketchMessage()
    message.ParseFromString(raw)
    sketch: DDSketch = DDSketchProto.from_proto(message)  # type: ignore[no-untyped-call]
    return sketch


def quantile(sketch: DDSketch, q: float) -> float | None:
    """The q-quantile, or None for an empty sketch."""
    if sketch.count == 0:
        return None
    value = sketch.get_quantile_value(q)
    return None if value is None else float(value)
