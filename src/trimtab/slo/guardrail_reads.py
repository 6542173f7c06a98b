"""The guardrail SLI read from `rollups_minute`: each row's requests and those on which a
guardrail fired (its `guardrail_fired`, counted by the telemetry writer), classified by
`sli.guardrail_counts`. Minute rows only: the hourly rollups (telemetry/hourly.py) keep
no guardrail count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, case, func, select

from trimtab.slo.burn import Counts
from trimtab.slo.sli import guardrail_counts
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups


def guardrail_series(
    conn: Connection, where: Sequence[ColumnElement[bool]]
) -> dict[datetime, Counts]:
    """The counts per minute of the rows matching `where`."""
    c = rollups.c
    query = (
        select(c.minute, c.status_code, func.sum(c.count), func.sum(c.guardrail_fired))
        .where(*where)
        .group_by(c.minute, c.status_code)
    )
    out: dict[datetime, Counts] = {}
    for minute, status, count, fired in conn.execute(query):
        counts = guardrail_counts(status, int(count), int(fired))
        if counts.valid:
            key = as_utc(minute)
            out[key] = out[key] + counts if key in out else counts
    return out


def guardrail_windows(
    conn: Connection, where: Sequence[ColumnElement[bool]], end: datetime, spans: Sequence[int]
) -> dict[int, Counts]:
    """The counts over each window of `spans` minutes up to `end` (included), summed by
    the database in one pass: `guardrail_counts` as SQL. `where` covers the longest."""
    c = rollups.c
    valid = case((c.status_code.between(400, 499), c.guardrail_fired), else_=c.count)
    columns = []
    for w in spans:
        recent = c.minute >= end - timedelta(minutes=w - 1)
        columns.append(func.sum(case((recent, valid), else_=0)))
        columns.append(func.sum(case((recent, c.guardrail_fired), else_=0)))
    row = conn.execute(select(*columns).where(*where)).one()
    out = {}
    for i, w in enumerate(spans):
        n_valid, n_bad = int(row[2 * i] or 0), int(row[2 * i + 1] or 0)
        out[w] = Counts(n_valid - n_bad, n_valid)
    return out
