"""Online scoring: the sample, the bounded queue and the budget, scores stored against the
request once, eval runs' calls left out, the metric per version over time; on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from tests.evals import scorer_functions
from tests.evals.online_support import SUITE, answer, suites, write
from tests.slo.support import request
from trimtab.evals.online import OnlineScoring, online_metric, sampled
from trimtab.evals.online_scorers import python_allowed
from trimtab.evals.suite_store import SuiteStore
from trimtab.evals.suites import SuitesError
from trimtab.store.tables import online_scores

NOW = datetime.now(UTC).replace(microsecond=0)


def test_the_sample_is_the_same_everywhere_and_near_its_share() -> None:
    ids = [f"req_{i:016x}" for i in range(10_000)]
    picked = [i for i in ids if sampled(i, 0.05)]
    assert 400 <= len(picked) <= 600  # 500 expected; a fixed list, so a fixed count
    assert picked == [i for i in ids if sampled(i, 0.05)]
    assert all(sampled(i, 1.0) for i in ids[:100])


def test_only_scorers_without_a_reference_of_a_route_suite_run_online() -> None:
    with pytest.raises(SuitesError) as judged:
        suites(SUITE.replace("scorers: [refuses, short]", "scorers: [right]"))
    assert "online.scorers: 'right' is a contains scorer" in str(judged.value)
    with pytest.raises(SuitesError) as model:
        suites(SUITE.replace("route: support", "model: gpt-mock"))
    assert "online: scores a route's production traffic" in str(model.value)
    (suite,) = suites()
    assert suite.online is not None and [s.name for s in suite.online.scorers] == [
        "refuses", "short"
    ]  # fmt: skip
    assert suite.to_json()["online"]["sample"] == 1.0


async def test_sampled_answers_are_scored_once_in_the_background(engine: Engine) -> None:
    SuiteStore(engine).apply(suites(), scope="", actor="ml@acme")
    t = NOW.timestamp()
    write(
        engine,
        [
            request(1, t - 30, version="v1", response_body=answer("Your parcel ships today.")),
            request(2, t - 20, version="v2", response_body=answer("I'm sorry, I can't.")),
            request(3, t - 10, version="v2", response_body="sha256:0f1e"),  # hashed: unusable
            request(4, t - 9, version="v2", status_code=500, response_body=answer("x")),
            request(5, t - 8, version="v2", feature="eval:run_0123456789abcdef",
                    response_body=answer("an eval's answer")),
            request(6, t - 7, route="other", response_body=answer("another route")),
        ],
    )  # fmt: skip
    scoring = OnlineScoring(engine, since=NOW - timedelta(minutes=5))
    assert await scoring.cycle(NOW) == 2
    assert scoring.stats.view() == {
        "read": 3, "sampled": 3, "scored": 2, "unusable": 1,
        "dropped_queue": 0, "dropped_budget": 0, "dropped_cost": 0,
    }  # fmt: skip
    with engine.connect() as conn:
        rows = {
            (r.request_id, r.scorer): (r.value, r.passed)
            for r in conn.execute(select(online_scores))
        }
    assert rows == {
        ("req_00000001", "refuses"): (1.0, True),
        ("req_00000001", "short"): (1.0, True),
        ("req_00000002", "refuses"): (0.0, False),
        ("req_00000002", "short"): (1.0, True),
    }
    assert await scoring.cycle(NOW) == 0  # nothing new
    # another process reading the same requests writes nothing twice
    assert await OnlineScoring(engine, since=NOW - timedelta(minutes=5)).cycle(NOW) == 2
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(online_scores)).scalar() == 4

    metric = online_metric(engine, "support", NOW - timedelta(hours=1), timedelta(hours=1), None)
    by = {(m["version"], m["scorer"]): (m["scored"], m["mean"]) for m in metric}
    assert by == {
        ("v1", "refuses"): (1, 1.0), ("v1", "short"): (1, 1.0),
        ("v2", "refuses"): (1, 0.0), ("v2", "short"): (1, 1.0),
    }  # fmt: skip


async def test_the_queue_and_the_budget_drop_what_they_cannot_hold(engine: Engine) -> None:
    text = SUITE.replace("scorers: [refuses, short]}", "scorers: [refuses], max_per_minute: 5}")
    SuiteStore(engine).apply(suites(text), scope="", actor="ml@acme")
    t = NOW.timestamp()
    write(engine, [request(i, t - 30 + i * 0.1, response_body=answer("ok")) for i in range(12)])
    budgeted = OnlineScoring(engine, since=NOW - timedelta(minutes=5))
    assert await budgeted.cycle(NOW) == 5
    assert budgeted.stats.dropped_budget == 7
    small = OnlineScoring(engine, since=NOW - timedelta(minutes=5), queue_size=3)
    assert await small.cycle(NOW + timedelta(minutes=1)) == 3
    assert (small.stats.dropped_queue, small.stats.dropped_budget) == (2, 7)


PYTHON_SUITE = """
evals:
  support-live:
    route: support
    dataset: golden
    scorers:
      - {name: words, kind: python, function: "tests.evals.scorer_functions:words_per_ten"}
      - {name: raises, kind: python, function: "tests.evals.scorer_functions:raises"}
      - {name: blocks, kind: python, function: "tests.evals.scorer_functions:blocks"}
      - {name: elsewhere, kind: python, function: "json:loads"}
      - {name: short, kind: length, max: 40}
    online: {sample: 1.0, timeout_s: 0.2}
