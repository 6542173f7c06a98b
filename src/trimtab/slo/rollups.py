"""An SLO's good and valid requests per minute and over its windows, read from the
rollups (telemetry's tables; never the request rows) as its kind reads them
(slo/kinds.py). The writer merges into the rollups every few seconds, so
the newest minute may lag by that much."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine

from trimtab.slo.burn import Counts
from trimtab.slo.kinds import minute_series, read_together, share
from trimtab.slo.spec import Selector, Sli, SloDefinition

Series = Mapping[datetime, Counts]  # minute (UTC) -> the SLI's counts in it


def minute_floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def read_series(
    engine: Engine, slo: SloDefinition, now: datetime, minutes: int
) -> dict[datetime, Counts]:
    """The SLI's counts per minute over the `minutes` minutes up to `now`'s (included)."""
    end = minute_floor(now)
    start = end - timedelta(minutes=minutes - 1)
    with engine.connect() as conn:
        return minute_series(conn, slo.selector, slo.sli, start, end)


def window_counts(series: Series, now: datetime, minutes: int) -> Counts:
    """The counts of the `minutes` minutes up to `now`'s, included."""
    top = minute_floor(now)
    cutoff = top - timedelta(minutes=minutes - 1)
    good = valid = 0
    for minute, counts in series.items():
        if cutoff <= minute <= top:
            good += counts.good
            valid += counts.valid
    return Counts(good, valid)


def read_windows(
    engine: Engine, slo: SloDefinition, now: datetime, windows: Iterable[int]
) -> dict[int, Counts]:
    """The SLI's counts over each window (minutes up to `now`'s, included), from the
    hourly rollups where they can (slo/windows.py) and as its kind reads them
    (slo/kinds.py)."""
    return read_shared(engine, slo.selector, [slo.sli], now, sorted(set(windows)))[0]


def read_shared(
    engine: Engine, selector: Selector, slis: Sequence[Sli], now: datetime, windows: Iterable[int]
) -> list[dict[int, Counts]]:
    """Each SLI's counts over each window (minutes up to `now`'s, included), from one read
    of the selector's rows: the SLIs `kinds.share` one (every summed kind, or the sketched
    ones, whatever their sketch columns)."""
    if len({share(sli) for sli in slis}) > 1:
        raise ValueError("SLIs read together must share their read (kinds.share)")
    with engine.connect() as conn:
        return read_together(conn, selector, slis, minute_floor(now), sorted(set(windows)))
