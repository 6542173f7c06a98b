"""The incident tests' shared pieces: a fixed clock and traffic written through the
telemetry store (request rows and their per-minute rollups, as the gateway writes them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from trimtab.audit.log import Actor
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # the first bad minute of the scenarios
ONCALL = Actor(key_id="key_oncall", owner="oncall@acme", tenant="acme")


def minute(n: float) -> datetime:
    """T0 + n minutes."""
    return T0 + timedelta(minutes=n)


def traffic(
    engine: Engine,
    at: datetime,
    *,
    ok: int = 0,
    failed: int = 0,
    route: str = "support-answer",
    tenant: str = "acme",
    model: str = "gpt-mock",
    status: int = 502,
    cost: float = 0.001,
    prefix: str = "",
) -> None:
    """`ok` answered and `failed` (5xx) requests within the minute of `at`."""
    base = at.timestamp()
    records = [
        RequestRecord(
            id=f"req_{prefix}{route}_{tenant}_{int(base)}_{i}",
            started_at=base + i * 0.01,
            api="openai",
            operation="chat",
            tenant=tenant,
            request_model=model,
            route=route,
            version="1",
            user=f"user-{i % 7}",
            status_code=status if i < failed else 200,
            cost_usd=0.0 if i < failed else cost,
            request_body=json.dumps(
                {"model": f"route:{route}", "variables": {"question": f"q{i}"}}
            ),
            duration_ms=100.0,
        )
        for i in range(ok + failed)
    ]
    TelemetryStore(engine).write(records)
