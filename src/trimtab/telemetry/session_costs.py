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
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Executable, bindparam, case
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.store.tables import session_costs
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.rollups import minute_of
from trimtab.types import is_eval_feature

# (tenant, route, feature, session_key)
SessionKey = tuple[str, str, str, str]


def session_key(tenant: str, session: str) -> str:
    return hashlib.sha256(f"{tenant}\x00{session}".encode()).hexdigest()[:32]


@dataclass(slots=True)
class SessionDelta:
    first: datetime
    last: datetime
    requests: int = 0
    cost_usd: float = 0.0


def fold(records: Iterable[RequestRecord]) -> dict[SessionKey, SessionDelta]:
    """A batch's production records that carry a session, per tenant, route, feature and
    session."""
    out: dict[SessionKey, SessionDelta] = {}
    for r in records:
        if not r.session or is_eval_feature(r.feature):
            continue
        key = (r.tenant, r.route or "", r.feature or "", session_key(r.tenant, r.session))
        minute = minute_of(r.started_at)
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


def _upsert(dialect: str) -> Executable:
    c = session_costs.c
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    query = insert(session_costs).values(
        tenant=bindparam("tenant"),
        route=bindparam("route"),
        feature=bindparam("feature"),
        session_key=bindparam("session_key"),
        first_minute=bindparam("first_minute"),
        last_minute=bindparam("last_minute"),
        requests=bindparam("requests"),
        cost_usd=bindparam("cost_usd"),
    )
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


# built once: the writer runs it at every batch (cached compiled form, new parameters)
_UPSERT = {name: _upsert(name) for name in ("postgresql", "sqlite")}


def merge_session_costs(conn: Connection, records: Iterable[RequestRecord]) -> int:
    """Add a batch's sessions to `session_costs`; the number of rows upserted."""
    folded = fold(records)
    if not folded:
        return 0
    params = [
        {"tenant": t, "route": r, "feature": f, "session_key": s, "first_minute": d.first,
         "last_minute": d.last, "requests": d.requests, "cost_usd": d.cost_usd}
        for (t, r, f, s), d in sorted(folded.items(), key=lambda kv: kv[0])  # one lock order
    ]  # fmt: skip
    conn.execute(_UPSERT[conn.dialect.name], params)
    return len(params)
