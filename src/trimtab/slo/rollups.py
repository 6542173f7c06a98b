"""An SLO's good and valid requests per minute, read from `rollups_minute` (telemetry's
table; never the request rows). The writer merges into the rollups every few seconds, so
the newest minute may lag by that much."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, and_, case, func, not_, select

from trimtab.slo.burn import Counts
from trimtab.slo.sli import CLASS_STATUSES, latency_counts, status_counts
from trimtab.slo.spec import Selector, Sli, SloDefinition
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


def _classified(sli: Sli) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """`sli.status_counts` as SQL: (valid, bad) conditions on a row's status code."""
    status = rollups.c.status_code
    client = status.between(400, 499)
    if sli.kind == "availability":
        return not_(client), status >= 500
    assert sli.kind == "error_rate" and sli.error_class is not None
    if sli.error_class == "server":
        bad = status.between(500, 599)
    else:
        bad = status.in_(sorted(CLASS_STATUSES[sli.error_class]))
    return bad | not_(client), bad


def read_windows(
    engine: Engine, slo: SloDefinition, now: datetime, windows: Iterable[int]
) -> dict[int, Counts]:
    """The SLI's counts over each window (minutes up to `now`'s, included). Availability
    and error rates are summed by the database in one pass, per window; latency reads the
    rows' sketches (`read_series`)."""
    spans = sorted(set(windows))
    if slo.sli.kind == "latency":
        series = read_series(engine, slo, now, spans[-1])
        return {w: window_counts(series, now, w) for w in spans}
    end = minute_floor(now)
    c = rollups.c
    valid, bad = _classified(slo.sli)
    columns = []
    for w in spans:
        recent = c.minute >= end - timedelta(minutes=w - 1)
        columns.append(func.sum(case((and_(recent, valid), c.count), else_=0)))
        columns.append(func.sum(case((and_(recent, bad), c.count), else_=0)))
    start = end - timedelta(minutes=spans[-1] - 1)
    with engine.connect() as conn:
        row = conn.execute(select(*columns).where(*_where(slo.selector, start, end))).one()
    out = {}
    for i, w in enumerate(spans):
        n_valid, n_bad = int(row[2 * i] or 0), int(row[2 * i + 1] or 0)
        out[w] = Counts(n_valid - n_bad, n_valid)
    return out


def read_status_windows(
    engine: Engine, selector: Selector, now: datetime, windows: Iterable[int]
) -> dict[int, dict[int, int]]:
    """Requests per status code over each window (minutes up to `now`'s, included), in
    one pass: what every availability and error-rate SLO of one selector needs (the
    evaluator classifies them with `sli.status_counts`)."""
    spans = sorted(set(windows))
    end = minute_floor(now)
    c = rollups.c
    columns = [
        func.sum(case((c.minute >= end - timedelta(minutes=w - 1), c.count), else_=0))
        for w in spans
    ]
    start = end - timedelta(minutes=spans[-1] - 1)
    query = (
        select(c.status_code, *columns).where(*_where(selector, start, end)).group_by(c.status_code)
    )
    out: dict[int, dict[int, int]] = {w: {} for w in spans}
    with engine.connect() as conn:
        for status, *sums in conn.execute(query):
            for w, n in zip(spans, sums, strict=True):
                if n:
                    out[w][int(status)] = int(n)
    return out


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
    spans = sorted(set(windows))
    end = minute_floor(now)
    cutoffs = [(w, end - timedelta(minutes=w - 1)) for w in spans]
    c = rollups.c
    column = c.latency_sketch if slis[0].of == "total" else c.ttft_sketch
    where = _where(selector, cutoffs[-1][1], end)
    sums = [{w: [0, 0] for w in spans} for _ in slis]
    with engine.connect() as conn:
        for minute, status, raw in conn.execute(
            select(c.minute, c.status_code, column).where(*where)
        ):
            at = as_utc(minute)
            sketch = from_bytes(raw)
            for sli, out in zip(slis, sums, strict=True):
                counts = latency_counts(sli, status, sketch)
                if counts.valid:
                    for w, cutoff in cutoffs:
                        if at >= cutoff:
                            out[w][0] += counts.good
                            out[w][1] += counts.valid
    return [{w: Counts(good, valid) for w, (good, valid) in out.items()} for out in sums]
