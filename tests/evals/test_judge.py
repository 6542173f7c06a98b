"""The `judge` scorer: a route on the gateway judges each answer, `repeats` times; its raw
answers are kept, garbage and off-scale scores are errors on the item, never a silent 0.

End to end against the mock provider: the judge route's user turn is the item's
`expected`, so the mock's reply ("mock reply to: <it>") carries the JSON the item asks for.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from tests.evals.support import jsonl
from tests.support import OPERATOR_KEY, ROUTE_KEYS, GatewayFactory, Running, base_config
from trimtab.cli.evalrun import ApiLedger
from trimtab.client import AsyncClient, Client, TrimtabError
from trimtab.evals import judge
from trimtab.evals.datasets import Item
from trimtab.evals.runner import Gateway, Plan, Progress, Runner
from trimtab.evals.scorers import Answer, ScorerError, ScorerSpec, build
from trimtab.evals.store import item_from_json
from trimtab.evals.suites import parse_suites
from trimtab.testing.mock_upstream import MockUpstream

JUDGE_ROUTE = """
routes:
  judge-echo:
    owner: ml@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      messages:
        - role: system
          content: "Score from {{scale_min}} to {{scale_max}}. Rubric: {{rubric}}. Q: {{input}}"
        - role: user
          content: "{{expected}}"
