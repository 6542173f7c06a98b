"""The sessions' costs (telemetry/session_costs.py) written by the real telemetry writer
on SQLite and PostgreSQL: per tenant, route and feature, the first and last minute, the
requests and their spend across batches, a replay counted once, an earlier record
moving the first minute, the id kept only as a digest, and retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from trimtab.config import parse_config
from trimtab.privacy.retention import RetentionJob
from trimtab.store.tables import session_costs
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.retention import Tenants, delete_session_costs
from trimtab.telemetry.session_costs import session_key
from trimtab.telemetry.store import TelemetryStore

T0 = datetime(2026, 12, 1, 11, 0, 10, tzinfo=UTC)


def rec(
    n: int, minute: int, session: str | None, cost: float | None = 0.1, **kw: Any
) -> RequestRecord:
    fields: dict[str, Any] = {
        "id": f"req_sc_{n:06d}", "started_at": (T0 + timedelta(minutes=minute)).timestamp(),
        "api": "openai", "operation": "chat", "tenant": "acme", "request_model": "gpt-mock",
        "route": "support", "status_code": 200, "duration_ms": 50.0, "cost_usd": cost,
        "session": session,
    }  # fmt: skip
    fields.update(kw)
    return RequestRecord(**fields)


def rows(engine: Engine) -> dict[tuple[str, str, str, str], tuple[int, int, int, float]]:
    """(tenant, route, feature, key) -> (first minute, last minute as minutes after T0's,
    requests, cost)."""
    base = T0.replace(second=0)
    with engine.connect() as conn:
        return {
            (r.tenant, r.route, r.feature, r.session_key): (
                int((r.first_minute.replace(tzinfo=UTC) - base).total_seconds() // 60),
                int((r.last_minute.replace(tzinfo=UTC) - base).total_seconds() // 60),
                r.requests,
                round(r.cost_usd, 9),
            )
            for r in conn.execute(select(session_costs))
        }


def key(session: str, tenant: str = "acme") -> str:
    return session_key(tenant, session)


def test_sessions_are_summed_across_batches_per_route_and_feature(engine: Engine) -> None:
    store = TelemetryStore(engine)
    store.write([rec(1, 0, "s1"), rec(2, 3, "s1", cost=0.25), rec(3, 3, "s2"),
                 rec(4, 4, None), rec(5, 4, "s1", route="billing"),
                 rec(6, 5, "s1", tenant="globex", cost=None),
                 rec(7, 6, "s2", feature="faq")])  # fmt: skip
    store.write([rec(8, 9, "s1", cost=0.05), rec(9, 2, "s2", status_code=502, cost=0.0)])
    assert rows(engine) == {
        ("acme", "support", "", key("s1")): (0, 9, 3, 0.4),
        ("acme", "support", "", key("s2")): (2, 3, 2, 0.1),  # a record from earlier: moved
        ("acme", "billing", "", key("s1")): (4, 4, 1, 0.1),  # another route: its own
        ("acme", "support", "faq", key("s2")): (6, 6, 1, 0.1),
        ("globex", "support", "", key("s1", "globex")): (5, 5, 1, 0.0),  # no price: 0
    }
    assert len(key("s1")) == 32 and key("s1") != key("s1", "globex")


def test_a_replayed_batch_counts_once(engine: Engine) -> None:
    store = TelemetryStore(engine)
    batch = [rec(1, 0, "s1"), rec(2, 1, "s1")]
    store.write(batch)
    assert store.write([*batch, rec(3, 2, "s1")], skip_existing=True) == 1
    assert rows(engine) == {("acme", "support", "", key("s1")): (0, 2, 3, 0.3)}


def test_a_failed_batch_leaves_no_session(engine: Engine) -> None:
    store = TelemetryStore(engine)
    store.write([rec(1, 0, "s1")])
    with pytest.raises(IntegrityError):
        store.write([rec(2, 1, "s1"), rec(1, 1, "s1")])  # a duplicate id fails the insert
    assert rows(engine) == {("acme", "support", "", key("s1")): (0, 0, 1, 0.1)}


def test_retention_deletes_a_session_once_all_of_it_is_older(engine: Engine) -> None:
    old = -400 * 24 * 60  # minutes: 400 days before T0
    store = TelemetryStore(engine)
    store.write([rec(1, old, "gone"), rec(2, old, "long"), rec(3, 0, "long"),
                 rec(4, old, "gone", tenant="globex"), rec(5, 0, "new")])  # fmt: skip
    cut = T0 - timedelta(days=365)
    assert delete_session_costs(engine, Tenants(but=["globex"]), cut, 10) == 1
    assert delete_session_costs(engine, Tenants(but=["globex"]), cut, 10) == 0
    assert {k[3] for k in rows(engine)} == {key("long"), key("new"), key("gone", "globex")}
    # the retention job, with the rollups' TTL
    config = parse_config({"storage": {"retention": {"rollups_days": 365}}}).storage
    done = asyncio.run(RetentionJob(engine, config).run(T0))
    assert done.sli_rows == 1  # globex's
    assert {k[3] for k in rows(engine)} == {key("long"), key("new")}
