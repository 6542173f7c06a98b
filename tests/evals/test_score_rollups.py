"""The online scores' SLI rollups (evals/score_rollups.py) on SQLite and PostgreSQL: the
value bins, the rows folded in the transaction that stores the scores, in the minute of
the request, a score stored twice counted once, and retention."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from tests.evals.online_support import SUITE, answer, suites, write
from tests.slo.support import request
from trimtab.evals.online import OnlineScoring
from trimtab.evals.score_rollups import (
    BINS,
    UNSCORED,
    delete_score_rollups,
    store_scores,
    value_bin,
)
from trimtab.evals.suite_store import SuiteStore
from trimtab.slo import score_reads
from trimtab.slo.spec import SCORE_BINS
from trimtab.store.tables import online_scores, score_rollups
from trimtab.telemetry.retention import Tenants

AT = datetime(2026, 12, 1, 11, 58, 20, tzinfo=UTC)


def score(n: int, value: float | None, passed: bool | None, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": f"req_{n:08d}", "scorer": "short", "suite": "support-live", "scope": "",
        "tenant": "acme", "route": "support", "version": "1", "value": value, "passed": passed,
        "reason": "", "request_at": AT, "scored_at": AT + timedelta(minutes=5),
    }  # fmt: skip
    row.update(kw)
    return row


def rollup_rows(engine: Engine, span: int = 1) -> dict[tuple[Any, ...], tuple[int, int]]:
    c = score_rollups.c
    query = select(c.scorer, c.minute, c.version, c.bin, c.count, c.passed).where(c.span == span)
    with engine.connect() as conn:
        return {
            (scorer, minute.replace(tzinfo=UTC), version, b): (n, passed)
            for scorer, minute, version, b, n, passed in conn.execute(query)
        }


def test_a_value_falls_in_its_hundredth_and_a_threshold_splits_the_bins_exactly() -> None:
    assert [value_bin(v) for v in (0.0, 0.29, 0.7, 0.705, 1.0)] == [0, 29, 70, 70, 100]
    assert (value_bin(None), value_bin(float("nan")), value_bin(-0.5), value_bin(1.5)) == (
        UNSCORED, UNSCORED, 0, 100
    )  # fmt: skip
    assert SCORE_BINS == BINS == 100  # the reads bin as the writer does
    # every value and threshold in hundredths: bin >= threshold's bin exactly when v >= t
    for j in range(101):
        for k in range(101):
            v, t = j / 100, k / 100
            assert (value_bin(v) >= score_reads.threshold_bin(t)) == (v >= t), (v, t)
    rng = random.Random(14)
    for _ in range(20_000):
        v, t = rng.random(), rng.randrange(101) / 100
        if abs(v - t) > 1e-8:
            assert (value_bin(v) >= score_reads.threshold_bin(t)) == (v >= t), (v, t)


def test_scores_stored_twice_count_once(engine: Engine) -> None:
    rows = [score(1, 0.9, True), score(2, 0.9, True), score(3, 0.2, False),
            score(4, None, None), score(1, 1.0, True, scorer="refuses")]  # fmt: skip
    with engine.begin() as conn:
        assert store_scores(conn, rows) == 5
    with engine.begin() as conn:  # again, and one new: only the new one counts
        assert store_scores(conn, [*rows, score(5, 0.9, False)]) == 1
    minute = AT.replace(second=0)
    assert rollup_rows(engine) == {
        ("short", minute, "1", 90): (3, 2),  # the scorer's own pass: 2 of 3
        ("short", minute, "1", 20): (1, 0),
        ("short", minute, "1", UNSCORED): (1, 0),
        ("refuses", minute, "1", 100): (1, 1),
    }
    # the same counts in the hour's and the day's rows
    for span, start in ((60, minute.replace(minute=0)), (1440, minute.replace(hour=0, minute=0))):
        assert rollup_rows(engine, span) == {
            (scorer, start, v, b): n for (scorer, _, v, b), n in rollup_rows(engine).items()
        }


def test_a_rolled_back_store_leaves_no_rollup(engine: Engine) -> None:
    try:
        with engine.begin() as conn:
            store_scores(conn, [score(1, 0.9, True)])
            raise RuntimeError("the transaction fails after the scores")
    except RuntimeError:
        pass
    assert rollup_rows(engine) == {}
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(online_scores)) == 0


def test_late_scores_land_in_the_minute_of_their_request(engine: Engine) -> None:
    SuiteStore(engine).apply(suites(SUITE), scope="", actor="ml@acme")
    t = AT.timestamp()
    ships, sorry = answer("Your parcel ships today."), answer("I'm sorry, I can't.")
    write(engine, [request(1, t - 120, response_body=ships),
                   request(2, t, version="2", response_body=sorry)])  # fmt: skip
    scoring = OnlineScoring(engine, since=AT - timedelta(minutes=5))
    later = AT + timedelta(minutes=42)  # scored 42 minutes after the requests
    assert asyncio.run(scoring.cycle(later)) == 2
    first, second = AT.replace(second=0) - timedelta(minutes=2), AT.replace(second=0)
    assert rollup_rows(engine) == {
        ("refuses", first, "1", 100): (1, 1),
        ("short", first, "1", 100): (1, 1),
        ("refuses", second, "2", 0): (1, 0),
        ("short", second, "2", 100): (1, 1),
    }


def test_retention_deletes_the_minutes_before_the_cut(engine: Engine) -> None:
    old = AT - timedelta(days=400)
    rows = [score(1, 0.9, True, request_at=old), score(2, 0.5, True, request_at=old),
            score(3, 0.9, True, tenant="globex", request_at=old), score(4, 0.9, True)]  # fmt: skip
    with engine.begin() as conn:
        store_scores(conn, rows)
    cut = AT - timedelta(days=365)
    # acme's two old scores: two bins, each in a minute, hour and day row
    assert delete_score_rollups(engine, Tenants(but=["globex"]), cut, 4) == 4
    assert delete_score_rollups(engine, Tenants(but=["globex"]), cut, 4) == 2
    assert delete_score_rollups(engine, Tenants(but=["globex"]), cut, 4) == 0
    with engine.connect() as conn:
        left = sorted(conn.execute(select(score_rollups.c.tenant, score_rollups.c.minute)))
    assert [(tenant, m.replace(tzinfo=UTC).year) for tenant, m in left] == [
        *[("acme", 2026)] * 3, *[("globex", 2025)] * 3
    ]  # fmt: skip
