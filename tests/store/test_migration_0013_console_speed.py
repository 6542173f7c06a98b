"""0013_console_speed: the hour and day rows compacted before `rollups_hour` had errors,
tokens and cost are marked again, so no read takes them until the compaction has rebuilt
them with those; and `requests` has its (route, started_at, id) index. SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, column, insert, inspect, select, table

from trimtab.store.engine import _alembic_config, as_utc, make_engine, migrate
from trimtab.store.tables import rollups, rollups_hour, rollups_hour_dirty
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.sketch import new_sketch, to_bytes

HOUR = datetime(2026, 12, 1, 10, tzinfo=UTC)
DAY = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


def test_spans_compacted_before_are_marked_then_rebuilt_with_cost(engine: Engine) -> None:
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0012_slo_speed")
    empty = to_bytes(new_sketch())
    dims = {"route": "support", "model": "gpt-mock", "tenant": "acme", "feature": "",
            "version": "1", "status_code": 502}  # fmt: skip
    with engine.begin() as conn:
        for minute in (HOUR.replace(minute=5), HOUR.replace(minute=6)):
            conn.execute(
                insert(rollups).values(
                    minute=minute, provider="upstream", count=2, errors=2, input_tokens=7,
                    output_tokens=3, cost_usd=0.25, latency_sketch=empty, ttft_sketch=empty,
                    **dims,
                )
            )  # fmt: skip
        names = ("hour", "hours", "count", "latency_sketch", "ttft_sketch", *dims)
        old = table("rollups_hour", *(column(n, rollups_hour.c[n].type) for n in names))
        for at, hours in ((HOUR, 1), (DAY, 24)):  # as the compaction of 0012 left them
            conn.execute(insert(old).values(hour=at, hours=hours, count=4, latency_sketch=empty,
                                            ttft_sketch=empty, **dims))  # fmt: skip
    migrate(engine)
    d, h = rollups_hour_dirty.c, rollups_hour.c
    with engine.connect() as conn:
        marks = {(as_utc(a), n) for a, n in conn.execute(select(d.hour, d.hours))}
        before = list(conn.execute(select(h.errors, h.cost_usd)))
    assert marks == {(HOUR, 1), (DAY, 24)}
    assert before == [(0, 0.0), (0, 0.0)]  # what a read would have taken: it does not
    assert compact(engine, datetime(2026, 12, 2, 1, tzinfo=UTC)) == 2
    with engine.connect() as conn:
        got = set(conn.execute(select(h.hours, h.count, h.errors, h.input_tokens,
                                      h.output_tokens, h.cost_usd)))  # fmt: skip
        left = conn.execute(select(d.hour)).all()
    assert got == {(1, 4, 4, 14, 6, 0.5), (24, 4, 4, 14, 6, 0.5)}
    assert left == []
    indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("requests")}
    assert indexes["ix_requests_route_started"] == ["route", "started_at", "id"]
