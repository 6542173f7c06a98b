"""Durations as people type them: `45s`, `15m`, `12h`, `30d`."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta | None:
    """The duration `text` names, or None when it is not of that shape; one too long for
    a timedelta is `timedelta.max`, so a caller's upper bound refuses it."""
    match = _DURATION.match(text)
    if match is None:
        return None
    try:
        return timedelta(seconds=int(match.group(1)) * _SECONDS[match.group(2)])
    except OverflowError:
        return timedelta.max


def spoken(seconds: float) -> str:
    """A duration as a person reads it: `45 s`, `12 min`, `3.5 h`, `2.1 days`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def clock(seconds: float) -> str:
    """A measured span to the second: `42 s`, `12 min 3 s`, `3 h 5 min` (an incident's
    time to detect, say)."""
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"
