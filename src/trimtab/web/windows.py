"""The time windows a page may show, and the rollup reads behind the overview's numbers."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from trimtab.errors import Invalid
from trimtab.telemetry.rollups import Rollup, RollupKey, minute_of

# a window and the width of a chart's bucket in minutes (at most ~360 points a chart)
WINDOWS: dict[str, tuple[timedelta, int]] = {
    "15m": (timedelta(minutes=15), 1),
    "1h": (timedelta(hours=1), 1),
    "6h": (timedelta(hours=6), 1),
    "24h": (timedelta(hours=24), 5),
    "7d": (timedelta(days=7), 30),
}


def window(name: str | None, default: str = "1h") -> tuple[str, timedelta, int]:
    chosen = name or default
    if chosen not in WINDOWS:
        raise Invalid(f"window '{chosen}' is not one of {', '.join(WINDOWS)}", param="window")
    span, step = WINDOWS[chosen]
    return chosen, span, step


def since(span: timedelta, now: datetime | None = None) -> datetime:
    at = now or datetime.now(UTC)
    return minute_of((at - span).timestamp())


def by_route(rows: list[tuple[RollupKey, Rollup]], start: datetime) -> dict[str, Rollup]:
    """The rollups from `start` on, merged per route ("" for calls without one)."""
    out: dict[str, Rollup] = defaultdict(Rollup)
    for key, rollup in rows:
        if key[0] >= start:
            out[key[6]].merge(rollup)
    return out


def series(
    rows: list[tuple[RollupKey, Rollup]], start: datetime, end: datetime, step: int
) -> dict[str, list[float | None]]:
    """Per bucket of `step` minutes from `start` to `end`: requests, errors, p95 latency
    (ms; None without requests) and cost (USD)."""
    width = step * 60
    first = int(start.timestamp()) // width * width
    buckets: dict[int, Rollup] = defaultdict(Rollup)
    for key, rollup in rows:
        at = int(key[0].timestamp()) // width * width
        buckets[at].merge(rollup)
    out: dict[str, list[float | None]] = {"t": [], "requests": [], "errors": [], "p95_ms": [],
                                          "cost_usd": []}  # fmt: skip
    at = first
    last = int(end.timestamp())
    while at <= last:
        b = buckets.get(at)
        out["t"].append(float(at))
        out["requests"].append(float(b.count) if b else 0.0)
        out["errors"].append(float(b.errors) if b else 0.0)
        p95 = b.summary()["latency_ms"]["p95"] if b and b.count else None
        out["p95_ms"].append(p95)
        out["cost_usd"].append(round(b.cost_usd, 10) if b else 0.0)
        at += width
    return out
