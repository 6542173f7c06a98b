"""Each session's requests and spend (`session_costs`, the cost-per-session SLI's rollup,
issue 14), upserted by the telemetry writer in the transaction of its batch.

One row per tenant, route, feature and session (a session spanning routes or features
has a row in each): the minute of its first request and of its last, its requests and
their summed cost (a request without a price adds 0). The SLI counts a session once, in
the minute of its first request, so per-minute counts add across minutes; as requests
arrive its cost only grows, so it can go from within a ceiling to over it, never back.
A record stamped earlier than the session's first minute (a replay, a slow batch) moves
the session to that earlier minute. Eval runs' records (`eval:` features) are left out:
no SLO judges them, and the reads then need no filter.

The row holds a digest of the tenant and session id (`session_key`, 128 bits of
SHA-256), not the id, as the rollups' HyperLogLog sketches do: erasing a user's requests
leaves nothing in it that names them, and the session's spend stays counted.

The upsert goes through the driver's executemany, compiled once per dialect, with the
values in the form the driver takes (on SQLite a minute is SQLAlchemy's DATETIME text),
as the request rows do (telemetry/rows.py): SQLAlchemy's executemany ran a bind
processor per datetime and built a parameter dict per row (docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, case
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.store.tables import session_costs
from trimtab.telemetry.record import RequestRecord
from trimtab.types import is_eval_feature

# (tenant, route, feature, session_key)
SessionKey = tuple[str, str, str, str]

# the upsert's parameters, in the order each row's tuple gives them
PARAMS = (
    "tenant", "route", "feature", "session_key", "first_minute", "last_minute", "requests",
    "cost_usd",
)  # fmt: skip


def session_key(tenant: str, session: str) -> str:
    return hashlib.sha256(f"{tenant}\x00{session}".encode()).hexdigest()[:32]


@dataclass(slots=True)
class SessionDelta:
    first: int  # minutes since the epoch (UTC), as telemetry.rollups.minute_of cuts them
    last: int
    requests: int = 0
    cost_usd: float = 0.0


def fold(records: Iterable[RequestRecord]) -> dict[SessionKey, SessionDelta]:
    """A batch's production records that carry a session, per tenant, route, feature and
    session."""
    out: dict[SessionKey, SessionDelta] = {}
    digests: dict[tuple[str, str], str] = {}  # a session's requests come in runs
    for r in records:
        session = r.session
        if not session or is_eval_feature(r.feature):
            continue
        tenant = r.tenant
        digest = digests.get((tenant, session))
        if digest is None:
            digest = digests[(tenant, session)] = session_key(tenant, session)
        key = (tenant, r.route or "", r.feature or "", digest)
        minute = int(r.started_at // 60)
        got = out.get(key)
        if got is None:
            got = out[key] = SessionDelta(minute, minute)
        elif minute < got.first:
            got.first = minute
        elif minute > got.last:
            got.last = minute
        got.requests += 1
        got.cost_usd += r.cost_usd or 0.0
    return out


def _upsert(dialect: str) -> Insert:
    c = session_costs.c
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    query = insert(session_costs).values({name: bindparam(name) for name in PARAMS})
    new = query.excluded
    return query.on_conflict_do_update(
        index_elements=[c.tenant, c.route, c.feature, c.session_key],
        set_={
            "first_minute": case(
                (new.first_minute < c.first_minute, new.first_minute), else_=c.first_minute
            ),
            "last_minute": case(
                (new.last_minute > c.last_minute, new.last_minute), else_=c.last_minute
            ),
            "requests": c.requests + new.requests,
            "cost_usd": c.cost_usd + new.cost_usd,
        },
    )


@dataclass(frozen=True, slots=True)
class _Upsert:
    """The upsert compiled once for a dialect, and the form its parameters take."""

    sql: str
    named: bool  # psycopg's %(name)s: a dict per row; SQLite's ?: a tuple in PARAMS order

    @classmethod
    def of(cls, conn: Connection) -> _Upsert:
        compiled = _upsert(conn.dialect.name).compile(dialect=conn.dialect)
        if compiled.positional and tuple(compiled.positiontup or ()) != PARAMS:
            raise RuntimeError("the compiled upsert does not take its parameters in order")
        return cls(str(compiled), not compiled.positional)


_UPSERTS: dict[str, _Upsert] = {}


def _sqlite_minute(minute: int) -> str:
    # SQLAlchemy's SQLite DATETIME text of the minute (everything stored is UTC)
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M:00.000000")


def _aware_minute(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def merge_session_costs(conn: Connection, records: Iterable[RequestRecord]) -> int:
    """Add a batch's sessions to `session_costs`; the number of rows upserted."""
    folded = fold(records)
    if not folded:
        return 0
    dialect = conn.dialect.name
    prepared = _UPSERTS.get(dialect)
    if prepared is None:
        prepared = _UPSERTS[dialect] = _Upsert.of(conn)
    as_value = _sqlite_minute if dialect == "sqlite" else _aware_minute
    values: dict[int, Any] = {}  # a batch spans a few minutes
    for delta in folded.values():
        for minute in (delta.first, delta.last):
            if minute not in values:
                values[minute] = as_value(minute)
    rows: list[Any] = [
        (*key, values[d.first], values[d.last], d.requests, d.cost_usd)
        for key, d in sorted(folded.items(), key=lambda kv: kv[0])  # one lock order
    ]
    if prepared.named:
        rows = [dict(zip(PARAMS, row, strict=True)) for row in rows]
    conn.exec_driver_sql(prepared.sql, rows)
    return len(rows)
