"""Sessions in the rollups on SQLite and PostgreSQL: the writer folds each batch's session
ids into the minute rows' sketches, the hourly compaction carries them into
`rollups_hour`, and unit economics divides the session requests' spend by the merged
count, per group and once in the total, a tenant's alone when scoped."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, func, select

from trimtab.store.tables import rollups, rollups_hour
from trimtab.telemetry.economics import unit_economics
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.sessions import SessionUnion
from trimtab.telemetry.store import TelemetryStore

START = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _record(n: int, at: datetime, session: str | None, **kw: object) -> RequestRecord:
    fields: dict[str, object] = {
        "id": f"req_sess_{n:06d}",
        "started_at": at.timestamp(),
        "api": "openai",
        "operation": "chat",
        "tenant": "acme",
        "request_model": "gpt-mock",
        "route": "support",
        "status_code": 200,
        "duration_ms": 80.0,
        "cost_usd": 0.001,
        "session": session,
    }
    fields.update(kw)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def _traffic(rng: random.Random) -> list[RequestRecord]:
    """Three hours of traffic: 300 acme sessions (faq or chat, some both) of 1-6 requests
    at random minutes, 40 requests without a session, globex's 20 sessions."""
    out = []
    n = 0
    for s in range(300):
        for _ in range(rng.randint(1, 6)):
            n += 1
            at = START + timedelta(minutes=rng.randrange(180), seconds=rng.randrange(60))
            out.append(_record(n, at, f"s{s}", feature=rng.choice(("faq", "chat"))))
    for _ in range(40):
        n += 1
        out.append(_record(n, START + timedelta(minutes=rng.randrange(180)), None))
    for s in range(20):
        n += 1
        out.append(_record(n, START + timedelta(minutes=s), f"s{s}", tenant="globex"))
    rng.shuffle(out)
    return out


def _sketch_count(engine: Engine, table: object) -> float:
    union = SessionUnion()
    with engine.connect() as conn:
        union.add_all(conn.scalars(select(table.c.sessions_sketch)))  # type: ignore[attr-defined]
    return union.count().estimate


def test_sessions_through_writer_compaction_and_economics(engine: Engine) -> None:
    rng = random.Random(7)
    records = _traffic(rng)
    store = TelemetryStore(engine)
    for i in range(0, len(records), 37):  # batches that split sessions and minutes
        store.write(records[i : i + 37])
    with_session = [r for r in records if r.session]
    with engine.connect() as conn:
        n, cost = conn.execute(
            select(func.sum(rollups.c.session_requests), func.sum(rollups.c.session_cost_usd))
        ).one()
    assert n == len(with_session) and cost == pytest.approx(0.001 * len(with_session))
    # exact at this size: 300 acme sessions and 20 of globex's (the same ids, apart)
    assert _sketch_count(engine, rollups) == pytest.approx(320, abs=0.01)

    assert compact(engine, START + timedelta(days=2)) > 0
    with engine.connect() as conn:
        hours = conn.execute(
            select(
                rollups_hour.c.hours,
                func.sum(rollups_hour.c.session_requests),
                func.sum(rollups_hour.c.session_cost_usd),
            ).group_by(rollups_hour.c.hours)
        ).all()
    assert {h: (int(k), pytest.approx(c)) for h, k, c in hours} == {
        1: (len(with_session), pytest.approx(0.001 * len(with_session))),
        24: (len(with_session), pytest.approx(0.001 * len(with_session))),
    }
    assert _sketch_count(engine, rollups_hour) == pytest.approx(320, abs=0.01)

    groups, total = unit_economics(engine, START - timedelta(minutes=1), "feature", "acme")
    by = {g["feature"]: g for g in groups}
    acme = [r for r in with_session if r.tenant == "acme"]
    for feature in ("faq", "chat"):
        mine = [r for r in acme if r.feature == feature]
        sessions = {r.session for r in mine}
        assert by[feature]["session_requests"] == len(mine)
        assert by[feature]["sessions"]["estimate"] == pytest.approx(len(sessions), abs=0.01)
        assert by[feature]["cost_per_session_usd"] == pytest.approx(
            0.001 * len(mine) / len(sessions)
        )
    assert by[None]["session_requests"] == 0 and by[None]["cost_per_session"] is None
    assert total["sessions"]["estimate"] == pytest.approx(300, abs=0.01)  # each once
    assert total["cost_per_session_usd"] == pytest.approx(0.001 * len(acme) / 300)
    _, everyone = unit_economics(engine, START - timedelta(minutes=1), "tenant", None)
    assert everyone["sessions"]["estimate"] == pytest.approx(320, abs=0.01)

    # the compacted hours' and day's rows are what it read: without the minutes, the same
    with engine.begin() as conn:
        conn.execute(delete(rollups).where(rollups.c.minute >= START))
    again, again_total = unit_economics(engine, START - timedelta(minutes=1), "feature", "acme")
    keys = ("session_requests", "session_cost_usd", "sessions", "cost_per_session_usd")
    assert {k: again_total[k] for k in keys} == {k: total[k] for k in keys}
    after = {g["feature"]: g["sessions"] for g in again}
    assert after == {g["feature"]: g["sessions"] for g in groups if g["feature"]}
