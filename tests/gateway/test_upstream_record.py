"""The record keeps the request as it went upstream beside the client's (issue 10, item 1):
a route's rendering, a translation to another wire format; null when sent as received."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.gateway.support import POLICY, apply, openai_client, sent_with
from tests.support import (
    APP_KEY,
    ROUTE_KEYS,
    ROUTES,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
    base_config,
    stored,
)
from trimtab.testing.mock_upstream import MockUpstream


@pytest.fixture
def running(
    gateway: GatewayFactory, store_url: str, upstream: MockUpstream, tmp_path: Path
) -> Running:
    models = base_config(upstream.url, store_url, tmp_path / "x")["models"]
    flaky = {"provider": "upstream", "model": "fail-500", "fallbacks": ["claude-mock"]}
    models["gpt-flaky"] = flaky
    return gateway(store=store_url, keys=ROUTE_KEYS, models=models)


def detail(running: Running, request_id: str) -> dict[str, Any]:
    stored(running, request_id)
    response = httpx.get(
        f"{running.url}/api/requests/{request_id}", headers=auth(VIEWER_KEY), timeout=10
    )
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


def test_a_route_call_records_the_rendered_prompt_as_sent(
    running: Running, upstream: MockUpstream
) -> None:
    apply(running, ROUTES)
    question = f"Where is my parcel? {uuid.uuid4().hex}"
    raw = openai_client(running).chat.completions.with_raw_response.create(
        model="route:support-answer",
        messages=[{"role": "user", "content": "thanks"}],
        extra_body={"variables": {"policy": POLICY, "question": question}},
    )
    rid = raw.headers["x-trimtab-request-id"]
    row = stored(running, rid)
    received = sent_with(upstream, question).body
    assert orjson.loads(row["upstream_request_body"]) == received
    got = detail(running, rid)
    assert got["upstream_request"] == received
    system = got["upstream_request"]["messages"][0]
    assert system == {
        "role": "system",
        "content": f"You are Acme's support assistant. Policy: {POLICY}",
    }
    # the client's body is kept as it came: the route name and the variables
    assert got["request"]["model"] == "route:support-answer"
    assert got["request"]["variables"]["question"] == question


def test_a_passthrough_call_stores_null(running: Running) -> None:
    raw = openai_client(running).chat.completions.with_raw_response.create(
        model="gpt-mock", messages=[{"role": "user", "content": "plain"}]
    )
    rid = raw.headers["x-trimtab-request-id"]
    assert stored(running, rid)["upstream_request_body"] is None
    got = detail(running, rid)
    assert got["upstream_request"] is None
    assert got["request"]["messages"] == [{"role": "user", "content": "plain"}]


def test_an_openai_call_to_an_anthropic_model_stores_the_translated_body(
    running: Running, upstream: MockUpstream
) -> None:
    marker = f"translate me {uuid.uuid4().hex}"
    raw = openai_client(running).chat.completions.with_raw_response.create(
        model="claude-mock",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": marker},
        ],
        max_tokens=50,
    )
    rid = raw.headers["x-trimtab-request-id"]
    received = sent_with(upstream, marker)
    assert received.path == "/v1/messages"
    got = detail(running, rid)
    assert got["upstream_request"] == received.body
    assert got["upstream_request"]["system"] == "be brief"
    assert got["upstream_request"]["model"] == "claude-x"


def test_a_fallback_stores_the_body_sent_to_the_model_that_answered(
    running: Running, upstream: MockUpstream
) -> None:
    marker = f"fall back {uuid.uuid4().hex}"
    raw = openai_client(running).chat.completions.with_raw_response.create(
        model="gpt-flaky", messages=[{"role": "user", "content": marker}], max_tokens=20
    )
    got = detail(running, raw.headers["x-trimtab-request-id"])
    answered = sent_with(upstream, marker)
    assert answered.path == "/v1/messages"
    assert got["upstream_request"] == answered.body


def test_an_anthropic_sdk_stream_to_an_openai_model_stores_the_translated_body(
    running: Running, upstream: MockUpstream
) -> None:
    marker = f"anthropic to openai {uuid.uuid4().hex}"
    client = anthropic.Anthropic(base_url=running.url, api_key=APP_KEY, max_retries=0)
    with client.messages.with_streaming_response.create(
        model="gpt-mock",
        max_tokens=30,
        messages=[{"role": "user", "content": marker}],
        stream=True,
    ) as response:
        rid = response.headers["x-trimtab-request-id"]
        for _ in response.iter_lines():
            pass
    received = sent_with(upstream, marker)
    assert received.path == "/v1/chat/completions"
    got = detail(running, rid)
    assert got["upstream_request"] == received.body
    assert got["upstream_request"]["stream_options"] == {"include_usage": True}


def test_nothing_is_kept_when_bodies_are_not_recorded(
    gateway: GatewayFactory, store_url: str, tmp_path: Path
) -> None:
    spill = str(tmp_path / "s")
    telemetry = {"record_bodies": False, "spill_path": spill, "flush_interval_s": 0.02}
    running = gateway(store=store_url, telemetry=telemetry)
    client = openai.OpenAI(base_url=running.url + "/v1", api_key="none", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="claude-mock", messages=[{"role": "user", "content": "x"}], max_tokens=5
    )
    row = stored(running, raw.headers["x-trimtab-request-id"])
    assert row["upstream_request_body"] is None and row["request_body"] is None