"""

SPEC: TypeAdapter[Any] = TypeAdapter(ScorerSpec)


def suite(repeats: int = 1) -> dict[str, Any]:
    scorer = {
        "name": "polite",
        "kind": "judge",
        "judge_route": "judge-echo",
        "rubric": "is it polite",
        "scale": [1, 5],
        "repeats": repeats,
        "threshold": 0.5,
    }
    return {"model": "gpt-mock", "dataset": "judged", "scorers": [scorer]}


ITEMS = [
    ("good", '{"score":5,"reason":"kind"}'),
    ("poor", '{"score":2,"reason":"curt"}'),
    ("garbage", "no json at all"),
    ("off", '{"score":9,"reason":"x"}'),
]


@pytest.fixture
def running(gateway: GatewayFactory, sqlite_url: str, tmp_path: Path) -> Running:
    models = base_config("http://x", sqlite_url, tmp_path / "s")["models"]
    return gateway(store=sqlite_url, keys=ROUTE_KEYS, models=models)


def setup(running: Running) -> None:
    rows = [
        {"id": i, "messages": [{"role": "user", "content": f"hello {i}"}], "expected": e}
        for i, e in ITEMS
    ]
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(JUDGE_ROUTE, "judge")
        c.push_dataset("judged", jsonl(rows), "judge cases")


async def run(running: Running, run_id: str) -> Progress:
    async with AsyncClient(running.url, OPERATOR_KEY) as client:
        detail = await client.eval_run(run_id)
        contents = await client.dataset_version(
            detail["dataset"], detail["dataset_version"], tenant=detail["dataset_tenant"] or ""
        )
        definition = parse_suites({"evals": {detail["suite"]: detail["definition"]}})[0]
        items = [item_from_json(dict(i)) for i in contents["data"]]
        plan = Plan(run_id, definition, items, model=detail["model"])
        runner = Runner(plan, Gateway(running.url, OPERATOR_KEY), ApiLedger(client, run_id))
        return await runner.run()


def judge_calls(upstream: MockUpstream) -> list[dict[str, Any]]:
    return [
        r.body
        for r in upstream.requests
        if r.path == "/v1/chat/completions"
        and r.body["messages"][0]["content"].startswith("Score from")
    ]


def test_a_judge_route_scores_each_answer_and_its_raw_answer_is_kept(
    running: Running, upstream: MockUpstream
) -> None:
    setup(running)
    with Client(running.url, OPERATOR_KEY) as c:
        made = c.create_eval_run("polite", suite())
    before = len(judge_calls(upstream))
    progress = asyncio.run(run(running, made["id"]))
    assert (progress.called, progress.errors) == (4, 0)  # the calls all answered
    sent = judge_calls(upstream)[before:]
    assert len(sent) == 4  # one judge call per answer
    # the judge's template was filled with the scale, the rubric and the item's input
    assert sorted(b["messages"][0]["content"] for b in sent) == sorted(
        f"Score from 1 to 5. Rubric: is it polite. Q: user: hello {i}" for i, _ in ITEMS
    )
    with Client(running.url, OPERATOR_KEY) as c:
        results = {r["item_id"]: r for r in c.eval_results(made["id"])}
        detail = c.eval_run(made["id"])
    good = results["good"]["scores"]["polite"]
    assert (good["value"], good["passed"], good["reason"]) == (1.0, True, "kind")
    (repeat,) = good["judge"]["repeats"]
    assert repeat["raw"] == 'mock reply to: {"score":5,"reason":"kind"}'
    assert repeat["request_id"].startswith("req_")
    poor = results["poor"]["scores"]["polite"]
    assert (poor["value"], poor["passed"]) == (0.25, False)
    garbage = results["garbage"]["scores"]["polite"]
    assert "value" not in garbage
    assert garbage["error"] == (
        "scorer 'polite': judge route 'judge-echo': the judge's answer holds no JSON object"
    )
    assert garbage["judge"]["repeats"][0]["raw"] == "mock reply to: no json at all"
    off = results["off"]["scores"]["polite"]
    assert off["error"].endswith("the judge's score 9 is off the scale 1..5")
    summary = detail["summary"]["scorers"][0]
    assert (summary["scored"], summary["errors"], summary["pass_rate"]) == (2, 2, 0.5)
    # the judge's calls are recorded by the gateway like the run's own, tagged with the run
    assert running.wait_for_rows(8) >= 8
    with Client(running.url, OPERATOR_KEY) as c:
        records = list(c.iter_requests(feature=f"eval:{made['id']}"))
    judged = [r for r in records if r["route"] == "judge-echo"]
    assert sorted(r["id"] for r in judged) == sorted(
        results[i]["scores"]["polite"]["judge"]["repeats"][0]["request_id"] for i, _ in ITEMS
    )


def test_repeats_judge_each_answer_k_times_and_report_the_agreement(
    running: Running, upstream: MockUpstream
) -> None:
    setup(running)
    with Client(running.url, OPERATOR_KEY) as c:
        made = c.create_eval_run("polite", suite(repeats=3))
    before = len(judge_calls(upstream))
    asyncio.run(run(running, made["id"]))
    assert len(judge_calls(upstream)) - before == 12
    with Client(running.url, OPERATOR_KEY) as c:
        results = {r["item_id"]: r for r in c.eval_results(made["id"])}
        detail = c.eval_run(made["id"])
    good = results["good"]["scores"]["polite"]
    assert len(good["judge"]["repeats"]) == 3
    assert (good["judge"]["agreement"], good["judge"]["spread"]) == (1.0, 0.0)
    assert good["reason"] == "mean of 3, agreement 1.00: kind"
    consistency = detail["summary"]["scorers"][0]["judge_consistency"]
    assert consistency == {
        "items": 2,
        "repeats": 3,
        "mean_agreement": 1.0,
        "unanimous_share": 1.0,
        "mean_spread": 0.0,
        "max_spread": 0.0,
    }
    # a second run reuses the answers from the cache, but the judge still judges them
    with Client(running.url, OPERATOR_KEY) as c:
        again = c.create_eval_run("polite", suite())
    before = len(judge_calls(upstream))
    progress = asyncio.run(run(running, again["id"]))
    assert (progress.cached, progress.called) == (4, 0)
    assert len(judge_calls(upstream)) - before == 4


def test_a_missing_judge_route_or_calibration_set_is_refused_before_any_call(
    running: Running,
) -> None:
    setup(running)
    broken = suite()
    broken["scorers"][0]["judge_route"] = "no-such-judge"
    with Client(running.url, OPERATOR_KEY) as c, pytest.raises(TrimtabError) as caught:
        c.create_eval_run("polite", broken)
    assert caught.value.status == 404
    assert caught.value.param == "definition.scorers.0.judge_route"
    assert "scorer 'polite' is judged by route 'no-such-judge', which does not exist" in str(
        caught.value
    )
    uncalibrated = suite()
    uncalibrated["scorers"][0]["calibration"] = "nobody@1"
    with Client(running.url, OPERATOR_KEY) as c, pytest.raises(TrimtabError) as caught:
        c.create_eval_run("polite", uncalibrated)
    assert caught.value.param == "definition.scorers.0.calibration"
    assert "scorer 'polite': calibration: " in str(caught.value)


def test_a_judge_call_that_fails_is_an_error_on_the_item(running: Running) -> None:
    setup(running)
    failing = JUDGE_ROUTE.replace("judge-echo", "judge-down").replace("gpt-mock", "gpt-500")
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(failing, "a judge whose model fails")
    broken = suite()
    broken["scorers"][0]["judge_route"] = "judge-down"
    with Client(running.url, OPERATOR_KEY) as c:
        made = c.create_eval_run("polite", broken)
    asyncio.run(run(running, made["id"]))
    with Client(running.url, OPERATOR_KEY) as c:
        results = c.eval_results(made["id"])
    error = results[0]["scores"]["polite"]["error"]
    assert error.startswith("scorer 'polite': judge route 'judge-down': HTTP 5"), error
    assert "(request req_" in error


def verdicts(*values: float | None) -> tuple[judge.Verdict, ...]:
    return tuple(
        judge.Verdict("raw", v, "r", None if v is not None else "bad", None) for v in values
    )


def test_the_mean_of_repeats_and_their_agreement() -> None:
    spec = SPEC.validate_python(
        {"name": "j", "kind": "judge", "judge_route": "r", "repeats": 4, "threshold": 0.5}
    )
    scorer = build(spec)
    item = Item("i", {"q": "x"})
    score = scorer(item, Answer("a", judged={"j": verdicts(0.2, 0.9, 1.0, 0.7)}))
    assert score.value == pytest.approx(0.7) and score.passed
    assert score.judge is not None
    assert score.judge["agreement"] == 0.75  # three of four pass
    assert score.judge["spread"] == pytest.approx(0.8)
    # one unreadable repeat makes the item an error, with every repeat kept
    with pytest.raises(ScorerError, match=r"\(repeat 2 of 3\): bad") as caught:
        scorer(item, Answer("a", judged={"j": verdicts(0.2, None, 1.0)}))
    assert caught.value.judge is not None and len(caught.value.judge["repeats"]) == 3
    with pytest.raises(ScorerError, match="the judge was not called"):
        scorer(item, Answer("a"))
    assert judge.agreement([0.1, 0.9], 0.5) == 0.5
    assert judge.agreement([0.6], 0.5) == 1.0


def test_reading_a_judge_answer() -> None:
    scale = (1.0, 5.0)
    assert judge.read('{"score": 3, "reason": "ok"}', scale) == (0.5, "ok")
    assert judge.read('Sure!\n```json\n{"score": 5, "reason": "a"}\n```', scale) == (1.0, "a")
    assert judge.read('My verdict: {"score": 1, "reason": "b"}.', scale) == (0.0, "b")
    with pytest.raises(judge.JudgementError, match="no JSON object"):
        judge.read("five", scale)
    with pytest.raises(judge.JudgementError, match=r"\(root\): 'reason' is a required"):
        judge.read('{"score": 4}', scale)
    with pytest.raises(judge.JudgementError, match="score: 'high' is not of type 'number'"):
        judge.read('{"score": "high", "reason": "x"}', scale)
    with pytest.raises(judge.JudgementError, match=r"off the scale 1\.\.5"):
        judge.read('{"score": 0, "reason": "x"}', scale)
    with pytest.raises(judge.JudgementError, match="not of type 'number'"):
        judge.read('{"score": true, "reason": "x"}', scale)


def test_a_judge_spec_is_checked() -> None:
    with pytest.raises(ValueError, match="low end 5 must be below"):
        SPEC.validate_python({"name": "j", "kind": "judge", "judge_route": "r", "scale": [5, 1]})
    with pytest.raises(ValueError, match="repeats"):
        SPEC.validate_python({"name": "j", "kind": "judge", "judge_route": "r", "repeats": 0})
    with pytest.raises(ValueError, match="judge_route"):
        SPEC.validate_python({"name": "j", "kind": "judge", "judge_route": "route:x"})


def test_cohen_kappa_on_known_cases() -> None:
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15 (the textbook case)
    a = [True] * 25 + [False] * 25
    b = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert judge.cohen_kappa(a, b) == pytest.approx(0.4)
    assert judge.cohen_kappa([True, False], [True, False]) == 1.0
    assert judge.cohen_kappa([True, True], [True, True]) is None  # chance agreement is total
    assert judge.cohen_kappa([], []) is None


OUTPUT_JUDGE = """
routes:
  judge-output:
    owner: ml@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      messages:
        - role: user
          content: "{{output}}"
