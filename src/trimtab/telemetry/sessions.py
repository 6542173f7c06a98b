"""Distinct sessions as mergeable HyperLogLog sketches (Apache DataSketches' HLL).

A rollup row (a minute's, an hour's, a day's) carries one sketch of the session ids of its
requests, each hashed with its tenant (the same id in two tenants is two sessions), so
that the sessions of any set of rows — a route's month, a tenant's window, minutes and
hours together — are counted by merging their sketches: a distinct count is not additive,
a union of sketches is.

The sketch is DataSketches' `hll_sketch` with lg_k = 12 (4,096 registers) in its HLL_8
form: exact up to a few hundred ids (its list and set modes store the ids' hash coupons
themselves, 4 bytes each), then 4 KiB at most. Merged, the estimate's relative standard
error is 1.62 % (`RELATIVE_ERROR`); `SessionCount` carries the sketch's own bounds at
two standard deviations (about 95 %). HLL_8 rather than HLL_4 (half the space): merging
into a dense HLL_4 cost 57 us against HLL_8's 2 us here, and the writer merges a row's
sketch at each batch. The serialized form is DataSketches' compact one, readable by its
Java and C++ libraries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from datasketches import hll_sketch, hll_union, tgt_hll_type

LG_K = 12
TYPE = tgt_hll_type.HLL_8
# the relative standard error of a merged sketch's estimate (DataSketches' table for
# lg_k 12, one standard deviation, union): 0.0162
RELATIVE_ERROR = round(abs(hll_sketch.get_rel_err(False, True, LG_K, 1)), 4)
ESTIMATOR = (
    f"sessions: distinct session ids, estimated by merging HyperLogLog sketches of the "
    f"rollups (DataSketches HLL, lg_k {LG_K}: exact up to a few hundred, then "
    f"{RELATIVE_ERROR * 100:.2f} % relative standard error; interval at 2 standard deviations)"
)


def new_sessions() -> Any:
    return hll_sketch(LG_K, TYPE)


def add_session(sketch: Any, tenant: str, session: str) -> None:
    sketch.update(f"{tenant}\x00{session}")


def to_bytes(sketch: Any) -> bytes:
    return bytes(sketch.serialize_compact())


def sessions_of(raw: bytes | None) -> Any:
    """A stored sketch (None: no session)."""
    return hll_sketch.deserialize(raw) if raw else None


def merged_bytes(stored: bytes | None, delta: Any) -> bytes | None:
    """The stored sketch (None: none yet) with `delta` (None: no session) merged in."""
    if delta is None:
        return stored
    if stored is None:
        return to_bytes(delta)
    union = hll_union(LG_K)
    union.update(hll_sketch.deserialize(stored))
    union.update(delta)
    return bytes(union.get_result(TYPE).serialize_compact())


def union_of(a: Any, b: Any) -> Any:
    """The union of two sketches (None: no session), as a sketch."""
    if a is None or b is None:
        return b if a is None else a
    union = hll_union(LG_K)
    union.update(a)
    union.update(b)
    return union.get_result(TYPE)


class SessionUnion:
    """Merges stored sketches; `count()` estimates the distinct sessions among them."""

    def __init__(self) -> None:
        self._union = hll_union(LG_K)
        self.empty = True

    def add(self, raw: bytes | None) -> None:
        if raw:
            self._union.update(hll_sketch.deserialize(raw))
            self.empty = False

    def add_sketch(self, sketch: Any) -> None:
        if sketch is not None:
            self._union.update(sketch)
            self.empty = False

    def add_all(self, raws: Iterable[bytes | None]) -> None:
        for raw in raws:
            self.add(raw)

    def merge(self, other: SessionUnion) -> None:
        if not other.empty:
            self._union.update(other._union.get_result(TYPE))
            self.empty = False

    def to_bytes(self) -> bytes | None:
        return None if self.empty else bytes(self._union.get_result(TYPE).serialize_compact())

    def count(self) -> SessionCount:
        if self.empty:
            return SessionCount(0.0, 0.0, 0.0)
        u = self._union
        return SessionCount(u.get_estimate(), u.get_lower_bound(2), u.get_upper_bound(2))


@dataclass(frozen=True, slots=True)
class SessionCount:
    """An estimate of distinct sessions and its bounds at two standard deviations."""

    estimate: float
    low: float
    high: float

    def view(self) -> dict[str, Any]:
        return {
            "estimate": round(self.estimate, 1),
            "low": round(self.low, 1),
            "high": round(self.high, 1),
            "relative_standard_error": RELATIVE_ERROR,
        }


def per_session(cost: float, sessions: SessionCount) -> dict[str, Any] | None:
    """Spend per session with its interval (the spend over the bounds, swapped); None
    when no session was counted."""
    if sessions.estimate <= 0:
        return None
    return {
        "usd": round(cost / sessions.estimate, 10),
        "low_usd": round(cost / sessions.high, 10) if sessions.high > 0 else None,
        "high_usd": round(cost / sessions.low, 10) if sessions.low > 0 else None,
    }
