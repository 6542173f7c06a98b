"""The cost-per-session SLI read from `session_costs` (telemetry/session_costs.py), never
from the request rows.

Valid: the sessions that started (first request) in the window, each counted once, in
that minute; good: those whose total cost so far is at most the ceiling (to within a
billionth of a dollar, so that summed float prices equal to the ceiling count as within
it). A session's cost grows as its requests arrive: a session can turn from good to bad,
in the minute it started, never back. Requests without a session id are in no session.

The selector can narrow by route, tenant and feature only (`SESSION_COST_SELECTOR_KEYS`):
a session spans models and route versions; one spanning routes or features counts in
each. Eval runs' traffic (`eval:` features) is not in the table (the writer leaves it
out).

The windows are counted by the database, one COUNT per window and per good, each a range
scan of a covering index (`ix_session_costs_route_first` with a route, else
`ix_session_costs_first`): no expression per row, which cost 15 times as much on SQLite
(docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, case, func, select

from trimtab.slo.burn import Counts
from trimtab.slo.spec import FILE_SELECTORS, Selector
from trimtab.store.engine import as_utc
from trimtab.store.tables import session_costs

SESSION_COST_SELECTOR_KEYS = FILE_SELECTORS["session_cost"]
TOLERANCE_USD = 1e-9


def _where(selector: Selector, start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    names = ("route", "model", "tenant", "feature", "version")
    used = {k for k in names if getattr(selector, k) is not None}
    if used - SESSION_COST_SELECTOR_KEYS:
        others = ", ".join(sorted(used - SESSION_COST_SELECTOR_KEYS))
        raise ValueError(f"a cost-per-session SLI cannot select by {others}")
    c = session_costs.c
    out = [c.first_minute >= start, c.first_minute <= end]
    for name in sorted(used):
        out.append(c[name] == getattr(selector, name))
    return out


def _good(ceiling_usd: float) -> ColumnElement[bool]:
    return session_costs.c.cost_usd <= ceiling_usd + TOLERANCE_USD


def session_cost_windows(
    conn: Connection,
    selector: Selector,
    ceiling_usd: float,
    end: datetime,
    spans: Sequence[int],
) -> dict[int, Counts]:
    """The counts over each window of `spans` minutes up to `end` (included), in one query."""
    spans = sorted(set(spans))
    columns = []
    for w in spans:
        where = _where(selector, end - timedelta(minutes=w - 1), end)
        columns.append(select(func.count()).where(*where).scalar_subquery())
        good = select(func.count()).where(*where, _good(ceiling_usd))
        columns.append(good.scalar_subquery())
    row = conn.execute(select(*columns)).one()
    return {w: Counts(int(row[2 * i + 1]), int(row[2 * i])) for i, w in enumerate(spans)}


def session_cost_series(
    conn: Connection,
    selector: Selector,
    ceiling_usd: float,
    start: datetime,
    end: datetime,
) -> dict[datetime, Counts]:
    """The counts per minute from `start` to `end` (included), by the sessions' first
    minute; minutes in which no session started are absent."""
    c = session_costs.c
    query = (
        select(c.first_minute, func.count(), func.sum(case((_good(ceiling_usd), 1), else_=0)))
        .where(*_where(selector, start, end))
        .group_by(c.first_minute)
    )
    return {as_utc(m): Counts(int(good), int(n)) for m, n, good in conn.execute(query)}
