"""telemetry/feedback_rollups.py: a request's negative feedback goes to the rollup row of
its key (no route, no feature: the "" ones), marks its hour and day, and a row retention
deleted stays deleted. SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine, delete, func, select

from tests.slo.support import NOW, request
from trimtab.store.engine import as_utc
from trimtab.store.tables import requests, rollups, rollups_hour_dirty
from trimtab.telemetry.feedback_rollups import KEY_COLUMNS, count_negative_feedback
from trimtab.telemetry.store import TelemetryStore


def _request(engine: Engine, request_id: str) -> object:
    with engine.connect() as conn:
        columns = (requests.c[c] for c in KEY_COLUMNS)
        return conn.execute(select(*columns).where(requests.c.id == request_id)).one()


def test_the_requests_own_row_gains_one_and_a_deleted_row_stays_deleted(engine: Engine) -> None:
    t = NOW.timestamp() - 30
    TelemetryStore(engine).write(
        [request(1, t, route=None, version=None), request(2, t), request(3, t - 3600)]
    )
    with engine.begin() as conn:
        conn.execute(delete(rollups_hour_dirty))
        assert count_negative_feedback(conn, _request(engine, "req_00000001"))
    c = rollups.c
    with engine.connect() as conn:
        got = conn.execute(select(c.route, c.version, c.negative_feedback)).all()
        marks = conn.execute(select(rollups_hour_dirty.c.hour, rollups_hour_dirty.c.hours)).all()
    assert sorted(got) == [("", "", 1), ("support", "1", 0), ("support", "1", 0)]
    hour = NOW.replace(minute=0, second=0, microsecond=0)
    assert {(as_utc(h), n) for h, n in marks} == {(hour, 1), (hour.replace(hour=0), 24)}
    old = _request(engine, "req_00000003")
    with engine.begin() as conn:
        conn.execute(delete(rollups).where(c.minute < hour))
        assert not count_negative_feedback(conn, old)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(rollups)) == 2
