"""The official `anthropic` SDK against /v1/messages, changing only base_url."""

from __future__ import annotations

import anthropic
import pytest

from tests.support import APP_KEY, KEYS, GatewayFactory, Running, stored
from trimtab.testing.mock_upstream import MockUpstream


def client(running: Running, key: str = APP_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=running.url, api_key=key, max_retries=0)


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return gateway(store=store_url, keys=KEYS)


def test_messages_non_streaming(running: Running, upstream: MockUpstream) -> None:
    raw = client(running).messages.with_raw_response.create(
        model="claude-mock",
        max_tokens=64,
        system="be terse",
        messages=[{"role": "user", "content": "hello claude"}],
        metadata={"user_id": "u-ant"},
        extra_headers={"x-trimtab-feature": "support-answer"},
    )
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == "mock reply to: hello claude"
    assert message.stop_reason == "end_turn"
    sent = [r for r in upstream.requests if r.path == "/v1/messages"][-1]
    assert sent.body["model"] == "claude-x"
    assert sent.body["metadata"] == {"user_id": "u-ant"}
    row = stored(running, raw.headers["x-trimtab-request-id"])
    assert row["api"] == "anthropic"
    assert row["user_id"] == "u-ant"
    assert row["feature"] == "support-answer"
    assert row["input_tokens"] == message.usage.input_tokens
    assert row["output_tokens"] == message.usage.output_tokens
    assert row["finish_reasons"] == ["end_turn"]


def test_messages_streaming(running: Running) -> None:
    with client(running).messages.stream(
        model="claude-mock",
        max_tokens=64,
        messages=[{"role": "user", "content": "stream claude"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "mock reply to: stream claude"
    assert final.usage.output_tokens > 0
    assert final.stop_reason == "end_turn"


def test_messages_to_an_openai_wire_model(running: Running) -> None:
    """An Anthropic client may call any model: the request and reply are translated."""
    c = client(running)
    message = c.messages.create(
        model="gpt-mock", max_tokens=64, messages=[{"role": "user", "content": "cross over"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "mock reply to: cross over"
    assert message.usage.input_tokens > 0
    with c.messages.stream(
        model="gpt-mock", max_tokens=64, messages=[{"role": "user", "content": "cross stream"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "mock reply to: cross stream"
    assert final.usage.output_tokens > 0
    assert final.stop_reason == "end_turn"


def test_messages_to_the_simulator(running: Running) -> None:
    message = client(running).messages.create(
        model="sim-1", max_tokens=5, messages=[{"role": "user", "content": "short please"}]
    )
    assert message.stop_reason == "max_tokens"
    assert len(message.content[0].text.split()) == 5  # type: ignore[union-attr]


def test_anthropic_errors_are_anthropic_shaped(running: Running) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client(running).messages.create(
            model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    body = info.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    assert "no-such-model" in body["error"]["message"]
    assert body["request_id"] == info.value.response.headers["x-trimtab-request-id"]
    with pytest.raises(anthropic.AuthenticationError):
        client(running, key="tt-wrong-key-000").messages.create(
            model="claude-mock", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


def test_models_in_anthropic_format(running: Running) -> None:
    ids = {m.id for m in client(running).models.list()}
    assert {"claude-mock", "gpt-mock"} <= ids
