"""The mock upstream's Anthropic side (trimtab.testing.mock_anthropic): messages whole and
streamed, tool use, and the official anthropic SDK against it."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest

from tests.testing.support import PROMPT, REPLY, anthropic_events, msg
from trimtab.testing.mock_upstream import MockUpstream

WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_anthropic_reply(upstream: MockUpstream, client: httpx.Client) -> None:
    body = msg(system="be brief")
    data = client.post(upstream.url + "/v1/messages", json=body).json()
    assert data == {
        "id": "msg_mock_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-mock",
        "content": [{"type": "text", "text": REPLY}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 8, "output_tokens": 9},
    }


def test_anthropic_max_tokens(upstream: MockUpstream, client: httpx.Client) -> None:
    data = client.post(upstream.url + "/v1/messages", json=msg(max_tokens=3)).json()
    assert data["content"][0]["text"] == "mock reply to:"
    assert data["stop_reason"] == "max_tokens"
    assert data["usage"]["output_tokens"] == 3


def test_anthropic_tool_use(upstream: MockUpstream, client: httpx.Client) -> None:
    body = msg(text="weather in Paris?", tools=[WEATHER_TOOL_ANTHROPIC])
    data = client.post(upstream.url + "/v1/messages", json=body).json()
    assert data["stop_reason"] == "tool_use"
    assert data["content"] == [
        {
            "type": "tool_use",
            "id": "toolu_mock_1",
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
    ]
    # A tool_result turn gets a text answer, quoting the last user text.
    body["messages"] += [
        {"role": "assistant", "content": data["content"]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1", "content": "sunny"}],
        },
    ]
    data = client.post(upstream.url + "/v1/messages", json=body).json()
    assert data["stop_reason"] == "end_turn"
    assert data["content"] == [{"type": "text", "text": "mock reply to: weather in Paris?"}]


def test_anthropic_stream_events(upstream: MockUpstream, client: httpx.Client) -> None:
    r = client.post(upstream.url + "/v1/messages", json=msg(stream=True))
    assert r.headers["content-type"].startswith("text/event-stream")
    events = anthropic_events(r.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 9,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_mock_")
    assert start["content"] == [] and start["model"] == "claude-mock"
    assert start["usage"] == {"input_tokens": 6, "output_tokens": 1}
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    assert "".join(d["text"] for d in deltas) == REPLY
    message_delta = events[-2][1]
    assert message_delta["delta"]["stop_reason"] == "end_turn"
    assert message_delta["usage"] == {"output_tokens": 9}


def test_anthropic_tool_use_stream(upstream: MockUpstream, client: httpx.Client) -> None:
    body = msg(text="weather?", tools=[WEATHER_TOOL_ANTHROPIC], stream=True)
    events = anthropic_events(client.post(upstream.url + "/v1/messages", json=body).text)
    block = events[1][1]["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather"
    partial = "".join(
        data["delta"]["partial_json"] for name, data in events if name == "content_block_delta"
    )
    assert json.loads(partial) == {"city": "Paris"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert events[-1][0] == "message_stop"


def _anthropic_client(upstream: MockUpstream, **kwargs: Any) -> anthropic.Anthropic:
    """An Anthropic SDK client pointed at the mock."""
    kwargs.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=upstream.url, api_key="sk-ant-test", **kwargs)


def test_anthropic_sdk_messages(upstream: MockUpstream) -> None:
    with _anthropic_client(upstream) as sdk:
        message = sdk.messages.create(
            model="claude-mock", max_tokens=100, messages=[{"role": "user", "content": PROMPT}]
        )
    assert message.id == "msg_mock_1"
    assert message.stop_reason == "end_turn"
    block = message.content[0]
    assert block.type == "text" and block.text == REPLY
    assert message.usage.input_tokens == 6 and message.usage.output_tokens == 9
    headers = upstream.requests[0].headers
    # Depending on the SDK version the key travels as x-api-key or as a bearer token.
    assert "sk-ant-test" in (headers.get("x-api-key"), headers.get("authorization", "")[7:])
    assert "anthropic-version" in headers


def test_anthropic_sdk_stream(upstream: MockUpstream) -> None:
    with (
        _anthropic_client(upstream) as sdk,
        sdk.messages.stream(
            model="claude-mock", max_tokens=5, messages=[{"role": "user", "content": PROMPT}]
        ) as stream,
    ):
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["mock", " reply", " to:", " what", " is"]
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 5


def test_anthropic_sdk_tool_use(upstream: MockUpstream) -> None:
    with _anthropic_client(upstream) as sdk:
        message = sdk.messages.create(
            model="claude-mock",
            max_tokens=100,
            tools=[WEATHER_TOOL_ANTHROPIC],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "weather in Paris?"}],
        )
        with sdk.messages.stream(
            model="claude-mock",
            max_tokens=100,
            tools=[WEATHER_TOOL_ANTHROPIC],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "weather in Paris?"}],
        ) as stream:
            streamed = stream.get_final_message()
    for result in (message, streamed):
        assert result.stop_reason == "tool_use"
        block = result.content[0]
        assert block.type == "tool_use"
        assert block.name == "get_weather"
        assert block.input == {"city": "Paris"}
        assert block.id.startswith("toolu_mock_")


def test_anthropic_sdk_errors(upstream: MockUpstream) -> None:
    with _anthropic_client(upstream, timeout=1.0) as sdk:

        def call(model: str) -> object:
            return sdk.messages.create(
                model=model, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )

        with pytest.raises(anthropic.RateLimitError):
            call("fail-429")
        with pytest.raises(anthropic.InternalServerError):
            call("fail-500")
        with pytest.raises(anthropic.AuthenticationError):
            call("fail-401")
        with pytest.raises(anthropic.APIConnectionError):
            call("reset")
        with pytest.raises(anthropic.APITimeoutError):
            call("hang")
