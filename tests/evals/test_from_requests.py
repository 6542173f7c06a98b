"""Dataset items from recorded requests: the input a body carries, the answer observed,
deduplication by input, unusable bodies counted; `trimtab datasets add --from-requests`
against a real server with the mock provider behind it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from tests.cli import support as cli
from tests.slo.support import request
from tests.support import APP_KEY, OPERATOR_KEY, ROUTE_KEYS, ROUTES, GatewayFactory, Running
from trimtab.client import Client
from trimtab.evals.datasets import Item
from trimtab.evals.from_requests import harvest, observed_answer, request_input
from trimtab.store.engine import make_engine
from trimtab.telemetry.store import TelemetryStore


def row(n: int, body: object, answer: str | None = "fine", **extra: object) -> dict[str, object]:
    response = (
        None
        if answer is None
        else orjson.dumps(
            {"choices": [{"message": {"role": "assistant", "content": answer}}]}
        ).decode()
    )
    raw = body if isinstance(body, str) or body is None else orjson.dumps(body).decode()
    return {"id": f"req_{n}", "route": "r", "version": "v1", "status_code": 200,
            "request_body": raw, "response_body": response, **extra}  # fmt: skip


def test_inputs_answers_and_duplicates() -> None:
    chat = {"model": "route:r", "messages": [{"role": "user", "content": "hi"}]}
    templated = {"model": "route:r", "variables": {"q": "refund?"}, "messages": []}
    rows = [
        row(1, templated, "no refunds"),
        row(2, chat),
        row(3, templated, "something else"),  # the same input as a newer one
        row(4, "sha256:9f86d081884c7d65"),  # a hashed body
        row(5, None),  # no body stored
        row(6, {"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),  # unusable
    ]
    found = harvest(rows)
    assert (found.considered, found.unusable, found.duplicates) == (6, 3, 1)
    first, second = found.items
    assert first.variables == {"q": "refund?"} and first.messages is None
    assert first.metadata["observed"] == "no refunds" and first.metadata["request_id"] == "req_1"
    assert second.messages == ({"role": "user", "content": "hi"},)
    # what the dataset already holds is not added again, whatever its id
    held = Item(id="mine", variables={"q": "refund?"})
    again = harvest(rows, [held])
    assert [i.metadata["request_id"] for i in again.items] == ["req_2"]
    assert again.duplicates == 2


def test_anthropic_bodies() -> None:
    body = {"model": "m", "system": "be brief", "messages": [{"role": "user", "content": "x"}]}
    assert request_input(body) == {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}]
    }
    answer = {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    assert observed_answer(answer) == "ab"
    assert observed_answer({"content": [{"type": "tool_use"}]}) is None


def call(running: Running, question: str) -> str:
    resp = httpx.post(
        running.url + "/v1/chat/completions",
        json={"model": "route:support-answer", "messages": [],
              "variables": {"question": question, "policy": "p"}},
        headers={"authorization": f"Bearer {APP_KEY}"},
        timeout=30,
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    return resp.headers["x-trimtab-request-id"]


def test_datasets_add_from_requests(
    gateway: GatewayFactory, sqlite_url: str, tmp_path: Path
) -> None:
    running = gateway(store=sqlite_url, keys=ROUTE_KEYS)
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(ROUTES, "v1")
    ids = [call(running, q) for q in ("refund?", "refund?", "late parcel")]
    engine = make_engine(sqlite_url)
    try:  # a request whose body was hashed (storage.bodies), and an eval run's call
        TelemetryStore(engine).write(
            [
                request(1, datetime.now(UTC).timestamp(), route="support-answer",
                        version="v1", request_body="sha256:abc"),
                request(2, datetime.now(UTC).timestamp(), route="support-answer",
                        version="v1", feature="eval:run_0123456789abcdef",
                        request_body=orjson.dumps({"variables": {"question": "x"}}).decode()),
            ]
        )  # fmt: skip
    finally:
        engine.dispose()
    assert running.wait_for_rows(5) == 5
    with Client(running.url, APP_KEY) as c:
        c.feedback(ids[2], thumbs="down")

    code, out = cli.trimtab(
        running, "datasets", "add", "failures", "--from-requests", "--route", "support-answer",
        api_key=OPERATOR_KEY,
    )  # fmt: skip
    assert code == 0, out
    assert "created v1 (2 items): 4 requests read, 2 added, 1 duplicate inputs, 1 skipped" in out
    with Client(running.url, OPERATOR_KEY) as c:
        items = c.dataset_version("failures", "latest")["data"]
        observed = {i["variables"]["question"]: i["metadata"]["observed"] for i in items}
        assert observed == {
            "late parcel": "mock reply to: late parcel",
            "refund?": "mock reply to: refund?",
        }
        # again: nothing new, no new version
        again = c.dataset_from_requests("failures", "support-answer")
        assert (again["created"], again["version"], again["added"]) == (False, 1, 0)
        rated = c.dataset_from_requests("bad", "support-answer", negative_feedback=True)
        assert rated["added"] == 1 and rated["considered"] == 1
        code, out = cli.trimtab(
            running, "datasets", "add", "x", "--from-requests", "--route", "nope",
            api_key=OPERATOR_KEY,
        )  # fmt: skip
        assert code == 1 and "no recorded request of route 'nope' gave an item" in out
