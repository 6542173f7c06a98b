"""Unit economics per route, feature or tenant, from the rollups: cost per request, per
successful request (status < 400), per 1,000 tokens (input and output) from the minute
rows, and per session from the day, hour and minute rows that cover the window.

Per session is the spend of the requests that carry a session id (`session_cost_usd`)
over their distinct sessions, estimated by merging the rows' HLL sketches
(telemetry/sessions.py: 1.62 % relative standard error once past a few hundred sessions,
exact below); `sessions` gives the estimate and its interval at two standard deviations,
`cost_per_session` the spend over the estimate and over each bound. A session that spans
two groups (two routes) counts in each, once in the total. Requests without a session id
are in no session figure. Rollup rows written before migration 0014 count no sessions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from trimtab.telemetry.costs import CostRow, costs_by
from trimtab.telemetry.session_reads import session_rows
from trimtab.telemetry.sessions import ESTIMATOR, SessionUnion, per_session

ECONOMICS_GROUPS = ("route", "feature", "tenant")
SESSIONS_NOTE = ESTIMATOR + (
    "; cost per session: the spend of the requests that carry a session id over those "
    "sessions (requests without one are in no session figure)"
)


class SessionSums:
    """One group's session-bearing requests: their number, spend and sessions' sketch."""

    def __init__(self) -> None:
        self.requests = 0
        self.cost_usd = 0.0
        self.sessions = SessionUnion()

    def add(self, requests: int, cost: float, raw: bytes | None) -> None:
        self.requests += requests
        self.cost_usd += cost
        self.sessions.add(raw)

    def merge(self, other: SessionSums) -> None:
        self.requests += other.requests
        self.cost_usd += other.cost_usd
        self.sessions.merge(other.sessions)


def sessions_by(
    engine: Engine, since: datetime, group_by: str, tenant: str | None
) -> dict[str, SessionSums]:
    """Per value of `group_by` ("" = none): the session sums from `since` on, from the
    day, hour and minute rows that cover it (telemetry/session_reads.py)."""
    until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    out: dict[str, SessionSums] = {}
    with engine.connect() as conn:
        for value, n, cost, raw in session_rows(conn, since, until, (group_by,), tenant):
            sums = out.get(str(value))
            if sums is None:
                sums = out[str(value)] = SessionSums()
            sums.add(int(n), float(cost), raw)
    return out


def _per(cost: float, count: int, scale: float = 1.0) -> float | None:
    return round(cost / count * scale, 10) if count else None


def unit_figures(row: CostRow, sessions: SessionSums | None = None) -> dict[str, Any]:
    """One group's unit costs (None where the denominator is zero)."""
    successful = row.requests - row.errors
    tokens = row.input_tokens + row.output_tokens
    s = sessions or SessionSums()
    count = s.sessions.count()
    interval = per_session(s.cost_usd, count)
    return {
        "requests": row.requests,
        "successful": successful,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cost_usd": round(row.cost_usd, 10),
        "cost_per_request_usd": _per(row.cost_usd, row.requests),
        "cost_per_successful_request_usd": _per(row.cost_usd, successful),
        "cost_per_1k_tokens_usd": _per(row.cost_usd, tokens, 1000.0),
        "session_requests": s.requests,
        "session_cost_usd": round(s.cost_usd, 10),
        "sessions": count.view(),
        "cost_per_session_usd": None if interval is None else interval["usd"],
        "cost_per_session": interval,
    }


def unit_economics(
    engine: Engine, since: datetime, group_by: str, tenant: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(one entry per value of `group_by`, most spend first; the total)."""
    if group_by not in ECONOMICS_GROUPS:
        raise ValueError(f"cannot group unit economics by '{group_by}'")
    rows = costs_by(engine, since, group_by, tenant)
    return economics_of(group_by, rows, sessions_by(engine, since, group_by, tenant))


def economics_of(
    group_by: str, rows: dict[str, CostRow], sessions: dict[str, SessionSums]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The unit figures of each value of `group_by` from its cost sums and session sums
    (either may lack a value), most spend first, and of them all."""
    total = CostRow()
    all_sessions = SessionSums()
    groups = []
    for value in sorted(rows.keys() | sessions.keys()):
        row = rows.get(value, CostRow())
        s = sessions.get(value)
        total.add(row)
        if s is not None:
            all_sessions.merge(s)
        groups.append({group_by: value if value != "" else None, **unit_figures(row, s)})
    groups.sort(key=lambda g: (-g["cost_usd"], -g["requests"], str(g[group_by])))
    return groups, unit_figures(total, all_sessions)
