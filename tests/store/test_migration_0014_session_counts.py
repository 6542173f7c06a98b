"""0014_session_counts: a minute row written before it counts no sessions (NULL sketch,
zero requests and spend), the writer merges a later batch's sessions into that row, and
the downgrade drops the columns again. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, column, insert, inspect, select, table

from trimtab.store.engine import _alembic_config, make_engine, migrate
from trimtab.store.tables import rollups
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.sessions import SessionUnion
from trimtab.telemetry.sketch import new_sketch, to_bytes
from trimtab.telemetry.store import TelemetryStore

MINUTE = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
NEW = ("sessions_sketch", "session_requests", "session_cost_usd")


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


def test_rows_from_before_count_no_sessions_then_merge_new_ones(engine: Engine) -> None:
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0013_console_speed")
    empty = to_bytes(new_sketch())
    dims = {"model": "gpt-mock", "provider": "", "tenant": "acme", "feature": "",
            "status_code": 200, "route": "", "version": ""}  # fmt: skip
    names = ("minute", "count", "errors", "input_tokens", "output_tokens", "cost_usd",
             "latency_sketch", "ttft_sketch", *dims)  # fmt: skip
    old = table("rollups_minute", *(column(n, rollups.c[n].type) for n in names))
    with engine.begin() as conn:
        conn.execute(insert(old).values(minute=MINUTE, count=3, errors=0, input_tokens=0,
                                        output_tokens=0, cost_usd=0.3, latency_sketch=empty,
                                        ttft_sketch=empty, **dims))  # fmt: skip
    migrate(engine)
    c = rollups.c
    with engine.connect() as conn:
        assert conn.execute(select(*(c[n] for n in NEW))).one() == (None, 0, 0.0)
    record = RequestRecord(
        id="req_after_0014",
        started_at=MINUTE.timestamp() + 30,
        api="openai",
        operation="chat",
        tenant="acme",
        request_model="gpt-mock",
        status_code=200,
        duration_ms=10.0,
        cost_usd=0.1,
        session="s1",
    )
    TelemetryStore(engine).write([record])
    with engine.connect() as conn:
        raw, n, cost, count = conn.execute(
            select(c.sessions_sketch, c.session_requests, c.session_cost_usd, c.count)
        ).one()
    union = SessionUnion()
    union.add(raw)
    assert (n, cost, count) == (1, pytest.approx(0.1), 4)
    assert union.count().estimate == pytest.approx(1, abs=0.01)

    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0013_console_speed")
    for name in ("rollups_minute", "rollups_hour"):
        columns = {col["name"] for col in inspect(engine).get_columns(name)}
        assert not columns & set(NEW)
