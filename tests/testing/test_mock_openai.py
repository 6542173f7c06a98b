"""The mock upstream's OpenAI side (trimtab.testing.mock_openai): chat completions whole and
streamed, tool calls, embeddings, and the official openai SDK against it."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import httpx
import openai
import pytest

from tests.testing.support import PROMPT, REPLY, WEATHER_TOOL_OPENAI, chat, openai_chunks
from trimtab.testing.mock_upstream import MockUpstream


def test_openai_reply_is_deterministic(upstream: MockUpstream, client: httpx.Client) -> None:
    body = chat(
        "my-model",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": [{"type": "text", "text": PROMPT}]},
        ],
    )
    url = upstream.openai_base_url + "/chat/completions"
    one, two = client.post(url, json=body).json(), client.post(url, json=body).json()
    assert one["id"] == "chatcmpl-mock-1" and two["id"] == "chatcmpl-mock-2"
    assert one["object"] == "chat.completion"
    assert one["model"] == "my-model"
    choice = one["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == REPLY
    assert choice["finish_reason"] == "stop"
    # 2 + 2 + 2 + 6 words across all messages; 9 words in the reply.
    assert one["usage"] == {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
    assert two["choices"] == one["choices"]


def test_openai_stream_chunks(upstream: MockUpstream, client: httpx.Client) -> None:
    r = client.post(upstream.openai_base_url + "/chat/completions", json=chat(stream=True))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    chunks = openai_chunks(r.text)
    assert chunks[-1] == "[DONE]"
    objs = chunks[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in objs)
    assert all(c["id"] == objs[0]["id"] and c["model"] == "gpt-mock" for c in objs)
    assert all("usage" not in c for c in objs)  # no include_usage requested
    assert objs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    words = [c["choices"][0]["delta"]["content"] for c in objs[1:-1]]
    assert words == ["mock", " reply", " to:", " what", " is", " the", " capital", " of", " france"]
    assert "".join(words) == REPLY
    assert objs[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }


def test_openai_stream_include_usage(upstream: MockUpstream, client: httpx.Client) -> None:
    body = chat(stream=True, max_tokens=2, stream_options={"include_usage": True})
    chunks = openai_chunks(
        client.post(upstream.openai_base_url + "/chat/completions", json=body).text
    )
    assert chunks[-1] == "[DONE]"
    usage_chunk, finish_chunk = chunks[-2], chunks[-3]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}
    assert finish_chunk["choices"][0]["finish_reason"] == "length"
    assert all(c["usage"] is None for c in chunks[:-2])


def test_openai_tool_call(upstream: MockUpstream, client: httpx.Client) -> None:
    body = chat(text="What's the Weather in Paris?", tools=[WEATHER_TOOL_OPENAI])
    data = client.post(upstream.openai_base_url + "/chat/completions", json=body).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    # Without tools, or without "weather", it is a normal reply.
    no_tools = client.post(
        upstream.openai_base_url + "/chat/completions", json=chat(text="weather")
    )
    assert no_tools.json()["choices"][0]["finish_reason"] == "stop"
    other = chat(text="weatherproof jacket", tools=[WEATHER_TOOL_OPENAI])
    r = client.post(upstream.openai_base_url + "/chat/completions", json=other)
    assert r.json()["choices"][0]["finish_reason"] == "stop"


def test_openai_tool_call_stream(upstream: MockUpstream, client: httpx.Client) -> None:
    body = chat(text="weather?", tools=[WEATHER_TOOL_OPENAI], stream=True)
    chunks = openai_chunks(
        client.post(upstream.openai_base_url + "/chat/completions", json=body).text
    )
    assert chunks[-1] == "[DONE]"
    first = chunks[0]["choices"][0]["delta"]
    assert first["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    args = "".join(
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for c in chunks[1:-2]
    )
    assert json.loads(args) == {"city": "Paris"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_embeddings(upstream: MockUpstream, client: httpx.Client) -> None:
    url = upstream.openai_base_url + "/embeddings"
    single = client.post(url, json={"model": "emb", "input": "hello world"}).json()
    assert single["object"] == "list" and single["model"] == "emb"
    assert single["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    (item,) = single["data"]
    assert item["object"] == "embedding" and item["index"] == 0
    assert len(item["embedding"]) == 8
    assert all(isinstance(v, float) and -1.0 <= v <= 1.0 for v in item["embedding"])
    batch = client.post(url, json={"model": "emb", "input": ["hello world", "other"]}).json()
    assert [d["index"] for d in batch["data"]] == [0, 1]
    assert batch["data"][0]["embedding"] == item["embedding"]  # deterministic
    assert batch["data"][1]["embedding"] != item["embedding"]
    assert batch["usage"]["prompt_tokens"] == 3
    b64 = client.post(
        url, json={"model": "emb", "input": "hello world", "encoding_format": "base64"}
    ).json()
    decoded = struct.unpack("<8f", base64.b64decode(b64["data"][0]["embedding"]))
    assert decoded == pytest.approx(item["embedding"], abs=1e-6)
    assert client.post(url, json={"model": "emb", "input": 3}).status_code == 400


def _openai_client(upstream: MockUpstream, **kwargs: Any) -> openai.OpenAI:
    """An OpenAI SDK client pointed at the mock."""
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=upstream.openai_base_url, api_key="sk-test", **kwargs)


def test_openai_sdk_chat(upstream: MockUpstream) -> None:
    with _openai_client(upstream) as sdk:
        completion = sdk.chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": PROMPT}]
        )
    assert completion.id == "chatcmpl-mock-1"
    assert completion.model == "gpt-mock"
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 15
    assert upstream.requests[0].headers["authorization"] == "Bearer sk-test"


def test_openai_sdk_stream(upstream: MockUpstream) -> None:
    with _openai_client(upstream) as sdk:
        stream = sdk.chat.completions.create(
            model="gpt-mock",
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 9


def test_openai_sdk_tools_embeddings_models(upstream: MockUpstream) -> None:
    with _openai_client(upstream) as sdk:
        completion = sdk.chat.completions.create(
            model="gpt-mock",
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=[WEATHER_TOOL_OPENAI],  # type: ignore[list-item]
        )
        embeddings = sdk.embeddings.create(model="emb", input=["a b", "c"])
        models = [m.id for m in sdk.models.list()]
    calls = completion.choices[0].message.tool_calls
    assert calls is not None and calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert completion.choices[0].finish_reason == "tool_calls"
    assert len(embeddings.data) == 2 and len(embeddings.data[0].embedding) == 8
    assert embeddings.usage.prompt_tokens == 3
    assert len(models) >= 2


def test_openai_sdk_errors(upstream: MockUpstream) -> None:
    with _openai_client(upstream, timeout=1.0) as sdk:

        def call(model: str) -> object:
            return sdk.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )

        with pytest.raises(openai.RateLimitError) as rate_limited:
            call("fail-429")
        assert rate_limited.value.response.headers["retry-after"] == "1"
        with pytest.raises(openai.InternalServerError):
            call("fail-503")
        with pytest.raises(openai.AuthenticationError):
            call("fail-401")
        with pytest.raises(openai.BadRequestError):
            call("fail-400")
        with pytest.raises(openai.APITimeoutError):
            call("hang")
        with pytest.raises(openai.APIConnectionError):
            call("reset")


def test_openai_sdk_retries_flaky(upstream: MockUpstream) -> None:
    with _openai_client(upstream, max_retries=2) as sdk:
        completion = sdk.chat.completions.create(
            model="flaky-1", messages=[{"role": "user", "content": PROMPT}]
        )
    assert completion.choices[0].message.content == REPLY
    assert len(upstream.requests) == 2
