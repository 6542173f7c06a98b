"""The mock upstream's deterministic replies (trimtab.testing.mock_replies): the text it quotes,
the words it counts, where max_tokens cuts, when a tool result gets a text answer, and the
refusal model `refuse` answers with."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.testing.support import WEATHER_TOOL_OPENAI, anthropic_events, chat, msg, openai_chunks
from trimtab.testing.mock_replies import REFUSAL_TEXT
from trimtab.testing.mock_upstream import MockUpstream


def test_openai_reply_quotes_first_40_chars(upstream: MockUpstream, client: httpx.Client) -> None:
    text = "x" * 30 + "  yyyyyyyyyy zzzz tail"
    r = client.post(upstream.openai_base_url + "/chat/completions", json=chat(text=text))
    content = r.json()["choices"][0]["message"]["content"]
    assert content == "mock reply to: " + ("x" * 30 + " yyyyyyyyy")
    assert r.json()["usage"]["prompt_tokens"] == 4


def test_openai_empty_prompt_counts_one_token(upstream: MockUpstream, client: httpx.Client) -> None:
    r = client.post(upstream.openai_base_url + "/chat/completions", json=chat(text=""))
    assert r.json()["usage"]["prompt_tokens"] == 1
    assert r.json()["choices"][0]["message"]["content"] == "mock reply to:"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_openai_truncates_to_max_tokens(
    upstream: MockUpstream, client: httpx.Client, field: str
) -> None:
    url = upstream.openai_base_url + "/chat/completions"
    data = client.post(url, json={**chat(), field: 4}).json()
    assert data["choices"][0]["message"]["content"] == "mock reply to: what"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 4
    data = client.post(url, json={**chat(), field: 9}).json()
    assert data["choices"][0]["finish_reason"] == "stop"


def test_openai_tool_result_gets_text_reply(upstream: MockUpstream, client: httpx.Client) -> None:
    body = chat(
        tools=[WEATHER_TOOL_OPENAI],
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
    )
    data = client.post(upstream.openai_base_url + "/chat/completions", json=body).json()
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["choices"][0]["message"]["content"] == "mock reply to: weather in Paris?"


ECHOED = "mail me at jane.doe@example.com, card 4111 1111 1111 1111"


def test_echo_tool_answers_a_tool_call_echoing_the_user_text_in_both_formats(
    upstream: MockUpstream, client: httpx.Client
) -> None:
    url = upstream.openai_base_url + "/chat/completions"
    whole = client.post(url, json=chat(model="echo-tool", text=ECHOED)).json()
    call = whole["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "echo" and whole["choices"][0]["finish_reason"] == (
        "tool_calls"
    )
    assert json.loads(call["function"]["arguments"]) == {"text": ECHOED}
    offered = chat(model="echo-tool", text=ECHOED, tools=[WEATHER_TOOL_OPENAI], stream=True)
    chunks = [c for c in openai_chunks(client.post(url, json=offered).text) if c != "[DONE]"]
    deltas = [
        d["function"]["arguments"]
        for c in chunks
        for d in c["choices"][0]["delta"].get("tool_calls") or ()
    ]
    assert chunks[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == ("get_weather")
    assert json.loads("".join(deltas)) == {"text": ECHOED}
    assert max(len(d) for d in deltas) == 7  # the address spans several deltas
    mine = client.post(upstream.url + "/v1/messages", json=msg(model="echo-tool", text=ECHOED))
    block = mine.json()["content"][0]
    assert block["type"] == "tool_use" and block["input"] == {"text": ECHOED}
    streamed = client.post(
        upstream.url + "/v1/messages", json=msg(model="echo-tool", text=ECHOED, stream=True)
    )
    partial = "".join(
        data["delta"]["partial_json"]
        for name, data in anthropic_events(streamed.text)
        if name == "content_block_delta"
    )
    assert json.loads(partial) == {"text": ECHOED}


def test_refuse_answers_a_refusal_in_both_formats(
    upstream: MockUpstream, client: httpx.Client
) -> None:
    url = upstream.openai_base_url + "/chat/completions"
    whole = client.post(url, json=chat(model="refuse")).json()["choices"][0]
    assert whole["finish_reason"] == "content_filter"
    assert whole["message"]["content"] == REFUSAL_TEXT
    streamed = client.post(url, json=chat(model="refuse", stream=True)).text
    chunks = [c for c in openai_chunks(streamed) if c != "[DONE]"]
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "content_filter"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == REFUSAL_TEXT
    mine = client.post(upstream.url + "/v1/messages", json=msg(model="refuse")).json()
    assert mine["stop_reason"] == "refusal" and mine["content"][0]["text"] == REFUSAL_TEXT
    events = anthropic_events(
        client.post(upstream.url + "/v1/messages", json=msg(model="refuse", stream=True)).text
    )
    stops = [data["delta"]["stop_reason"] for name, data in events if name == "message_delta"]
    assert stops == ["refusal"]
