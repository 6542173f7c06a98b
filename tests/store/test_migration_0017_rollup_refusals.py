"""0017_rollup_refusals: the minute and hour rows written before it hold no refusal count
(NULL, not 0), the writer counts refusals on the rows it writes after it, and the
downgrade drops the column again (and the upgrade adds it back). SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, column, insert, inspect, select, table

from tests.slo.support import request
from trimtab.store.engine import _alembic_config, as_utc, make_engine, migrate
from trimtab.store.tables import rollups, rollups_hour
from trimtab.telemetry.sketch import new_sketch, to_bytes
from trimtab.telemetry.store import TelemetryStore

MINUTE = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
OLD_HOUR = datetime(2026, 11, 30, 7, tzinfo=UTC)
# as tests/slo/support.request records them
DIMS = {"model": "gpt-mock", "provider": "upstream", "tenant": "acme", "feature": "",
        "status_code": 200, "route": "support", "version": "1"}  # fmt: skip


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


def _columns(engine: Engine, name: str) -> set[str]:
    return {col["name"] for col in inspect(engine).get_columns(name)}


def test_rows_from_before_hold_no_count_and_the_writer_counts_after(engine: Engine) -> None:
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0016_score_session_rollups")
    assert "refused" not in _columns(engine, "rollups_minute")
    empty = to_bytes(new_sketch())
    names = ("minute", "count", "errors", "input_tokens", "output_tokens", "cost_usd",
             "latency_sketch", "ttft_sketch", *DIMS)  # fmt: skip
    old = table("rollups_minute", *(column(n, rollups.c[n].type) for n in names))
    hour_names = ("hour", "hours", "count", "latency_sketch", "ttft_sketch", "route", "model",
                  "tenant", "feature", "version", "status_code")  # fmt: skip
    old_hour = table("rollups_hour", *(column(n, rollups_hour.c[n].type) for n in hour_names))
    sums = {"errors": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    with engine.begin() as conn:
        conn.execute(insert(old).values(minute=MINUTE, count=3, latency_sketch=empty,
                                        ttft_sketch=empty, **sums, **DIMS))  # fmt: skip
        conn.execute(insert(old_hour).values(hour=OLD_HOUR, hours=1, count=4,
                                             latency_sketch=empty, ttft_sketch=empty,
                                             **{k: v for k, v in DIMS.items()
                                                if k != "provider"}))  # fmt: skip
    migrate(engine)
    c, h = rollups.c, rollups_hour.c
    with engine.connect() as conn:
        assert conn.execute(select(c.count, c.refused)).all() == [(3, None)]
        assert conn.execute(select(h.count, h.refused)).all() == [(4, None)]

    # the writer: the old minute stays unknown, a new minute is counted
    later = MINUTE + timedelta(minutes=1)
    TelemetryStore(engine).write(
        [
            request(1, MINUTE.timestamp() + 30, finish_reasons=["content_filter"]),
            request(2, later.timestamp() + 1, finish_reasons=["content_filter"]),
            request(3, later.timestamp() + 2, finish_reasons=["stop"]),
        ]
    )
    with engine.connect() as conn:
        got = {as_utc(m): (n, r) for m, n, r in conn.execute(select(c.minute, c.count, c.refused))}
    assert got == {MINUTE: (4, None), later: (2, 1)}

    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0016_score_session_rollups")
    assert "refused" not in _columns(engine, "rollups_minute")
    assert "refused" not in _columns(engine, "rollups_hour")
    assert "cost_sketch" in _columns(engine, "rollups_hour")  # 0015's, kept
    migrate(engine)  # and up again: every row from before the column is unknown
    with engine.connect() as conn:
        assert {r for (r,) in conn.execute(select(c.refused))} == {None}
