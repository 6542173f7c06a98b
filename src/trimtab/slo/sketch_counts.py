"""How many of a stored sketch's values are within each of several thresholds, straight
from its protobuf bytes (telemetry/sketch.py's storage form), without building the
DDSketch: `Thresholds.counts` for one message, `Tally` for many, summed per group.

A bin counts when its representative value is at most the threshold, as `sli.within`
counts it. `Tally` finds each message's packed bins by reading its few protobuf fields
itself and sums all the messages' bins in one numpy pass. That is exact, and equal to
summing `Thresholds.counts` of each message, when every bin and zero count is a
non-negative whole number and their total is below 2^53, as they are for sketches of
requests (each value added once, merges adding counts): every partial sum is then a
whole number a double holds exactly, whatever the order. Any other message (another
mapping, an interpolated one, sparse or negative bins, unknown fields) and any batch
that is not whole numbers is counted message by message by `Thresholds.counts`."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from ddsketch.pb.ddsketch_pb2 import DDSketch as SketchMessage
from ddsketch.pb.ddsketch_pb2 import IndexMapping
from ddsketch.pb.proto import KeyMappingProto

from trimtab.slo.sli import within
from trimtab.telemetry.sketch import from_bytes

NONE_INTERPOLATION: int = IndexMapping.NONE  # type: ignore[attr-defined]
EXACT = float(2**53)  # whole numbers below it are exact doubles, and so are their sums
BELOW_ALL = -(2**62)  # a threshold under the mapping's least value: no bin is within

# the tags of the fields read (field number << 3 | wire type): DDSketch's mapping (1),
# positiveValues (2), negativeValues (3) as length-delimited, zeroCount (4) as a double;
# Store's contiguousBinCounts (2) packed, contiguousBinIndexOffset (3) a zigzag varint
_MAPPING, _POSITIVE, _NEGATIVE, _ZERO = 0x0A, 0x12, 0x1A, 0x21
_BINS, _OFFSET = 0x12, 0x18
_DOUBLE = struct.Struct("<d")

Lasts = list[int | None]  # per threshold, the last bin key within it (None: no bin is)
Plain = tuple[bytes, int, int, int, float]  # mapping, bins' start and end, offset, zero


def _varint(raw: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = raw[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _store(raw: bytes, i: int, end: int) -> tuple[int, int, int] | None:
    """(bins' start, end, first key) of a Store message's contiguous bins; None for
    sparse bins or anything else."""
    a = b = offset = 0
    seen = 0
    while i < end:
        tag = raw[i]
        i += 1
        if tag == _BINS and not seen & 1:
            n, i = _varint(raw, i)
            a, b, i = i, i + n, i + n
            seen |= 1
        elif tag == _OFFSET and not seen & 2:
            z, i = _varint(raw, i)
            offset = (z >> 1) ^ -(z & 1)
            seen |= 2
        else:
            return None
    if i != end or (b - a) % 8:
        return None
    return a, b, offset


def plain(raw: bytes) -> Plain | None:
    """(the mapping's bytes, the positive bins' start and end in `raw`, the first bin's
    key, the zero count) of a message with a mapping, contiguous positive bins and no
    negative ones; None for any other."""
    end = len(raw)
    i = 0
    mapping: bytes | None = None
    a = b = offset = 0
    zero = 0.0
    seen = 0
    try:
        while i < end:
            tag = raw[i]
            i += 1
            if tag == _ZERO:
                (zero,) = _DOUBLE.unpack_from(raw, i)
                i += 8
                continue
            if tag not in (_MAPPING, _POSITIVE, _NEGATIVE) or seen & (1 << tag):
                return None  # another field, or one repeated (protobuf would merge them)
            seen |= 1 << tag
            n, i = _varint(raw, i)
            j = i + n
            if j > end:
                return None
            if tag == _MAPPING:
                mapping = raw[i:j]
            else:
                got = _store(raw, i, j)
                if got is None:
                    return None
                if tag == _POSITIVE:
                    a, b, offset = got
                elif got[0] != got[1]:
                    return None  # negative values
            i = j
    except (IndexError, struct.error):
        return None  # truncated: Thresholds.counts says how
    if mapping is None or i != end:
        return None
    return mapping, a, b, offset, zero


class Thresholds:
    """`sli.within` and a sketch's count straight from the stored protobuf message, for
    several thresholds at once: the same sums of the same bins, without building the
    DDSketch. A message in another mapping or with sparse bins is decoded as before."""

    def __init__(self, thresholds: Sequence[float]) -> None:
        self.thresholds = thresholds
        self._keys: dict[tuple[float, float, int], Lasts] = {}
        self._by_bytes: dict[bytes, Lasts | None] = {}

    def _lasts(self, mapping: Any) -> Lasts | None:
        if mapping.interpolation != NONE_INTERPOLATION:
            return None
        ident = (mapping.gamma, mapping.indexOffset, mapping.interpolation)
        got = self._keys.get(ident)
        if got is None:
            key_mapping = KeyMappingProto.from_proto(mapping)  # type: ignore[no-untyped-call]
            got = []
            for t in self.thresholds:
                if t < key_mapping.min_possible:
                    got.append(None)  # only the zero bin is within
                    continue
                last = key_mapping.key(t)
                got.append(last - 1 if key_mapping.value(last) > t else last)
            self._keys[ident] = got
        return got

    def lasts_of(self, mapping: bytes) -> Lasts | None:
        """The last keys of a mapping given as its message's bytes; None for one
        `counts` decodes as a sketch."""
        if mapping not in self._by_bytes:
            message = IndexMapping()
            message.ParseFromString(mapping)
            self._by_bytes[mapping] = self._lasts(message)
        return self._by_bytes[mapping]

    def counts(self, raw: bytes) -> tuple[int, list[int]]:
        """(the sketch's count, how many of its values each threshold has within)."""
        message = SketchMessage()
        message.ParseFromString(raw)
        pos, neg = message.positiveValues, message.negativeValues
        lasts = self._lasts(message.mapping)
        if lasts is None or pos.binCounts or neg.binCounts:
            sketch = from_bytes(raw)
            return int(sketch.count), [within(sketch, t) for t in self.thresholds]
        bins = list(pos.contiguousBinCounts)
        zero, negative, offset = (
            message.zeroCount,
            sum(neg.contiguousBinCounts),
            pos.contiguousBinIndexOffset,
        )
        out = []
        for last in lasts:
            if last is None:
                out.append(int(zero))
            else:
                below = sum(bins[: last - offset + 1]) if last >= offset else 0.0
                out.append(int(zero) + int(negative) + int(below))
        return int(zero + sum(bins) + negative), out


class Tally:
    """Per group, the sum over the messages added to it of `Thresholds.counts`: (values,
    within each threshold), all plain messages' bins summed in one pass at the end."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self._mappings: dict[bytes, int] = {}  # a plain message's mapping -> its number
        self._lasts: list[Lasts] = []  # by the mapping's number
        # the plain messages': bytes, bins, mapping's number, first key, zero count, group
        self._raws: list[bytes] = []
        self._bins: list[bytes] = []
        self._mapping: list[int] = []
        self._offsets: list[int] = []
        self._zeros: list[float] = []
        self._groups: list[int] = []
        self._others: dict[int, list[int]] = {}  # group -> [values, within...], exact
        self.whole = True  # every message's bins whole numbers, summed in one pass

    def add(self, group: int, raw: bytes) -> None:
        got = plain(raw)
        if got is not None:
            mapping, a, b, offset, zero = got
            m = self._mappings.get(mapping)
            if m is None:
                lasts = self.thresholds.lasts_of(mapping)
                m = self._mappings[mapping] = -1 if lasts is None else len(self._lasts)
                if lasts is not None:
                    self._lasts.append(lasts)
            if m >= 0:
                self._raws.append(raw)
                self._bins.append(raw[a:b])
                self._mapping.append(m)
                self._offsets.append(offset)
                self._zeros.append(zero)
                self._groups.append(group)
                return
        self._other(group, raw)

    def _other(self, group: int, raw: bytes) -> None:
        self.whole = False
        count, below = self.thresholds.counts(raw)
        acc = self._others.setdefault(group, [0] * (1 + len(below)))
        for i, v in enumerate((count, *below)):
            acc[i] += v

    def totals(self) -> dict[int, tuple[int, list[int]]]:
        """Each group's (values, within each threshold)."""
        if self._raws:
            self._sum_plain()
        return {g: (acc[0], acc[1:]) for g, acc in self._others.items()}

    def _sum_plain(self) -> None:
        data = np.frombuffer(b"".join(self._bins), "<f8")
        zeros = np.array(self._zeros, np.float64)
        if not (_whole(data) and _whole(zeros) and float(data.sum() + zeros.sum()) < EXACT):
            for group, raw in zip(self._groups, self._raws, strict=True):
                self._other(group, raw)
            return
        lengths = np.array([len(b) >> 3 for b in self._bins], np.int64)
        starts = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=starts[1:])
        prefix = np.zeros(len(data) + 1, np.float64)  # prefix[i]: the first i bins' sum
        np.cumsum(data, out=prefix[1:])
        first = prefix[starts[:-1]]
        lasts = np.array(
            [[BELOW_ALL if k is None else k for k in row] for row in self._lasts], np.int64
        )[np.array(self._mapping, np.int64)]
        offsets = np.array(self._offsets, np.int64)
        taken = np.clip(lasts - offsets[:, None] + 1, 0, lengths[:, None])
        below = prefix[starts[:-1, None] + taken] - first[:, None] + zeros[:, None]
        values = prefix[starts[1:]] - first + zeros
        groups = np.array(self._groups, np.int64)
        size = int(groups.max()) + 1
        columns = [values, *(below[:, j] for j in range(below.shape[1]))]
        sums = [np.bincount(groups, weights=c, minlength=size).tolist() for c in columns]
        for g in set(self._groups):
            acc = self._others.setdefault(g, [0] * len(columns))
            for i, s in enumerate(sums):
                acc[i] += int(s[g])


def _whole(a: npt.NDArray[np.float64]) -> bool:
    """Every value a non-negative whole number (no NaN, no infinity: the caller bounds
    the total)."""
    return bool(a.size == 0 or (a.min() >= 0 and np.array_equal(a, np.floor(a))))