"""


def calibration_rows() -> list[dict[str, Any]]:
    """Ten answers people judged: the judge agrees on 8 (kappa 0.6), one it cannot read,
    one without a person's verdict."""
    cases = [(5, "pass")] * 4 + [(5, "fail")] + [(1, "pass")] + [(1, "fail")] * 4
    rows: list[dict[str, Any]] = [
        {
            "id": f"h{n}",
            "messages": [{"role": "user", "content": f"question {n}"}],
            "expected": label,
            "metadata": {"output": f'{{"score":{score},"reason":"r{n}"}}'},
        }
        for n, (score, label) in enumerate(cases)
    ]
    rows.append(
        {
            "id": "unreadable",
            "messages": [{"role": "user", "content": "q"}],
            "expected": "pass",
            "metadata": {"output": "no score here"},
        }
    )
    rows.append(
        {
            "id": "unlabelled",
            "messages": [{"role": "user", "content": "q"}],
            "expected": "maybe",
            "metadata": {"output": "x"},
        }
    )
    return rows


def test_a_calibration_set_gives_the_judges_kappa_against_people(
    running: Running, upstream: MockUpstream
) -> None:
    setup(running)
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(OUTPUT_JUDGE, "judge of outputs")
        c.push_dataset("people", jsonl(calibration_rows()), "labelled by support")
    definition = suite(repeats=2)
    definition["scorers"][0].update(judge_route="judge-output", calibration="people@1")
    with Client(running.url, OPERATOR_KEY) as c:
        made = c.create_eval_run("polite", definition)
        contents = c.dataset_version("people", 1)
    plan = Plan(
        made["id"],
        parse_suites({"evals": {"polite": made["definition"]}})[0],
        [],
        model="gpt-mock",
    )

    async def calibrate() -> dict[str, Any]:
        async with AsyncClient(running.url, OPERATOR_KEY) as client:
            runner = Runner(plan, Gateway(running.url, OPERATOR_KEY), ApiLedger(client, "x"))
            items = [item_from_json(dict(i)) for i in contents["data"]]
            return await runner.calibrate({"polite": items})

    before = len([r for r in upstream.requests if r.path == "/v1/chat/completions"])
    found = asyncio.run(calibrate())["polite"]
    after = len([r for r in upstream.requests if r.path == "/v1/chat/completions"])
    assert after - before == 11 * 2  # each usable item, judged twice
    assert found["items"] == 10
    assert found["kappa"] == pytest.approx(0.6)
    assert found["agreement"] == pytest.approx(0.8)
    assert (found["judge_pass_rate"], found["people_pass_rate"]) == (0.5, 0.5)
    assert sorted(found["disagreements"]) == ["h4", "h5"]
    assert found["unusable"] == 2
    assert any(
        p.startswith("calibration item 'unlabelled': 'expected' must be") for p in found["problems"]
    )
    assert any(
        p == "calibration item 'unreadable': the judge's answer holds no JSON object"
        for p in found["problems"]
    )
