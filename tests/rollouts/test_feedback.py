"""rollouts/feedback.py: a request's first negative feedback counts once in its minute's
rollup row (a second one, a positive one, or an add racing another do not count again),
and marks the row's hour and day for the compaction. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from tests.slo.support import NOW, request
from trimtab.audit.log import Actor
from trimtab.rollouts.feedback import FeedbackStore
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups, rollups_hour_dirty
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.store import TelemetryStore

BY = Actor("key_app", "app@acme", "acme")
MINUTE = NOW.replace(second=0, microsecond=0)


def _negatives(engine: Engine) -> dict[tuple[datetime, int, str], int]:
    c = rollups.c
    with engine.connect() as conn:
        got = conn.execute(select(c.minute, c.status_code, c.tenant, c.negative_feedback))
        return {(as_utc(m), s, t): n for m, s, t, n in got}


def _marks(engine: Engine) -> set[tuple[datetime, int]]:
    d = rollups_hour_dirty.c
    with engine.connect() as conn:
        return {(as_utc(h), int(n)) for h, n in conn.execute(select(d.hour, d.hours))}


def test_the_first_negative_feedback_of_a_request_counts_once(engine: Engine) -> None:
    t = NOW.timestamp() - 20
    TelemetryStore(engine).write(
        [
            request(1, t),
            request(2, t),
            request(3, t),
            request(4, t, status_code=502),
            request(5, t, tenant="globex"),
        ]
    )
    compact(engine, datetime(2026, 12, 3, tzinfo=UTC), limit=100)  # the writer's marks gone
    assert _marks(engine) == set()
    store = FeedbackStore(engine)
    store.add("req_00000001", "acme", 0.0, "wrong", False, BY)  # thumbs down: counts
    store.add("req_00000001", "acme", 0.0, "still wrong", False, BY)  # a second: not again
    store.add("req_00000001", None, 0.2, None, True, BY)  # nor a third, escalated
    store.add("req_00000002", "acme", 1.0, None, False, BY)  # thumbs up: not negative
    store.add("req_00000002", "acme", 0.9, None, True, BY)  # escalated: negative, the first
    store.add("req_00000003", "acme", 0.5, None, False, BY)  # 0.5 is not below 0.5
    store.add("req_00000004", "acme", 0.0, None, False, BY)  # the 502's own row
    store.add("req_00000005", "globex", 0.0, None, False, BY)
    assert _negatives(engine) == {
        (MINUTE, 200, "acme"): 2,
        (MINUTE, 502, "acme"): 1,
        (MINUTE, 200, "globex"): 1,
    }
    hour = MINUTE.replace(minute=0)
    assert _marks(engine) == {(hour, 1), (hour.replace(hour=0), 24)}


def test_concurrent_adds_on_one_request_count_it_once(engine: Engine) -> None:
    TelemetryStore(engine).write([request(n, NOW.timestamp() - 5) for n in range(1, 4)])
    store = FeedbackStore(engine)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def add(n: int) -> None:
        start.wait()
        try:
            store.add(f"req_0000000{1 + n % 3}", "acme", 0.0, f"thread {n}", n % 2 == 0, BY)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _negatives(engine) == {(MINUTE, 200, "acme"): 3}  # three requests, eight adds
