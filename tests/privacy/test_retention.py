"""The retention job on SQLite and PostgreSQL (privacy/retention.py, telemetry/retention.py):
per-tenant TTLs over the default, bounded batches, rollups on their own TTL, one holder of
the lease, and two processes running the queries at once doing the work once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from trimtab.config import StorageConfig, parse_config
from trimtab.privacy.retention import RetentionJob, effective
from trimtab.store.engine import make_engine
from trimtab.store.tables import requests, rollups
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

DAY = 86_400.0
NOW = time.time()


def rec(n: int, tenant: str, age_days: float) -> RequestRecord:
    return RequestRecord(
        id=f"req_{tenant}_{n:04d}",
        started_at=NOW - age_days * DAY,
        api="openai",
        operation="chat",
        tenant=tenant,
        request_model="gpt-mock",
        request_body='{"model": "gpt-mock"}',
        response_body='{"choices": []}',
    )


def storage(**data: object) -> StorageConfig:
    return parse_config({"storage": data}).storage


def seed(engine: Engine) -> None:
    records = []
    for tenant in ("acme", "globex", "initech"):
        for n, age in enumerate((0.5, 5, 5, 5, 20, 20, 20, 20, 400)):
            records.append(rec(n, tenant, age))
    TelemetryStore(engine).write(records)


def counts(engine: Engine, tenant: str) -> tuple[int, int, int]:
    """(request rows, rows with a body, rollup rows) of one tenant."""
    c = requests.c
    with engine.connect() as conn:
        rows = conn.scalar(select(func.count()).where(c.tenant == tenant))
        bodies = conn.scalar(
            select(func.count()).where(c.tenant == tenant, c.request_body.isnot(None))
        )
        rolled = conn.scalar(select(func.count()).where(rollups.c.tenant == tenant))
    return int(rows or 0), int(bodies or 0), int(rolled or 0)


CONFIG = {
    "retention": {"bodies_days": 3, "rows_days": 10, "rollups_days": 365},
    "tenants": {"acme": {"retention": {"bodies_days": 1, "rows_days": 30}}},
    "retention_batch": 2,
}


def test_ttls_per_tenant_over_the_default_in_bounded_batches(engine: Engine) -> None:
    seed(engine)
    before = counts(engine, "globex")
    job = RetentionJob(engine, storage(**CONFIG))
    done = asyncio.run(job.run(datetime.now(UTC)))
    # acme: bodies after 1 day (all but the newest), rows after 30 (the 400-day one)
    assert counts(engine, "acme")[:2] == (8, 1)
    # globex and initech: bodies after 3 days, rows after 10: five rows gone, one left old
    for tenant in ("globex", "initech"):
        assert counts(engine, tenant)[:2] == (4, 1)
    # rollups: their own TTL, the acme one too (it sets none of its own): the 400-day minute
    assert counts(engine, "globex")[2] == before[2] - 1
    assert counts(engine, "acme")[2] == before[2] - 1
    assert done.requests == 1 + 5 + 5 and done.rollups == 3
    assert done.bodies == 7 + 3 + 3  # globex/initech: 3 rows of 5 days left with bodies
    assert not done.more
    again = asyncio.run(job.run(datetime.now(UTC)))
    assert (again.bodies, again.requests, again.rollups) == (0, 0, 0)


def test_a_run_stops_after_max_batches_and_the_next_goes_on(engine: Engine) -> None:
    seed(engine)
    job = RetentionJob(engine, storage(**CONFIG), max_batches=1)
    first = asyncio.run(job.run(datetime.now(UTC)))
    assert first.more and first.requests <= 2 * 3
    for _ in range(10):
        asyncio.run(job.run(datetime.now(UTC)))
    assert counts(engine, "globex")[:2] == (4, 1)


def test_two_processes_at_once_do_the_work_once(engine: Engine, store_url: str) -> None:
    seed(engine)
    other = make_engine(store_url)
    try:
        a = RetentionJob(engine, storage(**CONFIG))
        b = RetentionJob(other, storage(**CONFIG))

        async def both() -> tuple[int, int]:
            now = datetime.now(UTC)
            x, y = await asyncio.gather(a.run(now), b.run(now))
            return x.requests + y.requests, x.bodies + y.bodies

        deleted, _nulled = asyncio.run(both())
        assert deleted == 11
        assert counts(engine, "acme")[:2] == (8, 1)
        assert counts(engine, "initech")[:2] == (4, 1)
        # the lease: one holder runs the job at a time
        assert asyncio.run(a.step()) is not None
        assert asyncio.run(b.step()) is None
        asyncio.run(a.stop())
        assert asyncio.run(b.step()) is not None
    finally:
        other.dispose()


def test_a_tenants_ttls_fall_back_key_by_key() -> None:
    config = storage(**CONFIG)
    assert effective(config, "acme").model_dump() == {
        "bodies_days": 1,
        "rows_days": 30,
        "rollups_days": 365,
    }
    assert effective(config, "globex").rows_days == 10
