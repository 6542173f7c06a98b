"""The sessions' costs (telemetry/session_costs.py) as the writer's upsert leaves them,
against a reference computed here from all the records at once: SQLite and PostgreSQL
store the same rows for the same batches (records earlier than a session's first minute
among them), racing writers lose no batch, rows stored before in SQLAlchemy's form merge
in place, and the batch's digests never merge two sessions."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, text

from tests.support import new_database
from trimtab.store.engine import make_engine, migrate
from trimtab.store.tables import session_costs
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.session_costs import fold, session_key
from trimtab.telemetry.store import TelemetryStore
from trimtab.testing.postgres_server import PostgresServer

T0 = datetime(2026, 12, 1, 11, 0, 0, tzinfo=UTC)
Row = tuple[datetime, datetime, int, float]


def rec(n: int, minute: float, session: str | None, **kw: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "id": f"req_scw_{n:07d}", "started_at": (T0 + timedelta(minutes=minute)).timestamp(),
        "api": "openai", "operation": "chat", "tenant": "acme", "request_model": "gpt-mock",
        "route": "support", "status_code": 200, "duration_ms": 50.0, "cost_usd": 0.01,
        "session": session,
    }  # fmt: skip
    fields.update(kw)
    return RequestRecord(**fields)


def batches(seed: int, count: int = 12) -> list[list[RequestRecord]]:
    """Batches whose sessions span batches, tenants, routes and features, with records
    from before a session's first minute, eval traffic, no session and no price."""
    rng = random.Random(seed)
    out, n = [], seed * 100_000  # the seeds' ids apart
    for _ in range(count):
        batch = []
        for _ in range(rng.randint(1, 40)):
            n += 1
            batch.append(
                rec(
                    n,
                    rng.uniform(0, 30),
                    rng.choice([None, *(f"s{i}" for i in range(25))]),
                    tenant=rng.choice(["acme", "globex"]),
                    route=rng.choice(["support", "billing", None]),
                    feature=rng.choice([None, "faq", "eval:nightly"]),
                    cost_usd=rng.choice([None, 0.0, round(rng.uniform(0, 0.05), 6)]),
                )
            )
        out.append(batch)
    return out


def reference(records: list[RequestRecord]) -> dict[tuple[str, str, str, str], Row]:
    """The rows the writer should leave, from all the records at once."""
    out: dict[tuple[str, str, str, str], Row] = {}
    for r in records:
        if r.session is None or (r.feature or "").startswith("eval:"):
            continue
        key = (r.tenant, r.route or "", r.feature or "", session_key(r.tenant, r.session))
        at = datetime.fromtimestamp(r.started_at, UTC).replace(second=0, microsecond=0)
        first, last, n, cost = out.get(key, (at, at, 0, 0.0))
        out[key] = (min(first, at), max(last, at), n + 1, round(cost + (r.cost_usd or 0), 9))
    return out


def rows(engine: Engine) -> dict[tuple[str, str, str, str], Row]:
    with engine.connect() as conn:
        return {
            (r.tenant, r.route, r.feature, r.session_key): (
                r.first_minute.replace(tzinfo=UTC),
                r.last_minute.replace(tzinfo=UTC),
                r.requests,
                round(r.cost_usd, 9),
            )
            for r in conn.execute(select(session_costs))
        }


def written(engine: Engine, seed: int) -> None:
    store = TelemetryStore(engine)
    for batch in batches(seed):
        store.write(batch)


def test_sqlite_and_postgresql_store_the_same_rows(
    sqlite_url: str, postgres_server: PostgresServer, engines: list[Engine]
) -> None:
    lite = make_engine(sqlite_url)
    pg = make_engine(new_database(postgres_server))
    engines.extend([lite, pg])
    for made in engines:
        migrate(made)
    for seed in (1, 2):  # the second's batches merge into the first's rows
        written(lite, seed)
        written(pg, seed)
    everything = [r for seed in (1, 2) for batch in batches(seed) for r in batch]
    expected = reference(everything)
    assert len(expected) > 100
    assert rows(lite) == expected
    assert rows(pg) == expected


def test_racing_writers_lose_no_batch(engine: Engine) -> None:
    # two writers on one store, their batches upserting the same sessions at once
    mine, theirs = batches(3, count=20), batches(4, count=20)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def write(work: list[list[RequestRecord]]) -> None:
        store = TelemetryStore(engine)
        start.wait()
        try:
            for batch in work:
                store.write(batch)
        except BaseException as exc:  # the assertion below names it
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in (mine, theirs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert rows(engine) == reference([r for b in mine + theirs for r in b])


def test_rows_stored_in_sqlalchemys_form_merge_in_place(engine: Engine) -> None:
    # a row as SQLAlchemy binds it (the writer before the driver's executemany), then a
    # batch with a record from before its first minute and one after its last
    at = T0 + timedelta(minutes=10)
    with engine.begin() as conn:
        conn.execute(
            insert(session_costs),
            {"tenant": "acme", "route": "support", "feature": "", "cost_usd": 0.5,
             "session_key": session_key("acme", "s1"), "first_minute": at,
             "last_minute": at, "requests": 2},
        )  # fmt: skip
    TelemetryStore(engine).write([rec(1, 9.5, "s1"), rec(2, 10.2, "s1"), rec(3, 70.9, "s1")])
    key = ("acme", "support", "", session_key("acme", "s1"))
    assert rows(engine) == {key: (T0 + timedelta(minutes=9), T0 + timedelta(minutes=70), 5, 0.53)}
    if engine.dialect.name == "sqlite":  # the very text SQLAlchemy writes and compares
        column = session_costs.c.first_minute.type
        bind = column.dialect_impl(engine.dialect).bind_processor(engine.dialect)
        assert bind is not None
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT first_minute, last_minute FROM session_costs"))
            assert stored.one() == (
                bind(T0 + timedelta(minutes=9)),
                bind(T0 + timedelta(minutes=70)),
            )


def test_a_batch_never_merges_two_sessions() -> None:
    # the same id in two tenants, two ids in one, in interleaved runs
    order = ["a", "a", "b", "a", "b", "b", "a"]
    records = [rec(i, 0, s, tenant=t) for t in ("acme", "globex") for i, s in enumerate(order)]
    folded = fold(records)
    assert {(k[0], k[3]): d.requests for k, d in folded.items()} == {
        ("acme", session_key("acme", "a")): 4,
        ("acme", session_key("acme", "b")): 3,
        ("globex", session_key("globex", "a")): 4,
        ("globex", session_key("globex", "b")): 3,
    }
    assert len({k[3] for k in folded}) == 4
