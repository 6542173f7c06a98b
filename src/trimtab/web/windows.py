"""The time windows the overview and its charts may show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trimtab.errors import Invalid
from trimtab.telemetry.rollups import minute_of

# a window and the width of a chart's bucket in minutes (at most ~360 points a chart; a
# multiple of 60 reads the hourly rollups, web/rollup_reads.py)
WINDOWS: dict[str, tuple[timedelta, int]] = {
    "15m": (timedelta(minutes=15), 1),
    "1h": (timedelta(hours=1), 1),
    "6h": (timedelta(hours=6), 1),
    "24h": (timedelta(hours=24), 5),
    "7d": (timedelta(days=7), 60),  # whole hours: read from the hourly rollups
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
