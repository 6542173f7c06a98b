"""Applications call `route:NAME` through the official SDKs; the version shapes the request."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.gateway.support import POLICY, apply, openai_client, sent_with
from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_APP_KEY,
    ROUTE_KEYS,
    ROUTES,
    V2,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
    base_config,
    stored,
)
from trimtab.registry.scope import Applier
from trimtab.registry.spec import load_routes
from trimtab.registry.store import RouteStore
from trimtab.testing.mock_upstream import MockUpstream


@pytest.fixture
def running(
    gateway: GatewayFactory, store_url: str, upstream: MockUpstream, tmp_path: Path
) -> Running:
    models = base_config(upstream.url, store_url, tmp_path / "x")["models"]
    # a model whose upstream always fails, falling back to gpt-mock
    models["gpt-flaky"] = {"provider": "upstream", "model": "fail-500", "fallbacks": ["gpt-mock"]}
    return gateway(store=store_url, keys=ROUTE_KEYS, models=models)


def variables(question: str) -> dict[str, Any]:
    return {"variables": {"policy": POLICY, "question": question}}


def test_a_route_call_reaches_the_upstream_rendered(
    running: Running, upstream: MockUpstream
) -> None:
    apply(running)  # served at once: no wait for the background refresh
    question = f"Can I return it? {uuid.uuid4().hex}"
    raw = openai_client(running).chat.completions.with_raw_response.create(
        model="route:support-answer",
        messages=[{"role": "user", "content": "And the receipt?"}],
        temperature=1.5,  # the version sets temperature: the version wins
        top_p=0.5,  # the version does not set top_p: the client's passes
        user="u-7",
        extra_body=variables(question),
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "mock reply to: And the receipt?"
    sent = sent_with(upstream, question)
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "mock-1"
    assert sent.body["messages"] == [
        {"role": "system", "content": f"You are Acme's support assistant. Policy: {POLICY}"},
        {"role": "user", "content": question},
        {"role": "user", "content": "And the receipt?"},
    ]
    assert (sent.body["temperature"], sent.body["max_tokens"], sent.body["top_p"]) == (
        0.2, 400, 0.5
    )  # fmt: skip
    assert "variables" not in sent.body
    row = stored(running, raw.headers["x-trimtab-request-id"])
    assert (row["route"], row["version"]) == ("support-answer", "v1")
    assert row["request_model"] == "gpt-mock"
    assert row["user_id"] == "u-7"
    assert row["status_code"] == 200


def test_streaming_through_a_route(running: Running, upstream: MockUpstream) -> None:
    apply(running)
    question = f"stream {uuid.uuid4().hex}"
    stream = openai_client(running).chat.completions.create(
        model="route:support-answer", messages=[], stream=True, extra_body=variables(question)
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"mock reply to: {question}"
    assert sent_with(upstream, question).body["stream"] is True
    rows = httpx.get(
        running.url + "/api/requests",
        params={"route": "support-answer", "version": "v1"},
        headers=auth(VIEWER_KEY),
        timeout=10,
    )
    deadline = time.monotonic() + 10
    while not rows.json()["data"] and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = httpx.get(rows.request.url, headers=auth(VIEWER_KEY), timeout=10)
    [row] = rows.json()["data"]
    assert row["streamed"] is True and row["route"] == "support-answer"


def test_the_anthropic_endpoint_serves_routes(running: Running, upstream: MockUpstream) -> None:
    apply(running)
    question = f"anthropic {uuid.uuid4().hex}"
    client = anthropic.Anthropic(base_url=running.url, api_key=APP_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="route:support-answer",
        max_tokens=10,  # the version's 400 wins
        messages=[{"role": "user", "content": "Thanks"}],
        extra_body=variables(question),
    )
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == "mock reply to: Thanks"
    sent = sent_with(upstream, question)  # gpt-mock speaks OpenAI: translated
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"][0] == {
        "role": "system",
        "content": f"You are Acme's support assistant. Policy: {POLICY}",
    }
    assert [m["role"] for m in sent.body["messages"]] == ["system", "user", "user"]
    assert sent.body["max_completion_tokens"] == 400
    row = stored(running, raw.headers["x-trimtab-request-id"])
    assert (row["api"], row["route"], row["version"]) == ("anthropic", "support-answer", "v1")


def test_the_versions_model_keeps_its_fallbacks(running: Running, upstream: MockUpstream) -> None:
    apply(running, ROUTES.replace("model: gpt-mock", "model: gpt-flaky"))
    question = f"fallback {uuid.uuid4().hex[:16]}"
    raw = openai_client(running).chat.completions.with_raw_response.create(
        model="route:support-answer", messages=[], extra_body=variables(question)
    )
    assert raw.parse().choices[0].message.content == f"mock reply to: {question}"
    assert {r.body["model"] for r in upstream.requests if question in str(r.body)} == {
        "fail-500",
        "mock-1",
    }
    row = stored(running, raw.headers["x-trimtab-request-id"])
    assert (row["route"], row["version"], row["upstream_model"]) == (
        "support-answer",
        "v1",
        "mock-1",
    )


def test_errors_name_the_route_and_the_variable(running: Running) -> None:
    apply(running)
    client = openai_client(running)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="route:support-answer", messages=[], extra_body={"variables": {"policy": "p"}}
        )
    assert "route 'support-answer' v1: missing template variable 'question'" in str(bad.value)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="route:nope", messages=[])
    assert "route 'nope' is not defined on this gateway" in str(missing.value)
    # another tenant's route does not exist for this caller
    with pytest.raises(openai.NotFoundError):
        openai_client(running, GLOBEX_APP_KEY).chat.completions.create(
            model="route:support-answer", messages=[], extra_body=variables("q")
        )


def test_a_later_version_waits_while_the_stable_one_serves(
    running: Running, upstream: MockUpstream
) -> None:
    apply(running)
    [v2] = apply(running, V2, "friendlier")
    assert (v2["version"], v2["stable_version"]) == (2, 1)
    question = f"still v1 {uuid.uuid4().hex}"
    openai_client(running).chat.completions.create(
        model="route:support-answer", messages=[], extra_body=variables(question)
    )
    assert "friendly" not in sent_with(upstream, question).body["messages"][0]["content"]


def test_routes_changed_elsewhere_are_picked_up(running: Running, upstream: MockUpstream) -> None:
    """Another gateway sharing the store applies a route: served here within ~1 s."""
    text = ROUTES.replace("support-answer", "elsewhere")
    store = RouteStore(running.engine)
    store.apply(load_routes(text), applier=Applier("other", "acme", admin=True), message="m")
    question = f"elsewhere {uuid.uuid4().hex}"
    client = openai_client(running)
    deadline = time.monotonic() + 5
    while True:
        try:
            client.chat.completions.create(
                model="route:elsewhere", messages=[], extra_body=variables(question)
            )
            break
        except openai.NotFoundError:
            assert time.monotonic() < deadline, "the route table was never refreshed"
            time.sleep(0.1)
    assert sent_with(upstream, question).body["model"] == "mock-1"


def test_summaries_group_by_route_and_version(running: Running) -> None:
    apply(running)
    for i in range(3):
        openai_client(running).chat.completions.create(
            model="route:support-answer", messages=[], extra_body=variables(f"q{i}")
        )
    running.wait_for_rows(3)
    deadline = time.monotonic() + 10
    while True:
        summary = httpx.get(
            running.url + "/api/metrics/summary",
            params={"group_by": "version"},
            headers=auth(ADMIN_KEY),
            timeout=10,
        ).json()
        groups = {g["version"]: g["count"] for g in summary["groups"]}
        if groups.get("v1") == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert groups["v1"] == 3
