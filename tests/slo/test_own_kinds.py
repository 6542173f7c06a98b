"""The SLI kinds read from tables of their own (slo/kinds.py `Own`): `session_cost` from
`session_costs`, written by the real telemetry writer, and `eval_score` from
`score_rollups`, written with the online scores — parsed strictly, stored and read back,
and judged by the evaluator's `read_statuses` and the report's per-minute series, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from trimtab.evals.score_rollups import store_scores
from trimtab.slo.burn import Counts
from trimtab.slo.evaluator import read_statuses
from trimtab.slo.kinds import by_version, minute_series, notes
from trimtab.slo.spec import Selector, Sli, SlosError, load_slos, parse_slos
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

NOW = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)
END = NOW.replace(second=0)

SLOS = """
slos:
  support-session-cost:
    route: support
    sli: {kind: session_cost, ceiling_usd: 0.5}
    objective: 0.9
    window: 7d
  support-judged:
    route: support
    tenant: acme
    sli: {kind: eval_score, suite: support-live, scorer: short, threshold: 0.7}
    objective: 0.6
  support-judged-passed:
    route: support
    sli: {kind: eval_score, suite: support-live, scorer: short}
    objective: 0.6
"""


def test_both_kinds_parse_survive_their_stored_form_and_describe_themselves() -> None:
    cost, judged, passed = load_slos(SLOS, "slos.yaml")
    assert cost.sli == Sli("session_cost", ceiling_usd=0.5)
    assert judged.sli == Sli(
        "eval_score", suite="support-live", scorer="short", score_threshold=0.7
    )
    assert passed.sli.score_threshold is None
    assert cost.to_json()["sli"] == {"kind": "session_cost", "ceiling_usd": 0.5}
    assert judged.to_json()["sli"] == {
        "kind": "eval_score", "suite": "support-live", "scorer": "short", "threshold": 0.7,
    }  # fmt: skip
    assert passed.to_json()["sli"] == {
        "kind": "eval_score",
        "suite": "support-live",
        "scorer": "short",
    }
    for d in (cost, judged, passed):
        (again,) = parse_slos({"slos": {d.name: d.to_json()}})
        assert again == d and again.digest == d.digest
    assert cost.sli.describe() == "session cost <= $0.5"
    assert judged.sli.describe() == "eval_score support-live/short >= 0.7"
    assert passed.sli.describe() == "eval_score support-live/short passed"
    assert any("never back" in n for n in notes(cost.sli))
    assert any("fill in late" in n for n in notes(judged.sli))
    # a session spans route versions: no candidate burn; a score keeps its version
    assert not by_version(cost.sli) and by_version(judged.sli)


@pytest.mark.parametrize(
    ("sli", "selector", "problem"),
    [
        (
            "{kind: session_cost, ceiling_usd: 0.5}",
            "model: gpt-mock",
            "slos.s: the session_cost SLI selects by feature and route and tenant only, not model",
        ),
        (
            "{kind: eval_score, suite: s, scorer: x}",
            "route: support, feature: chat",
            "slos.s: the eval_score SLI selects by route and tenant only, not feature",
        ),
        (
            "{kind: eval_score, suite: s, scorer: x, threshold: 0.705}",
            "route: support",
            "slos.s.sli.threshold: 0.705 is not a multiple of 0.01 in [0, 1]",
        ),
        (
            "{kind: eval_score, suite: s, scorer: x, threshold: 1.5}",
            "route: support",
            "slos.s.sli.threshold: 1.5 is not a multiple of 0.01 in [0, 1]",
        ),
        ("{kind: eval_score, scorer: x}", "route: support", "slos.s.sli.suite: Field required"),
        (
            "{kind: session_cost, ceiling_usd: 0}",
            "route: support",
            "slos.s.sli.ceiling_usd: Input should be greater than 0",
        ),
        (
            "{kind: session_cost, ceiling_usd: 1, per: session}",
            "route: support",
            "slos.s.sli.per: unknown key",
        ),
    ],
)
def test_what_the_spec_refuses(sli: str, selector: str, problem: str) -> None:
    text = f"slos:\n  s: {{{selector}, sli: {sli}, objective: 0.9}}\n"
    with pytest.raises(SlosError) as caught:
        load_slos(text, "f.yaml")
    assert any(p.startswith(f"f.yaml: {problem}") for p in caught.value.problems), (
        caught.value.problems
    )


def rec(n: int, ago: int, session: str, cost: float, **kw: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "id": f"req_{n:08d}", "started_at": (END - timedelta(minutes=ago)).timestamp() + 5,
        "api": "openai", "operation": "chat", "tenant": "acme", "request_model": "gpt-mock",
        "route": "support", "version": "v1", "status_code": 200, "duration_ms": 40.0,
        "cost_usd": cost, "session": session,
    }  # fmt: skip
    fields.update(kw)
    return RequestRecord(**fields)


def score(n: int, ago: int, value: float | None, passed: bool | None, **kw: Any) -> dict[str, Any]:
    at = END - timedelta(minutes=ago) + timedelta(seconds=5)
    row: dict[str, Any] = {
        "request_id": f"req_{n:08d}", "scorer": "short", "suite": "support-live", "scope": "",
        "tenant": "acme", "route": "support", "version": "v1", "value": value,
        "passed": passed, "reason": "", "request_at": at, "scored_at": NOW,
    }  # fmt: skip
    row.update(kw)
    return row


@pytest.fixture
def recorded(engine: Engine) -> Engine:
    TelemetryStore(engine).write(
        [
            # three sessions started 3 days ago, one over $0.50 only with today's request
            rec(1, 3 * 1440, "a", 0.2), rec(2, 3 * 1440, "b", 0.4), rec(3, 3 * 1440, "c", 0.3),
            rec(4, 2, "c", 0.3),
            # a session of today, within; another tenant's, over
            rec(5, 1, "d", 0.1), rec(6, 0, "e", 0.9, tenant="globex"),
        ]
    )  # fmt: skip
    with engine.begin() as conn:
        store_scores(
            conn,
            [
                score(1, 0, 0.9, True), score(2, 0, 0.65, True), score(3, 1, 0.7, False),
                score(4, 1, None, None),  # unscorable: in neither count
                score(5, 2, 0.2, False, tenant="globex"),
            ],
        )  # fmt: skip
    return engine


def test_the_evaluator_judges_them_and_the_series_adds_up(recorded: Engine) -> None:
    definitions = load_slos(SLOS)
    cost, judged, passed = read_statuses(recorded, definitions, NOW)
    # 5 sessions over 7 days, c (0.6) and globex's e (0.9) over the ceiling
    assert (cost.counts, cost.value, cost.standing) == (Counts(3, 5), 0.6, "missing")
    # acme's scored answers: 0.9 and 0.7 at or above 0.7, 0.65 not; the null in neither
    assert judged.counts == Counts(2, 3) and judged.standing == "meeting"
    # by the scorer's own pass, every tenant: 0.9 and 0.65 passed, 0.7 and globex's not
    assert passed.counts == Counts(2, 4) and passed.standing == "missing"
    with recorded.connect() as conn:
        per_minute = minute_series(
            conn, Selector(route="support"), cost.slo.sli, END - timedelta(minutes=5), END
        )
        scores = minute_series(
            conn, judged.slo.selector, judged.slo.sli, END - timedelta(minutes=5), END
        )
    # sessions count in the minute they started: d at END-1, e at END; c three days ago
    assert per_minute == {END - timedelta(minutes=1): Counts(1, 1), END: Counts(0, 1)}
    assert scores == {END - timedelta(minutes=1): Counts(1, 1), END: Counts(1, 2)}
