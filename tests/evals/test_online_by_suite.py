"""Online scores keyed by their suite (migration 0018) on SQLite and PostgreSQL: two suites
with a scorer of the same name both keep their score of one request and both SLIs count
it, a shared suite and a tenant's of the same name too, the metric tells them apart, and
racing writers of one suite store each score once and count it once."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from tests.evals.online_support import answer, suites, write
from tests.slo.support import request
from trimtab.evals.online import OnlineScoring, online_metric
from trimtab.evals.score_rollups import store_scores
from trimtab.evals.suite_store import SuiteStore
from trimtab.slo.burn import Counts
from trimtab.slo.score_reads import score_windows
from trimtab.slo.spec import Selector
from trimtab.store.tables import online_scores, score_rollups

NOW = datetime.now(UTC).replace(microsecond=0)
# another suite of the route with a scorer named `short` too, stricter than support-live's
TONE = """
evals:
  support-tone:
    route: support
    dataset: golden
    scorers:
      - {name: short, kind: length, max: 10}
    online: {sample: 1.0, scorers: [short]}
"""
# acme's own suite named as the shared one, its `short` the stricter one
ACME_LIVE = TONE.replace("support-tone", "support-live")
SUPPORT = Selector(route="support")


def stored(engine: Engine) -> dict[tuple[str, str, str, str], float | None]:
    s = online_scores.c
    with engine.connect() as conn:
        return {
            (r, scope, suite, scorer): value
            for r, scope, suite, scorer, value in conn.execute(
                select(s.request_id, s.scope, s.suite, s.scorer, s.value)
            )
        }


def sli(
    engine: Engine, suite: str, scorer: str, selector: Selector = SUPPORT, scope: str = ""
) -> Counts:
    with engine.connect() as conn:
        end = NOW + timedelta(minutes=1)
        return score_windows(conn, selector, suite, scorer, None, end, [60], scope=scope)[60]


async def test_two_suites_with_a_scorer_of_one_name_both_keep_their_score(engine: Engine) -> None:
    store = SuiteStore(engine)
    store.apply([*suites(), *suites(TONE)], scope="", actor="ml@acme")
    store.apply(suites(ACME_LIVE), scope="acme", actor="lead@acme")
    t = NOW.timestamp()
    write(engine, [request(1, t - 30, response_body=answer("Your parcel ships today.")),
                   request(2, t - 20, tenant="globex", response_body=answer("Done."))])  # fmt: skip
    # two processes at once, as two servers' scorers reading the same requests
    first, second = (OnlineScoring(engine, since=NOW - timedelta(minutes=5)) for _ in "ab")
    await asyncio.gather(first.cycle(NOW), second.cycle(NOW))
    assert stored(engine) == {
        ("req_00000001", "", "support-live", "refuses"): 1.0,
        ("req_00000001", "", "support-live", "short"): 1.0,  # 24 characters, at most 40
        ("req_00000001", "", "support-tone", "short"): 0.0,  # at most 10
        ("req_00000001", "acme", "support-live", "short"): 0.0,  # acme's, at most 10
        ("req_00000002", "", "support-live", "refuses"): 1.0,  # globex: the shared suites
        ("req_00000002", "", "support-live", "short"): 1.0,
        ("req_00000002", "", "support-tone", "short"): 1.0,
    }
    # each SLI counts each of its suite's scores once: support-tone's both requests; the
    # shared support-live's two, acme's support-live (its scope and name, migration 0019) one
    acme = Selector(route="support", tenant="acme")
    assert sli(engine, "support-tone", "short") == Counts(good=1, valid=2)
    assert sli(engine, "support-live", "short") == Counts(good=2, valid=2)
    assert sli(engine, "support-live", "short", acme) == Counts(good=1, valid=1)
    assert sli(engine, "support-live", "short", acme, scope="acme") == Counts(good=0, valid=1)
    assert sli(engine, "support-live", "refuses") == Counts(good=2, valid=2)

    since, hour = NOW - timedelta(hours=2), timedelta(hours=1)
    metric = online_metric(engine, "support", since, hour, "acme")
    by = {(m["suite"], m["suite_tenant"], m["scorer"]): (m["scored"], m["mean"]) for m in metric}
    assert by == {
        ("support-live", None, "refuses"): (1, 1.0),
        ("support-live", None, "short"): (1, 1.0),
        ("support-live", "acme", "short"): (1, 0.0),
        ("support-tone", None, "short"): (1, 0.0),
    }
    tone = online_metric(engine, "support", since, hour, None, suite="support-tone")
    assert {(m["suite"], m["scorer"], m["scored"], m["mean"]) for m in tone} == {
        ("support-tone", "short", 2, 0.5)
    }


def score(n: int, suite: str, value: float, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": f"req_{n:08d}", "scorer": "short", "suite": suite, "scope": "",
        "tenant": "acme", "route": "support", "version": "1", "value": value,
        "passed": value >= 0.5, "reason": "", "request_at": NOW - timedelta(seconds=n),
        "scored_at": NOW,
    }  # fmt: skip
    row.update(kw)
    return row


def test_racing_writers_of_one_suite_store_each_score_once(engine: Engine) -> None:
    rows = [score(n, suite, (n % 4) / 4) for n in range(30) for suite in ("live", "tone")]
    rows.append(score(0, "live", 0.0, scope="acme"))  # acme's suite of the same name
    writers, gate = 4, threading.Barrier(4)
    new: list[int] = []

    def write_all() -> None:
        gate.wait()
        with engine.begin() as conn:
            new.append(store_scores(conn, rows))

    threads = [threading.Thread(target=write_all) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(new) == writers and sum(new) == len(rows) == 61  # one writer stored each
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(online_scores)) == 61
    c = score_rollups.c
    query = (
        select(c.scope, c.suite, c.span, func.sum(c.count), func.sum(c.passed))
        .group_by(c.scope, c.suite, c.span)
        .order_by(c.scope, c.suite, c.span)
    )
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(query)]
    # per span: tone's 30 scores, 14 passed (values 0.5 and 0.75); live's 30, and acme's
    # live's 1 in rows of its own
    spans = (1, 60, 1440)
    assert got == [
        *(("", "live", span, 30, 14) for span in spans),
        *(("", "tone", span, 30, 14) for span in spans),
        *(("acme", "live", span, 1, 0) for span in spans),
    ]
