"""Online judges and python scorers in a real server: production answers of a route,
sampled in the background, judged by a judge route through the server's own gateway (the
mock provider's `judge-mock` as the judge's model, on loopback), its calls recorded as
eval traffic; a judge that answers no score is an error on the answer, never a crash."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from tests.support import APP_KEY, OPERATOR_KEY, ROUTE_KEYS, VIEWER_KEY, GatewayFactory, Running
from trimtab.client import Client
from trimtab.client._core import TrimtabError
from trimtab.store.tables import online_scores, requests
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.types import is_eval_feature

ROUTES = """
routes:
  support:
    owner: ml@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      messages:
        - {role: user, content: "{{question}}"}
  judge-polite:
    owner: ml@acme.example
    risk_tier: 0
    version:
      model: judge-mock
      params: {temperature: 0}
      messages:
        - role: system
          content: "Score from {{scale_min}} to {{scale_max}}. Rubric: {{rubric}}. JSON only."
        - {role: user, content: "Question: {{input}}\\nAnswer: {{output}}"}
  judge-broken:
    owner: ml@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      messages:
        - {role: user, content: "{{output}}"}
"""

SUITES = """
evals:
  support-live:
    route: support
    dataset: golden
    scorers:
      - {name: polite, kind: judge, judge_route: judge-polite, rubric: "thanks refund"}
      - {name: broken, kind: judge, judge_route: judge-broken}
      - {name: words, kind: python, function: "tests.evals.scorer_functions:words_per_ten"}
    online: {sample: 1.0, max_per_minute: 100}
"""

QUESTIONS = {
    "thanks for the refund": 1.0,  # "mock reply to: thanks for the refund": both words
    "thanks a lot": 0.5,
    "where is my parcel": 0.0,
}


def start(gateway: GatewayFactory, upstream: MockUpstream) -> Running:
    models: dict[str, Any] = {
        "gpt-mock": {
            "provider": "upstream",
            "model": "mock-1",
            "pricing": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
        },
        "judge-mock": {
            "provider": "upstream",
            "model": "judge-mock",
            "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
        },
    }
    running = gateway(
        keys=ROUTE_KEYS, models=models, evals={"python_scorers": ["tests.evals.scorer_functions"]}
    )
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(ROUTES, "routes and judges")
        c.apply_eval_suites(SUITES, "online judges")
    return running


def scores_of(running: Running, ids: list[str], per: int) -> dict[tuple[str, str], Any]:
    """The online scores of these requests, once each has `per` (waits for the background
    scorer, which reads the store every 5 s)."""
    deadline = time.monotonic() + 60
    while True:
        with running.engine.connect() as conn:
            rows = conn.execute(
                select(online_scores).where(online_scores.c.request_id.in_(ids))
            ).all()
        if len(rows) >= per * len(ids) or time.monotonic() > deadline:
            return {(r.request_id, r.scorer): r for r in rows}
        time.sleep(0.2)


def test_a_judge_scores_production_answers_through_the_servers_own_gateway(
    gateway: GatewayFactory, upstream: MockUpstream
) -> None:
    running = start(gateway, upstream)
    client = openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)
    ids = {}
    for question in QUESTIONS:
        raw = client.chat.completions.with_raw_response.create(
            model="route:support", messages=[], extra_body={"variables": {"question": question}}
        )
        ids[raw.headers["x-trimtab-request-id"]] = question
    got = scores_of(running, list(ids), per=3)
    assert len(got) == 3 * len(ids)
    for rid, question in ids.items():
        polite = got[(rid, "polite")]
        assert polite.value == pytest.approx(QUESTIONS[question])
        assert polite.reason.startswith("mock judge: ")
        assert polite.passed == (QUESTIONS[question] >= 0.5)  # the judge's default threshold
        broken = got[(rid, "broken")]  # "mock reply to: mock reply to: ..." holds no JSON
        assert broken.value is None and "holds no JSON" in broken.reason
        assert "judge route 'judge-broken'" in broken.reason
        words = got[(rid, "words")]
        answer_words = len(f"mock reply to: {question}".split())
        assert (words.value, words.reason) == (min(1.0, answer_words / 10), f"{answer_words} words")

    # the judges' calls: recorded like any request, as eval traffic, tied to the answer
    running.wait_for_rows(len(ids) * 3)
    with running.engine.connect() as conn:
        calls = conn.execute(
            select(requests.c.route, requests.c.feature, requests.c.session_id.label("session"),
                   requests.c.tenant, requests.c.cost_usd, requests.c.key_id)
            .where(requests.c.route.in_(["judge-polite", "judge-broken"]))
        ).all()  # fmt: skip
    assert all(c.cost_usd > 0 for c in calls)  # priced like any call
    assert len({c.key_id for c in calls}) == 1  # the process's own key for acme
    assert sorted((c.route, c.session) for c in calls) == sorted(
        (route, rid) for rid in ids for route in ("judge-polite", "judge-broken")
    )
    assert {(c.feature, c.tenant) for c in calls} == {("eval:online:support-live", "acme")}
    assert all(is_eval_feature(c.feature) for c in calls)
    headers = {"authorization": f"Bearer {VIEWER_KEY}"}
    listed = httpx.get(running.url + "/api/requests", headers=headers, params={"limit": 100})
    assert listed.status_code == 200
    assert {r["route"] for r in listed.json()["data"]} == {"support"}  # production only
    online = httpx.get(
        running.url + "/api/evals/online", headers=headers, params={"route": "support"}
    ).json()
    assert online["scorer"]["unusable"] == len(ids)  # the broken judge, once per answer
    assert online["scorer"]["read"] == len(ids)  # the judges' calls were never sampled
    by_scorer = {d["scorer"]: d["scored"] for d in online["data"]}
    assert by_scorer == {"polite": len(ids), "words": len(ids)}


def refused_apply(running: Running, suites: str) -> str:
    """The error an operator's apply of `suites` (as evals.yaml) is refused with."""
    with Client(running.url, OPERATOR_KEY) as c, pytest.raises(TrimtabError) as refused:
        c.apply_eval_suites(suites, "a change", source="evals.yaml")
    return str(refused.value)


def test_a_python_scorer_outside_the_configured_modules_is_refused_at_apply(
    gateway: GatewayFactory, upstream: MockUpstream
) -> None:
    running = start(gateway, upstream)
    elsewhere = SUITES.replace("tests.evals.scorer_functions:words_per_ten", "os:getcwd")
    message = refused_apply(running, elsewhere)
    assert "evals.yaml: evals.support-live.online.scorers: python scorer 'words'" in message
    assert "evals.python_scorers: tests.evals.scorer_functions" in message
    missing = SUITES.replace("words_per_ten", "no_such_function")
    assert "is not a function" in refused_apply(running, missing)


def test_an_online_judge_naming_no_route_is_refused_at_apply(
    gateway: GatewayFactory, upstream: MockUpstream
) -> None:
    running = start(gateway, upstream)
    typo = SUITES.replace("judge_route: judge-polite", "judge_route: judge-polit")
    assert (
        "evals.yaml: evals.support-live.online.scorers: judge 'polite': unknown judge_route "
        "'judge-polit'" in refused_apply(running, typo)
    )
