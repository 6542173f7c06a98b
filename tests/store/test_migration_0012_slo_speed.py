"""0012_slo_speed: the hours and days that already hold minute rollups are marked, so
the compaction sums them and no read takes a span it has not summed; SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, insert, select

from trimtab.store.engine import _alembic_config, as_utc, make_engine, migrate
from trimtab.store.tables import rollups, rollups_hour, rollups_hour_dirty
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.sketch import new_sketch, to_bytes

MINUTES = (
    datetime(2026, 11, 30, 23, 59, tzinfo=UTC),
    datetime(2026, 12, 1, 10, 5, tzinfo=UTC),
    datetime(2026, 12, 1, 10, 6, tzinfo=UTC),
)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


def test_hours_and_days_with_minutes_are_marked_then_compacted(engine: Engine) -> None:
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0010")
    empty = to_bytes(new_sketch())
    with engine.begin() as conn:
        for i, minute in enumerate(MINUTES):
            conn.execute(
                insert(rollups).values(
                    minute=minute, model="gpt-mock", provider="upstream", tenant="acme",
                    feature="", status_code=200, route="support", version="1", count=i + 1,
                    errors=0, input_tokens=0, output_tokens=0, cost_usd=0.0,
                    latency_sketch=empty, ttft_sketch=empty,
                )
            )  # fmt: skip
    migrate(engine)
    d = rollups_hour_dirty.c
    with engine.connect() as conn:
        marks = {(as_utc(h), n) for h, n in conn.execute(select(d.hour, d.hours))}
    assert marks == {
        (datetime(2026, 11, 30, 23, tzinfo=UTC), 1),
        (datetime(2026, 11, 30, tzinfo=UTC), 24),
        (datetime(2026, 12, 1, 10, tzinfo=UTC), 1),
        (datetime(2026, 12, 1, tzinfo=UTC), 24),
    }
    # at 12-01 12:00 the two hours and 11-30 are closed; 12-01 is not
    assert compact(engine, datetime(2026, 12, 1, 12, tzinfo=UTC)) == 3
    h = rollups_hour.c
    with engine.connect() as conn:
        got = {(as_utc(a), n, c) for a, n, c in conn.execute(select(h.hour, h.hours, h.count))}
        left = {(as_utc(a), n) for a, n in conn.execute(select(d.hour, d.hours))}
    assert got == {
        (datetime(2026, 11, 30, 23, tzinfo=UTC), 1, 1),
        (datetime(2026, 11, 30, tzinfo=UTC), 24, 1),
        (datetime(2026, 12, 1, 10, tzinfo=UTC), 1, 5),  # its two minutes summed
    }
    assert left == {(datetime(2026, 12, 1, tzinfo=UTC), 24)}
    assert compact(engine, datetime(2026, 12, 2, tzinfo=UTC) + timedelta(minutes=1)) == 1
