"""The common base_url mistakes answer with the base_url to set, in the calling SDK's own
error format (issue 10, item 2)."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.support import APP_KEY, KEYS, GatewayFactory, Running


@pytest.fixture
def running(gateway: GatewayFactory) -> Running:
    return gateway(keys=KEYS)


def test_the_openai_sdk_without_v1(running: Running) -> None:
    client = openai.OpenAI(base_url=running.url, api_key=APP_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as chat:
        client.chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": "hi"}]
        )
    assert f"set base_url to {running.url}/v1 " in str(chat.value)
    assert chat.value.code == "not_found"  # OpenAI's error format
    assert "POST /chat/completions" in chat.value.message
    with pytest.raises(openai.NotFoundError) as embed:
        client.embeddings.create(model="embed-mock", input="hi")
    assert f"set base_url to {running.url}/v1 " in str(embed.value)
    assert "/v1/embeddings" in str(embed.value)


def test_the_openai_sdk_with_v1_twice(running: Running) -> None:
    client = openai.OpenAI(base_url=running.url + "/v1/v1", api_key=APP_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": "hi"}]
        )
    assert f"set base_url to {running.url}/v1 " in str(exc.value)


def test_the_anthropic_sdk_pointed_at_v1(running: Running) -> None:
    client = anthropic.Anthropic(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as exc:
        client.messages.create(
            model="claude-mock", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert f"set base_url to {running.url} (without /v1)" in str(exc.value)
    # Anthropic's error format, which the SDK reads its error type from
    body = exc.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    assert "x-trimtab-request-id" in exc.value.response.headers


def test_the_messages_api_without_v1(running: Running) -> None:
    response = httpx.post(
        running.url + "/messages",
        json={"model": "claude-mock", "max_tokens": 5, "messages": []},
        headers={"x-api-key": APP_KEY, "anthropic-version": "2023-06-01"},
        timeout=10,
    )
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert f"set base_url to {running.url} with the Anthropic SDK" in body["error"]["message"]
    assert f"or to {running.url}/v1 with a client" in body["error"]["message"]


def test_other_unknown_paths_stay_plain(running: Running) -> None:
    response = httpx.post(running.url + "/v2/chat/completions", json={}, timeout=10)
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert message.startswith("POST /v2/chat/completions: Not Found (request id: req_")
