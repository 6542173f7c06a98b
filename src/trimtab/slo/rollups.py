"""An SLO's good and valid requests per minute, read from `rollups_minute` (telemetry's
table; never the request rows). The writer merges into the rollups every few seconds, so
the newest minute may lag by that much."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, func, select

from trimtab.slo.burn import Counts
from trimtab.slo.guardrail_reads import guardrail_series, guardrail_windows
from trimtab.slo.sli import latency_counts, status_counts
from trimtab.slo.spec import Selector, Sli, SloDefinition
from trimtab.slo.windows import latency_windows, status_windows
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups
from trimtab.telemetry.production import unless_named
from trimtab.telemetry.sketch import from_bytes

Series = Mapping[datetime, Counts]  # minute (UTC) -> the SLI's counts in it


def minute_floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _where(selector: Selector, start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    c = rollups.c
    out: list[ColumnElement[bool]] = [c.minute >= start, c.minute <= end]
    for column, value in (
        (c.route, selector.route),
        (c.model, selector.model),
        (c.tenant, selector.tenant),
        (c.feature, selector.feature),
        (c.version, selector.version),
    ):
        if value is not None:
            out.append(column == value)
    out += unless_named(c.feature, selector.feature)  # eval runs' calls move no SLO
    return out


def read_series(
    engine: Engine, slo: SloDefinition, now: datetime, minutes: int
) -> dict[datetime, Counts]:
    """The SLI's counts per minute over the `minutes` minutes up to `now`'s (included)."""
    end = minute_floor(now)
    start = end - timedelta(minutes=minutes - 1)
    where = _where(slo.selector, start, end)
    c = rollups.c
    out: dict[datetime, Counts] = {}
    with engine.connect() as conn:
        if slo.sli.kind == "latency":
            column = c.latency_sketch if slo.sli.of == "total" else c.ttft_sketch
            rows = conn.execute(select(c.minute, c.status_code, column).where(*where))
            for minute, status, raw in rows:
                counts = latency_counts(slo.sli, status, from_bytes(raw))
                if counts.valid:
                    key = as_utc(minute)
                    out[key] = out[key] + counts if key in out else counts
        elif slo.sli.kind == "guardrail":
            out = guardrail_series(conn, where)
        else:
            query = (
                select(c.minute, c.status_code, func.sum(c.count))
                .where(*where)
                .group_by(c.minute, c.status_code)
            )
            for minute, status, count in conn.execute(query):
                counts = status_counts(slo.sli, status, int(count))
                if counts.valid:
                    key = as_utc(minute)
                    out[key] = out[key] + counts if key in out else counts
    return out


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


def counts_of(sli: Sli, by_status: Mapping[int, int]) -> Counts:
    """An availability or error-rate SLI's counts from requests per status code."""
    total = Counts(0, 0)
    for status, n in by_status.items():
        total = total + status_counts(sli, status, n)
    return total


def read_windows(
    engine: Engine, slo: SloDefinition, now: datetime, windows: Iterable[int]
) -> dict[int, Counts]:
    """The SLI's counts over each window (minutes up to `now`'s, included): availability
    and error rates from the requests per status code summed by the database, latency
    from the rows' sketches; both from the hourly rollups where they can (slo/windows.py)."""
    spans = sorted(set(windows))
    if slo.sli.kind == "guardrail":
        return read_guardrail_windows(engine, slo.selector, now, spans)
    end = minute_floor(now)
    with engine.connect() as conn:
        if slo.sli.kind == "latency":
            return latency_windows(conn, slo.selector, [slo.sli], end, spans)[0]
        by_status = status_windows(conn, slo.selector, end, spans)
    return {w: counts_of(slo.sli, by_status[w]) for w in spans}


def read_status_windows(
    engine: Engine, selector: Selector, now: datetime, windows: Iterable[int]
) -> dict[int, dict[int, int]]:
    """Requests per status code over each window (minutes up to `now`'s, included), in
    one query: what every availability and error-rate SLO of one selector needs (the
    evaluator classifies them with `sli.status_counts`)."""
    with engine.connect() as conn:
        return status_windows(conn, selector, minute_floor(now), sorted(set(windows)))


def read_latency_windows(
    engine: Engine,
    selector: Selector,
    slis: Sequence[Sli],
    now: datetime,
    windows: Iterable[int],
) -> list[dict[int, Counts]]:
    """Each latency SLI's counts over each window (minutes up to `now`'s, included), from
    one read of the selector's sketches, each row decoded once. The SLIs share `of`."""
    if len({s.of for s in slis}) > 1:
        raise ValueError("latency SLIs read together must measure the same `of`")
    with engine.connect() as conn:
        return latency_windows(conn, selector, slis, minute_floor(now), sorted(set(windows)))


def read_guardrail_windows(
    engine: Engine, selector: Selector, now: datetime, windows: Iterable[int]
) -> dict[int, Counts]:
    """A guardrail SLI's counts over each window (minutes up to `now`'s, included), in one
    query of the minute rollups (slo/guardrail_reads.py)."""
    spans = sorted(set(windows))
    end = minute_floor(now)
    start = end - timedelta(minutes=spans[-1] - 1)
    with engine.connect() as conn:
        return guardrail_windows(conn, _where(selector, start, end), end, spans)
