"""The mock upstream's deterministic replies (trimtab.testing.mock_replies): the text it quotes,
the words it counts, where max_tokens cuts, when a tool result gets a text answer."""

from __future__ import annotations

import httpx
import pytest

from tests.testing.support import WEATHER_TOOL_OPENAI, chat
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
