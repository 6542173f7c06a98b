"""0012_rollup_guardrails: rollup rows written before it count no guardrail firing, and
the writer merges into them, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, insert, select

from trimtab.store.engine import _alembic_config, make_engine, migrate
from trimtab.store.tables import rollups
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.sketch import new_sketch, to_bytes
from trimtab.telemetry.store import TelemetryStore

MINUTE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


def test_rollups_from_before_count_none_and_are_merged_into(engine: Engine) -> None:
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0010")
    empty = to_bytes(new_sketch())
    with engine.begin() as conn:
        # the table's own types (how each dialect stores a minute); no guardrail_fired yet
        conn.execute(
            insert(rollups).values(
                minute=MINUTE,
                model="gpt-mock",
                provider="upstream",
                tenant="acme",
                feature="",
                status_code=200,
                route="",
                version="",
                count=4,
                errors=0,
                input_tokens=0,
                output_tokens=0,
                cost_usd=0.0,
                latency_sketch=empty,
                ttft_sketch=empty,
            )
        )
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(select(rollups.c.count, rollups.c.guardrail_fired)).one() == (4, 0)
    fired = {"guardrails": {"fired": ["input.pii"], "checks": [], "blocked": None}}
    TelemetryStore(engine).write(
        [
            RequestRecord(
                id="req_1",
                started_at=MINUTE.timestamp() + 5,
                api="openai",
                operation="chat",
                tenant="acme",
                request_model="gpt-mock",
                provider="upstream",
                duration_ms=10.0,
                attributes=fired,
            )
        ]
    )
    with engine.connect() as conn:
        assert conn.execute(select(rollups.c.count, rollups.c.guardrail_fired)).one() == (5, 1)
