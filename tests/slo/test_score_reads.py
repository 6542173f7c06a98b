"""The eval-score SLI read from `score_rollups` (slo/score_reads.py) on SQLite and
PostgreSQL: hand-computed counts over windows and per minute, a threshold against the
scorer's own pass, the windows the sums of the series, and the selectors and thresholds
it refuses."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from trimtab.evals.score_rollups import store_scores
from trimtab.slo.burn import Counts
from trimtab.slo.score_reads import (
    SCORE_SELECTOR_KEYS,
    score_series,
    score_windows,
    threshold_bin,
)
from trimtab.slo.spec import Selector

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SUPPORT = Selector(route="support")


def score(n: int, ago: int, value: float | None, passed: bool | None, **kw: Any) -> dict[str, Any]:
    at = END - timedelta(minutes=ago) + timedelta(seconds=n % 60)
    row: dict[str, Any] = {
        "request_id": f"req_{n:08d}", "scorer": "short", "suite": "support-live", "scope": "",
        "tenant": "acme", "route": "support", "version": "1", "value": value, "passed": passed,
        "reason": "", "request_at": at, "scored_at": END + timedelta(minutes=3),
    }  # fmt: skip
    row.update(kw)
    return row


ROWS = [
    # END: 3 valid (the null value is not), 2 at or above 0.7, 2 passed
    score(1, 0, 0.9, True), score(2, 0, 0.7, True), score(3, 0, 0.69, False),
    score(4, 0, None, None),
    # END-1: 0.29 on version 2, 1.0
    score(5, 1, 0.29, False, version="2"), score(6, 1, 1.0, True),
    # END-4: passed by the scorer's own bar, under 0.7
    score(7, 4, 0.5, True),
    # END-5: another tenant
    score(8, 5, 0.8, True, tenant="globex"),
    # END-59: the 60-minute window's first minute; END-60: outside it
    score(9, 59, 0.1, False), score(10, 60, 0.95, True),
    # none of these: another scorer, suite, route; a minute after END
    score(11, 0, 1.0, True, scorer="refuses"), score(12, 0, 0.0, False, suite="other"),
    score(13, 0, 0.0, False, route="billing"), score(14, -1, 0.0, False),
]  # fmt: skip


@pytest.fixture
def scored(engine: Engine) -> Engine:
    with engine.begin() as conn:
        store_scores(conn, ROWS)
    return engine


def windows(engine: Engine, selector: Selector, threshold: float | None) -> dict[int, Counts]:
    with engine.connect() as conn:
        return score_windows(
            conn, selector, "support-live", "short", threshold, END, [1, 5, 60], scope=""
        )


def test_windows_counted_by_hand(scored: Engine) -> None:
    assert windows(scored, SUPPORT, 0.7) == {1: Counts(2, 3), 5: Counts(3, 6), 60: Counts(4, 8)}
    # without a threshold, the scorer's own pass
    assert windows(scored, SUPPORT, None) == {1: Counts(2, 3), 5: Counts(4, 6), 60: Counts(5, 8)}
    acme = Selector(route="support", tenant="acme")
    assert windows(scored, acme, 0.7)[60] == Counts(3, 7)
    v2 = Selector(route="support", version="2")
    assert windows(scored, v2, 0.29)[60] == Counts(1, 1)  # 0.29 is at 0.29
    assert windows(scored, v2, 0.3)[60] == Counts(0, 1)
    assert windows(scored, Selector(tenant="globex"), 0.0)[60] == Counts(1, 1)
    assert windows(scored, Selector(route="nothing"), 0.7)[60] == Counts(0, 0)  # no data


def test_the_series_per_minute_and_the_windows_are_its_sums(scored: Engine) -> None:
    with scored.connect() as conn:
        got = score_series(
            conn, SUPPORT, "support-live", "short", 0.7, END - timedelta(minutes=59), END, scope=""
        )
    assert got == {m(0): Counts(2, 3), m(1): Counts(1, 2), m(4): Counts(0, 1),
                   m(5): Counts(1, 1), m(59): Counts(0, 1)}  # fmt: skip
    assert sum(got.values(), Counts(0, 0)) == windows(scored, SUPPORT, 0.7)[60]


def m(ago: int) -> datetime:
    return END - timedelta(minutes=ago)


@pytest.mark.parametrize("threshold", [None, 0.0, 0.35, 1.0])
def test_windows_equal_the_sum_of_the_series_on_random_scores(
    engine: Engine, threshold: float | None
) -> None:
    rng = random.Random(1400 + int((threshold or 0) * 100))
    rows = []
    for n in range(1500):  # over five days: the windows read day, hour and minute rows
        value = None if rng.random() < 0.05 else rng.choice([rng.random(), 0.35, 1.0, 0.0])
        ago = rng.choice([rng.randrange(-2, 200), rng.randrange(5 * 1440)])
        rows.append(score(n, ago, value, rng.random() < 0.6,
                          version=rng.choice(["1", "2"])))  # fmt: skip
    with engine.begin() as conn:
        for i in range(0, len(rows), 300):  # in batches, as the scorer stores them
            store_scores(conn, rows[i : i + 300])
    spans = [1, 7, 30, 61, 180, 721, 1441, 3 * 1440 + 17, 5 * 1440]
    with engine.connect() as conn:
        got = score_windows(conn, SUPPORT, "support-live", "short", threshold, END, spans, scope="")
        series = score_series(
            conn,
            SUPPORT,
            "support-live",
            "short",
            threshold,
            END - timedelta(days=5),
            END,
            scope="",
        )
    for w in spans:
        cut = END - timedelta(minutes=w - 1)
        summed = sum((c for at, c in series.items() if at >= cut), Counts(0, 0))
        assert got[w] == summed
        # and against the scores themselves
        inside = [r for r in rows if r["value"] is not None
                  and cut <= r["request_at"].replace(second=0) <= END]  # fmt: skip
        good = [r for r in inside
                if (r["passed"] if threshold is None else r["value"] >= threshold)]  # fmt: skip
        assert got[w] == Counts(len(good), len(inside))


def test_what_it_refuses(scored: Engine) -> None:
    assert frozenset({"route", "tenant", "version"}) == SCORE_SELECTOR_KEYS
    for selector in (Selector(route="support", model="gpt-mock"), Selector(feature="faq")):
        with pytest.raises(ValueError, match="cannot select by"):
            windows(scored, selector, 0.7)
    for threshold in (0.705, -0.01, 1.01):
        with pytest.raises(ValueError, match=r"not a multiple of 0\.01"):
            threshold_bin(threshold)
    assert threshold_bin(0.29) == 29 and threshold_bin(0.7) == 70
