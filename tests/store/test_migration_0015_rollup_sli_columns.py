"""0015_rollup_sli_columns: the feedback stored before it is counted on its requests'
minute rows (a request with two negative feedbacks once, a positive one not at all), the
rows from before hold no cost sketch, every span of `rollups_hour` and the hours and
days of the counted minutes are marked for the compaction, and the downgrade drops the
columns again. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, column, insert, inspect, select, table

from trimtab.store.engine import _alembic_config, as_utc, make_engine, migrate
from trimtab.store.tables import feedback, requests, rollups, rollups_hour, rollups_hour_dirty
from trimtab.telemetry.sketch import new_sketch, to_bytes

MINUTE = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
OLD_HOUR = datetime(2026, 11, 30, 7, tzinfo=UTC)
DIMS = {"model": "gpt-mock", "provider": "mock", "tenant": "acme", "feature": "faq",
        "status_code": 200, "route": "support", "version": "3"}  # fmt: skip


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


def _request(request_id: str, at: datetime, status: int = 200) -> dict[str, object]:
    return {"id": request_id, "started_at": at, "ended_at": at, "api": "openai",
            "operation": "chat", "tenant": "acme", "request_model": "gpt-mock",
            "provider": "mock", "feature": "faq", "route": "support", "version": "3",
            "status_code": status, "duration_ms": 5.0, "overhead_ms": 0.1,
            "streamed": False}  # fmt: skip


def _feedback(request_id: str, negative: bool) -> dict[str, object]:
    return {"request_id": request_id, "tenant": "acme", "route": "support", "version": "3",
            "score": 0.0 if negative else 1.0, "negative": negative, "escalated": False,
            "at": MINUTE}  # fmt: skip


def test_stored_feedback_is_counted_once_a_request_and_spans_are_marked(engine: Engine) -> None:
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0014_session_counts")
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
        # another minute's row, with a request that got only positive feedback
        conn.execute(insert(old).values(minute=MINUTE + timedelta(minutes=1), count=1,
                                        latency_sketch=empty, ttft_sketch=empty, **sums,
                                        **DIMS))  # fmt: skip
        conn.execute(insert(old_hour).values(hour=OLD_HOUR, hours=1, count=1,
                                             latency_sketch=empty, ttft_sketch=empty,
                                             **{k: v for k, v in DIMS.items()
                                                if k != "provider"}))  # fmt: skip
        conn.execute(insert(requests), [
            _request("req_a", MINUTE + timedelta(seconds=10)),
            _request("req_b", MINUTE + timedelta(seconds=20)),
            _request("req_c", MINUTE + timedelta(seconds=30)),
            _request("req_d", MINUTE + timedelta(seconds=70)),
        ])  # fmt: skip
        conn.execute(insert(feedback), [
            _feedback("req_a", True), _feedback("req_a", True), _feedback("req_b", True),
            _feedback("req_c", False), _feedback("req_d", False),
        ])  # fmt: skip
    migrate(engine)
    c = rollups.c
    with engine.connect() as conn:
        got = dict(
            (as_utc(m), (n, s)) for m, n, s in conn.execute(
                select(c.minute, c.negative_feedback, c.cost_sketch)
            )
        )  # fmt: skip
        hourly = conn.execute(
            select(rollups_hour.c.guardrail_fired, rollups_hour.c.negative_feedback)
        ).all()
        marks = {(as_utc(h), n) for h, n in conn.execute(
            select(rollups_hour_dirty.c.hour, rollups_hour_dirty.c.hours))}  # fmt: skip
    assert got == {MINUTE: (2, None), MINUTE + timedelta(minutes=1): (0, None)}
    assert hourly == [(0, 0)]
    assert marks == {
        (OLD_HOUR, 1),
        (MINUTE.replace(minute=0), 1),
        (MINUTE.replace(hour=0, minute=0), 24),
    }

    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0014_session_counts")
    minute_columns = {col["name"] for col in inspect(engine).get_columns("rollups_minute")}
    hour_columns = {col["name"] for col in inspect(engine).get_columns("rollups_hour")}
    assert not minute_columns & {"negative_feedback", "cost_sketch"}
    assert "guardrail_fired" in minute_columns  # 0012's, kept
    assert not hour_columns & {"negative_feedback", "cost_sketch", "guardrail_fired"}
