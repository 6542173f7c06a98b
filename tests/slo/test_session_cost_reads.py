"""The cost-per-session SLI read from `session_costs` (slo/session_cost_reads.py) on
SQLite and PostgreSQL, written by the real telemetry writer: hand-computed counts, a
session counted once in the minute it started though it crosses a window's cut, a
session turning from good to bad and never back, the windows the sums of the series,
eval traffic left out, and the selectors it refuses."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from trimtab.slo.burn import Counts
from trimtab.slo.session_cost_reads import (
    SESSION_COST_SELECTOR_KEYS,
    session_cost_series,
    session_cost_windows,
)
from trimtab.slo.spec import Selector
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SUPPORT = Selector(route="support")
SPANS = [1, 5, 60]


def rec(n: int, ago: int, session: str | None, cost: float, **kw: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "id": f"req_{n:08d}", "started_at": (END - timedelta(minutes=ago)).timestamp() + 7,
        "api": "openai", "operation": "chat", "tenant": "acme", "request_model": "gpt-mock",
        "route": "support", "status_code": 200, "duration_ms": 50.0, "cost_usd": cost,
        "session": session,
    }  # fmt: skip
    fields.update(kw)
    return RequestRecord(**fields)


TRAFFIC = [
    # s1 starts 10 minutes before END, its second request inside the 5-minute window:
    # it counts once, at END-10, within the ceiling (0.4)
    rec(1, 10, "s1", 0.2), rec(2, 2, "s1", 0.2),
    # s2 starts at END-3: 0.6, over
    rec(3, 3, "s2", 0.3), rec(4, 0, "s2", 0.3),
    # s3 at END: 0.1 + 0.2 + 0.2, the ceiling in floats (0.5000000000000001): within
    rec(5, 0, "s3", 0.1), rec(6, 0, "s3", 0.2), rec(7, 0, "s3", 0.2),
    # s4 on billing only; s1 on billing too (its own session there, at END-1)
    rec(8, 1, "s4", 0.9, route="billing"), rec(9, 1, "s1", 0.1, route="billing"),
    # globex's s1 at END-59, over; END-60 outside the hour
    rec(10, 59, "s1", 2.0, tenant="globex"), rec(11, 60, "s9", 0.1),
    # no session; an eval run's session
    rec(12, 0, None, 9.0), rec(13, 0, "s5", 0.1, feature="eval:run_0123456789abcdef"),
]  # fmt: skip


@pytest.fixture
def recorded(engine: Engine) -> Engine:
    store = TelemetryStore(engine)
    store.write(TRAFFIC[:6])  # two batches: a session split between them
    store.write(TRAFFIC[6:])
    return engine


def windows(engine: Engine, selector: Selector, ceiling: float = 0.5) -> dict[int, Counts]:
    with engine.connect() as conn:
        return session_cost_windows(conn, selector, ceiling, END, SPANS)


def series(engine: Engine, selector: Selector, ceiling: float = 0.5) -> dict[datetime, Counts]:
    with engine.connect() as conn:
        return session_cost_series(conn, selector, ceiling, END - timedelta(minutes=59), END)


def m(ago: int) -> datetime:
    return END - timedelta(minutes=ago)


def test_sessions_counted_by_hand(recorded: Engine) -> None:
    # END: s3 good; END-3: s2 bad; END-10: s1 good; END-59: globex's s1 bad
    assert windows(recorded, SUPPORT) == {1: Counts(1, 1), 5: Counts(1, 2), 60: Counts(2, 4)}
    assert windows(recorded, Selector(route="support", tenant="acme"))[60] == Counts(2, 3)
    assert windows(recorded, Selector(route="billing")) == {
        1: Counts(0, 0), 5: Counts(1, 2), 60: Counts(1, 2)
    }  # fmt: skip
    assert windows(recorded, Selector(tenant="acme"))[60] == Counts(3, 5)  # both routes
    assert windows(recorded, SUPPORT, ceiling=0.3)[60] == Counts(0, 4)
    assert windows(recorded, SUPPORT, ceiling=2.0)[60] == Counts(4, 4)
    eval_run = Selector(feature="eval:run_0123456789abcdef")  # not recorded at all
    assert windows(recorded, eval_run)[1] == Counts(0, 0)


def test_the_series_and_the_windows_are_its_sums(recorded: Engine) -> None:
    got = series(recorded, SUPPORT)
    assert got == {m(0): Counts(1, 1), m(3): Counts(0, 1), m(10): Counts(1, 1),
                   m(59): Counts(0, 1)}  # fmt: skip
    assert sum(got.values(), Counts(0, 0)) == windows(recorded, SUPPORT)[60]


def test_a_session_turns_bad_in_the_minute_it_started_and_never_back(recorded: Engine) -> None:
    store = TelemetryStore(recorded)
    store.write([rec(20, 0, "s1", 0.15)])  # s1 reaches 0.55: bad, still at END-10
    assert series(recorded, SUPPORT)[m(10)] == Counts(0, 1)
    assert windows(recorded, SUPPORT) == {1: Counts(1, 1), 5: Counts(1, 2), 60: Counts(1, 4)}
    store.write([rec(21, 0, "s1", 0.0)])  # a free request: costs never fall
    assert series(recorded, SUPPORT)[m(10)] == Counts(0, 1)


def test_windows_equal_the_sum_of_the_series_on_random_sessions(engine: Engine) -> None:
    rng = random.Random(1402)
    records = []
    n = 0
    for s in range(150):
        start = rng.randrange(-2, 200)
        for _ in range(rng.randint(1, 5)):
            n += 1
            ago = max(-5, start - rng.randrange(30))  # later requests, some past END
            records.append(rec(n, ago, f"s{s}", rng.choice([0.0, 0.05, 0.1, 0.3])))
    rng.shuffle(records)
    store = TelemetryStore(engine)
    for i in range(0, len(records), 97):
        store.write(records[i : i + 97])
    spans = [1, 7, 30, 61, 180]
    with engine.connect() as conn:
        got = session_cost_windows(conn, SUPPORT, 0.4, END, spans)
        per = session_cost_series(conn, SUPPORT, 0.4, END - timedelta(hours=4), END)
    firsts: dict[str, datetime] = {}
    costs: dict[str, float] = {}
    for r in records:
        at = datetime.fromtimestamp(r.started_at, UTC).replace(second=0)
        assert r.session is not None
        firsts[r.session] = min(firsts.get(r.session, at), at)
        costs[r.session] = costs.get(r.session, 0.0) + (r.cost_usd or 0.0)
    for w in spans:
        cut = END - timedelta(minutes=w - 1)
        assert got[w] == sum((c for at, c in per.items() if at >= cut), Counts(0, 0))
        inside = [s for s, at in firsts.items() if cut <= at <= END]
        good = [s for s in inside if costs[s] <= 0.4 + 1e-9]
        assert got[w] == Counts(len(good), len(inside))


def test_what_it_refuses(recorded: Engine) -> None:
    assert frozenset({"route", "tenant", "feature"}) == SESSION_COST_SELECTOR_KEYS
    for selector in (Selector(route="support", model="gpt-mock"), Selector(version="2")):
        with pytest.raises(ValueError, match="cannot select by"):
            windows(recorded, selector)
