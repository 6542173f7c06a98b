"""/api/evals: starting runs, recording results, reading and comparing them; who may, and
every bad input answered with a message that names what is wrong."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import (
    APP_KEY,
    GLOBEX_OPERATOR_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    ROUTES,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)

SUITE: dict[str, Any] = {
    "route": "support-answer",
    "dataset": "golden",
    "scorers": [{"name": "correct", "kind": "contains", "threshold": 1}],
    "gate": {"max_drop": {"correct": 0.05}},
}


def items(n: int) -> str:
    return "".join(
        f'{{"id": "q{i}", "variables": {{"question": "q{i}", "policy": "p"}}, "expected": "x"}}\n'
        for i in range(n)
    )


@pytest.fixture
def running(gateway: GatewayFactory, sqlite_url: str) -> Running:
    made = gateway(store=sqlite_url, keys=ROUTE_KEYS)
    with httpx.Client(base_url=made.url, headers=auth(OPERATOR_KEY)) as c:
        assert c.post("/api/routes/apply", json={"yaml": ROUTES, "message": "m"}).status_code == 200
        for n in (30, 5):
            pushed = c.post(
                "/api/datasets/golden/versions",
                json={"format": "jsonl", "content": items(n), "message": f"{n} items"},
            )
            assert pushed.status_code == 200, pushed.text
    return made


def post(running: Running, path: str, body: Any, key: str = OPERATOR_KEY) -> httpx.Response:
    return httpx.post(running.url + path, json=body, headers=auth(key), timeout=30)


def get(running: Running, path: str, key: str = OPERATOR_KEY, **query: str) -> httpx.Response:
    return httpx.get(running.url + path, params=query, headers=auth(key), timeout=30)


def error(resp: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()["error"]
    assert body["request_id"] == resp.headers["x-trimtab-request-id"]
    return body


def start(running: Running, suite: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    resp = post(
        running, "/api/evals/runs", {"suite": "golden-suite", "definition": suite or SUITE, **extra}
    )
    assert resp.status_code == 201, resp.text
    made: dict[str, Any] = resp.json()
    return made


def result(item: str, passed: bool) -> dict[str, Any]:
    score = {"value": 1.0 if passed else 0.0, "passed": passed, "reason": "r"}
    return {
        "item_id": item,
        "request_digest": "a" * 64,
        "output": "o",
        "scores": {"correct": score},
    }


def test_a_run_pins_the_dataset_and_route_version(running: Running) -> None:
    made = start(running, {**SUITE, "dataset": "golden@1"})
    assert (made["dataset_version"], made["items"], made["route_version"]) == (1, 30, 1)
    assert made["bundle"]["model"] == "gpt-mock" and made["status"] == "incomplete"
    newest = start(running)
    assert newest["dataset_version"] == 2 and newest["items"] == 5
    listed = get(running, "/api/evals/runs", VIEWER_KEY, suite="golden-suite").json()["data"]
    assert [r["id"] for r in listed] == [newest["id"], made["id"]]


@pytest.mark.parametrize(
    ("change", "status", "param", "says"),
    [
        ({"dataset": "nope"}, 404, "definition.dataset", "no dataset named 'nope'"),
        ({"dataset": "golden@9"}, 404, "definition.dataset", "has no version 9"),
        ({"route": "nope"}, 404, "definition.route", "no route named 'nope'"),
        ({"route": None, "model": "nope"}, 404, "definition.model", "configures no model 'nope'"),
        ({"scorers": [{"name": "x", "kind": "magic"}]}, 400, "definition", "scorers[0]: Input tag"),
        ({"colour": "red"}, 400, "definition", "colour: unknown key"),
        ({"gate": {"max_drop": {"other": 0.1}}}, 400, "definition", "scorer 'other'"),
    ],
)
def test_a_bad_suite_is_refused_naming_the_key(
    running: Running, change: dict[str, Any], status: int, param: str, says: str
) -> None:
    suite = {k: v for k, v in {**SUITE, **change}.items() if v is not None}
    resp = post(running, "/api/evals/runs", {"suite": "golden-suite", "definition": suite})
    assert resp.status_code == status, resp.text
    body = error(resp)
    assert body["param"] == param and says in body["message"], body


def test_bad_names_versions_and_nul_bytes_are_refused(running: Running) -> None:
    long_name = post(running, "/api/evals/runs", {"suite": "s" * 129, "definition": SUITE})
    assert long_name.status_code == 400 and error(long_name)["param"] == "suite"
    nul = post(
        running, "/api/evals/runs", {"suite": "s", "definition": {**SUITE, "tags": ["a\x00"]}}
    )
    assert nul.status_code == 400 and error(nul)["param"] == "definition"
    for version, says in (("v9", "has no version v9"), ("x", "not a version")):
        resp = post(
            running, "/api/evals/runs", {"suite": "s", "definition": SUITE, "version": version}
        )
        assert resp.status_code in (400, 404) and says in error(resp)["message"], resp.text
    assert get(running, "/api/evals/runs/run_nope").status_code == 404
    nul_path = get(running, "/api/evals/runs/run%00x")
    assert nul_path.status_code == 400 and error(nul_path)["param"] == "run"


def test_results_are_checked_against_the_run(running: Running) -> None:
    run = start(running)
    path = f"/api/evals/runs/{run['id']}/results"
    unknown = post(running, path, {"results": [result("q99", True)]})
    assert unknown.status_code == 400
    assert error(unknown)["param"] == "results.0.item_id"
    assert "'q99' is not an item of golden v2" in error(unknown)["message"]
    wrong = result("q0", True)
    wrong["scores"] = {"other": wrong["scores"]["correct"]}
    resp = post(running, path, {"results": [wrong]})
    assert resp.status_code == 400 and "exactly the suite's scorers" in error(resp)["message"]
    wrong = result("q0", True)
    wrong["scores"]["correct"]["value"] = 1.5
    resp = post(running, path, {"results": [wrong]})
    assert resp.status_code == 400 and error(resp)["param"] == "results.0.scores.correct"
    wrong = result("q0", True)
    wrong["scores"]["correct"]["judge"] = "raw text"  # a judge's answers come as an object
    resp = post(running, path, {"results": [wrong]})
    assert resp.status_code == 400 and error(resp)["param"] == "results.0.scores.correct.judge"
    wrong = result("q0", True)
    wrong["scores"]["correct"]["extra"] = 1
    resp = post(running, path, {"results": [wrong]})
    assert resp.status_code == 400 and error(resp)["param"] == "results.0.scores.correct"
    long_id = post(running, path, {"results": [{**result("q0", True), "item_id": "q" * 129}]})
    assert long_id.status_code == 400
    nul = post(running, path, {"results": [{**result("q0", True), "output": "a\x00b"}]})
    assert nul.status_code == 400 and error(nul)["param"] == "results"
    judged = result("q1", False)
    judged["scores"]["correct"] = {"error": "no JSON", "judge": {"repeats": [{"raw": "x"}]}}
    ok = post(running, path, {"results": [result("q0", True), judged]})
    assert ok.json() == {"run": run["id"], "recorded": 2, "done": 2, "items": 5}
    again = post(running, path, {"results": [result("q0", False)]})
    assert again.json()["recorded"] == 0  # written once
    assert get(running, path).json()["data"][0]["scores"]["correct"]["passed"] is True
    kept = get(running, path).json()["data"][1]["scores"]["correct"]
    assert kept == {"error": "no JSON", "judge": {"repeats": [{"raw": "x"}]}}


def test_who_may(running: Running) -> None:
    body = {"suite": "s", "definition": SUITE}
    viewer = post(running, "/api/evals/runs", body, VIEWER_KEY)
    assert viewer.status_code == 403 and "operator" in error(viewer)["message"]
    assert get(running, "/api/evals/runs", APP_KEY).status_code == 403
    run = start(running)
    # another tenant's run is like a missing one, to read and to write
    assert get(running, f"/api/evals/runs/{run['id']}", GLOBEX_OPERATOR_KEY).status_code == 404
    resp = post(
        running,
        f"/api/evals/runs/{run['id']}/results",
        {"results": [result("q0", True)]},
        GLOBEX_OPERATOR_KEY,
    )
    assert resp.status_code == 404


def record(running: Running, run_id: str, passes: list[bool]) -> None:
    rows = [result(f"q{i}", p) for i, p in enumerate(passes)]
    resp = post(running, f"/api/evals/runs/{run_id}/results", {"results": rows})
    assert resp.status_code == 200, resp.text


def test_compare_pairs_by_item_and_gives_a_verdict(running: Running) -> None:
    suite = {**SUITE, "dataset": "golden@1"}
    base = start(running, suite)
    cand = start(running, suite)
    incomplete = get(running, f"/api/evals/runs/{cand['id']}/compare", baseline=base["id"])
    assert incomplete.status_code == 409 and "resume" in error(incomplete)["message"]
    record(running, base["id"], [True] * 30)
    record(running, cand["id"], [i >= 12 for i in range(30)])  # 12 regressions
    # the default baseline: the newest complete earlier run of the suite
    resp = get(running, f"/api/evals/runs/{cand['id']}/compare", VIEWER_KEY)
    assert resp.status_code == 200, resp.text
    result_ = resp.json()
    assert result_["baseline"] == base["id"] and result_["outcome"] == "fail"
    (correct,) = result_["scorers"]
    assert correct["verdict"] == "worse" and correct["n"] == 30
    assert "McNemar" in correct["method"]
    assert result_["regressions"] == [f"q{i}" for i in range(12)]
    none_before = get(running, f"/api/evals/runs/{base['id']}/compare")
    assert none_before.status_code == 404 and error(none_before)["param"] == "baseline"


def test_a_comparison_on_few_items_says_too_little_data(running: Running) -> None:
    base, cand = start(running), start(running)  # the newest version: 5 items
    record(running, base["id"], [True] * 5)
    record(running, cand["id"], [True] * 5)
    resp = get(running, f"/api/evals/runs/{cand['id']}/compare", baseline=base["id"])
    body = resp.json()
    assert body["outcome"] == "no_verdict"
    assert body["scorers"][0]["verdict"] == "too_little_data"
    assert any("too little data" in r for r in body["reasons"])
