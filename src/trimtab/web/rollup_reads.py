"""What the overview reads from the per-minute rollups (telemetry/ owns the table), summed
by the database, with latency percentiles merged from the stored sketches' bins.

Decoding each row into a DDSketch and merging those (what `Rollup.merge` does) costs
tens of microseconds a row; a busy hour holds thousands of rows. Here each stored
message's bins are added into one numpy array per group instead, and the quantile is
read off the summed bins the way DDSketch reads its own (tests/web/test_rollup_reads.py
checks they agree).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from ddsketch.mapping import LogarithmicMapping
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from sqlalchemy import Engine, func, select

from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups
from trimtab.telemetry.costs import CostRow
from trimtab.telemetry.sketch import RELATIVE_ACCURACY

_SPAN = 4096  # bins held at first; grows when a key falls outside
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)  # the one telemetry/sketch.py writes with


@dataclass(slots=True)
class Bins:
    """A merged latency distribution: DDSketch's positive bins (dense) and its zeros."""

    zeros: float = 0.0
    low: int = -_SPAN // 2  # the key of counts[0]
    counts: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(_SPAN))

    def add(self, raw: bytes) -> None:
        message = DDSketchMessage()
        message.ParseFromString(raw)
        self.zeros += message.zeroCount
        store = message.positiveValues
        bins = store.contiguousBinCounts
        if bins:
            self._add(store.contiguousBinIndexOffset, np.asarray(bins, dtype=np.float64))
        for key, count in store.binCounts.items():
            self._add(key, np.array([count], dtype=np.float64))

    def _add(self, first: int, values: npt.NDArray[np.float64]) -> None:
        start = first - self.low
        end = start + len(values)
        if start < 0 or end > len(self.counts):
            low = min(self.low, first)
            high = max(self.low + len(self.counts), first + len(values))
            grown = np.zeros(high - low)
            grown[self.low - low : self.low - low + len(self.counts)] = self.counts
            self.counts, self.low = grown, low
            start, end = first - low, first - low + len(values)
        self.counts[start:end] += values

    @property
    def count(self) -> float:
        return self.zeros + float(self.counts.sum())

    def quantile(self, q: float) -> float | None:
        """DDSketch's quantile of the merged bins (its `get_quantile_value`)."""
        total = self.count
        if total == 0:
            return None
        rank = q * (total - 1)
        if rank < self.zeros:
            return 0.0
        running = np.cumsum(self.counts)
        index = int(np.searchsorted(running, rank - self.zeros, side="right"))
        index = min(index, len(self.counts) - 1)
        return float(_MAPPING.value(self.low + index))


@dataclass(slots=True)
class Sums:
    requests: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    p95_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def _where(since: datetime, tenant: str | None, route: str | None) -> list[Any]:
    c = rollups.c
    out: list[Any] = [c.minute >= since]
    if tenant is not None:
        out.append(c.tenant == tenant)
    if route is not None:
        out.append(c.route == route)
    return out


def by_route(engine: Engine, since: datetime, tenant: str | None) -> dict[str, Sums]:
    """Requests, errors, cost and p95 latency per route ("" for calls without one)."""
    c = rollups.c
    where = _where(since, tenant, None)
    totals = select(c.route, func.sum(c.count), func.sum(c.errors), func.sum(c.cost_usd))
    out: dict[str, Sums] = {}
    bins: dict[str, Bins] = {}
    with engine.connect() as conn:
        for route, count, errors, cost in conn.execute(totals.where(*where).group_by(c.route)):
            out[route] = Sums(int(count or 0), int(errors or 0), float(cost or 0.0))
        for route, raw in conn.execute(select(c.route, c.latency_sketch).where(*where)):
            bins.setdefault(route, Bins()).add(raw)
    for route, merged in bins.items():
        out[route].p95_ms = merged.quantile(0.95)
    return out


def by_bucket(
    engine: Engine, since: datetime, step_minutes: int, tenant: str | None, route: str | None
) -> dict[int, Sums]:
    """The same per bucket of `step_minutes` (by the bucket's start, epoch seconds)."""
    c = rollups.c
    width = step_minutes * 60
    where = _where(since, tenant, route)
    totals = select(c.minute, func.sum(c.count), func.sum(c.errors), func.sum(c.cost_usd))
    out: dict[int, Sums] = {}
    bins: dict[int, Bins] = {}

    def bucket(minute: datetime) -> int:
        return int(as_utc(minute).timestamp()) // width * width

    with engine.connect() as conn:
        rows = conn.execute(totals.where(*where).group_by(c.minute))
        for minute, count, errors, cost in rows:
            s = out.setdefault(bucket(minute), Sums())
            s.requests += int(count or 0)
            s.errors += int(errors or 0)
            s.cost_usd += float(cost or 0.0)
        for minute, raw in conn.execute(select(c.minute, c.latency_sketch).where(*where)):
            bins.setdefault(bucket(minute), Bins()).add(raw)
    for at, merged in bins.items():
        out[at].p95_ms = merged.quantile(0.95)
    return out


def series(
    sums: dict[int, Sums], start: datetime, end: datetime, step_minutes: int
) -> dict[str, list[float | None]]:
    """Per bucket from `start` to `end`, gaps filled: requests, errors, p95 latency (ms;
    None without requests) and cost (USD)."""
    width = step_minutes * 60
    at = int(start.timestamp()) // width * width
    last = int(end.timestamp())
    out: dict[str, list[float | None]] = {
        "t": [], "requests": [], "errors": [], "p95_ms": [], "cost_usd": [],
    }  # fmt: skip
    while at <= last:
        s = sums.get(at)
        out["t"].append(float(at))
        out["requests"].append(float(s.requests) if s else 0.0)
        out["errors"].append(float(s.errors) if s else 0.0)
        out["p95_ms"].append(s.p95_ms if s else None)
        out["cost_usd"].append(round(s.cost_usd, 10) if s else 0.0)
        at += width
    return out


def midnight(now: datetime) -> datetime:
    """00:00 UTC of `now`'s day: when "spend today" starts."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


COST_DIMENSIONS = ("model", "route", "feature", "tenant")


def costs_by_dimensions(
    engine: Engine, since: datetime, tenant: str | None
) -> dict[str, dict[str, CostRow]]:
    """What `telemetry.costs.costs_by` gives for each of COST_DIMENSIONS, from one scan
    (grouped by all four at once, then folded here)."""
    c = rollups.c
    query = (
        select(
            *(c[d] for d in COST_DIMENSIONS), func.sum(c.count), func.sum(c.errors),
            func.sum(c.input_tokens), func.sum(c.output_tokens), func.sum(c.cost_usd),
        )
        .where(*_where(since, tenant, None))
        .group_by(*(c[d] for d in COST_DIMENSIONS))
    )  # fmt: skip
    out: dict[str, dict[str, CostRow]] = {d: {} for d in COST_DIMENSIONS}
    with engine.connect() as conn:
        for *values, count, errors, tokens_in, tokens_out, cost in conn.execute(query):
            row = CostRow(int(count or 0), int(errors or 0), int(tokens_in or 0),
                          int(tokens_out or 0), float(cost or 0.0))  # fmt: skip
            for d, value in zip(COST_DIMENSIONS, values, strict=True):
                out[d].setdefault(str(value), CostRow()).add(row)
    return out