"""


def scores(engine: Engine) -> dict[tuple[str, str], tuple[float | None, str]]:
    with engine.connect() as conn:
        return {
            (r.request_id, r.scorer): (r.value, r.reason)
            for r in conn.execute(select(online_scores))
        }


async def test_python_scorers_run_in_threads_and_their_failures_are_errors(engine: Engine) -> None:
    SuiteStore(engine).apply(suites(PYTHON_SUITE), scope="", actor="ml@acme")
    scorer_functions.RELEASE.clear()
    t = NOW.timestamp()
    write(engine, [request(1, t - 30, response_body=answer("one two three four five"))])
    scoring = OnlineScoring(
        engine, since=NOW - timedelta(minutes=5), python_scorers=("tests.evals",)
    )
    try:
        assert await scoring.cycle(NOW) == 1
    finally:
        scorer_functions.RELEASE.set()  # the timed-out call's thread finishes
        await scoring.stop()
    got = scores(engine)
    assert got[("req_00000001", "words")] == (0.5, "5 words")
    assert got[("req_00000001", "short")][0] == 1.0
    assert got[("req_00000001", "raises")] == (
        None, "scorer 'raises' raised RuntimeError: cannot score req_00000001"
    )  # fmt: skip
    assert got[("req_00000001", "blocks")] == (None, "scorer 'blocks': no score within 0.2 s")
    value, reason = got[("req_00000001", "elsewhere")]
    assert value is None and "'json:loads' is not one this server runs" in reason
    assert "evals.python_scorers: tests.evals" in reason
    assert scoring.stats.scored == 1 and scoring.stats.unusable == 3


async def test_judges_stop_at_their_days_spend(engine: Engine) -> None:
    text = SUITE.replace(
        "scorers: [refuses, short]}", "scorers: [refuses, polite], max_usd_per_day: 0.5}"
    ).replace(
        "- {name: right, kind: contains}",
        "- {name: right, kind: contains}\n      - {name: polite, kind: judge, judge_route: judge}",
    )
    SuiteStore(engine).apply(suites(text), scope="", actor="ml@acme")
    t = NOW.timestamp()
    judge_calls = [
        request(100 + i, t - 60 + i, route="judge", feature="eval:online:support-live",
                cost_usd=0.3, response_body=answer('{"score": 1, "reason": "ok"}'))
        for i in range(2)
    ]  # fmt: skip
    yesterday = request(
        99, t - 86_400 * 2, route="judge", feature="eval:online:support-live", cost_usd=9.0
    )
    write(engine, [*judge_calls, yesterday, request(1, t - 30, response_body=answer("ok"))])
    scoring = OnlineScoring(engine, since=NOW - timedelta(minutes=5))
    assert await scoring.cycle(NOW) == 1
    # 0.6 USD of judging today: no judge call, the other scorer still scores
    assert scoring.stats.dropped_cost == 1
    got = scores(engine)
    assert set(got) == {("req_00000001", "refuses")}
    # the judges' own calls are eval traffic: never read as the route's (nor the judge's)
    assert scoring.stats.read == 1


def test_a_configured_module_covers_its_submodules_only() -> None:
    assert python_allowed("acme_evals:f", ["acme_evals"])
    assert python_allowed("acme_evals.scorers.deep:f", ["other", "acme_evals"])
    assert not python_allowed("acme_evals_extra:f", ["acme_evals"])
    assert not python_allowed("os:getcwd", [])
