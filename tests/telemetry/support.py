"""Records, a migrated telemetry store and its totals, for the recorder and journal tests."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, func, select

from trimtab.store.engine import make_engine, migrate
from trimtab.store.tables import requests, rollups
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

T0 = time.time()


def rec(n: int, **kw: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "id": f"req_{n:06d}",
        "started_at": T0 + n / 1000,
        "api": "openai",
        "operation": "chat",
        "tenant": "acme",
        "request_model": "gpt-mock",
        "provider": "upstream",
        "status_code": 200 if n % 5 else 502,
        "duration_ms": 50.0 + n,
        "overhead_ms": 0.5,
        "input_tokens": 10 + n,
        "output_tokens": 3,
        "cost_usd": 1e-6 * n,
        "streamed": n % 2 == 0,
        "ttft_ms": 20.0 if n % 2 == 0 else None,
        "finish_reasons": ["stop"],
        "request_body": '{"model": "gpt-mock"}',
        "attributes": {"n": n},
    }
    fields.update(kw)
    return RequestRecord(**fields)


def records(n: int, start: int = 1) -> list[RequestRecord]:
    return [rec(i) for i in range(start, start + n)]


def open_store(url: str, engines: list[Engine], *, migrated: bool = True) -> TelemetryStore:
    engine = make_engine(url)
    engines.append(engine)
    if migrated:
        migrate(engine)
    return TelemetryStore(engine)


def stored_ids(store: TelemetryStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.scalars(select(requests.c.id).order_by(requests.c.id)))


def rollup_totals(store: TelemetryStore) -> tuple[int, int, int]:
    """(sum of counts, sum of errors, sum of input tokens) over all rollup rows."""
    with store.engine.connect() as conn:
        row = conn.execute(
            select(
                func.coalesce(func.sum(rollups.c.count), 0),
                func.coalesce(func.sum(rollups.c.errors), 0),
                func.coalesce(func.sum(rollups.c.input_tokens), 0),
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def expected_totals(recs: list[RequestRecord]) -> tuple[int, int, int]:
    return (
        len(recs),
        sum(1 for r in recs if r.is_error),
        sum(r.input_tokens or 0 for r in recs),
    )
