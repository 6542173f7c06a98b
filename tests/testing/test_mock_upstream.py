"""Tests for the fault-injecting mock upstream, over real loopback sockets."""

from __future__ import annotations

import base64
import json
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import anthropic
import httpx
import openai
import pytest

from trimtab.testing.mock_upstream import MockUpstream, RecordedRequest
from trimtab.testing.servers import free_port

PROMPT = "what is the capital of france"
REPLY = "mock reply to: what is the capital of france"
WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def upstream() -> Iterator[MockUpstream]:
    """A running mock upstream."""
    with MockUpstream() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A plain HTTP client with a short timeout."""
    with httpx.Client(timeout=10) as http:
        yield http


def _chat(model: str = "gpt-mock", text: str = PROMPT, **extra: Any) -> dict[str, Any]:
    """An OpenAI chat request body."""
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def _msg(model: str = "claude-mock", text: str = PROMPT, **extra: Any) -> dict[str, Any]:
    """An Anthropic messages request body."""
    body: dict[str, Any] = {"model": model, "max_tokens": 256}
    body.update(messages=[{"role": "user", "content": text}], **extra)
    return body


def _openai_chunks(raw: str) -> list[Any]:
    """Parse an OpenAI SSE body into chunk objects (``"[DONE]"`` kept as a string)."""
    out: list[Any] = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def _anthropic_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse an Anthropic SSE body into (event name, data) pairs."""
    out: list[tuple[str, dict[str, Any]]] = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line[len("data: ") :])
        assert data["type"] == event_line[len("event: ") :]
        out.append((data["type"], data))
    return out


def _port_closed(port: int) -> bool:
    """Whether nothing accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


# ---------------------------------------------------------------------------------------------
# Lifecycle and recording
# ---------------------------------------------------------------------------------------------


def test_lifecycle_urls_and_port_closed_after_stop(client: httpx.Client) -> None:
    server = MockUpstream()
    with pytest.raises(RuntimeError):
        _ = server.port
    assert server.start() is server
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.openai_base_url == server.url + "/v1"
    assert client.get(server.openai_base_url + "/models").status_code == 200
    server.stop()
    server.stop()  # idempotent
    assert _port_closed(server.port)


def test_explicit_port_and_restart() -> None:
    port = free_port()
    server = MockUpstream(port=port)
    with server:
        assert server.port == port
        assert httpx.get(server.url + "/v1/models", timeout=5).status_code == 200
    assert _port_closed(port)
    with server:  # can be started again after stop
        assert httpx.get(server.url + "/v1/models", timeout=5).status_code == 200


def test_port_in_use_raises() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        with pytest.raises(OSError):
            MockUpstream(port=blocker.getsockname()[1]).start()


def test_records_requests_and_clear(upstream: MockUpstream, client: httpx.Client) -> None:
    client.post(
        upstream.openai_base_url + "/chat/completions",
        json=_chat(),
        headers={"Authorization": "Bearer sk-test", "X-Custom": "1"},
    )
    client.get(upstream.openai_base_url + "/models")
    client.post(upstream.url + "/v1/messages", content=b"{not json", headers={"x-api-key": "k"})
    first, second, third = upstream.requests
    assert isinstance(first, RecordedRequest)
    assert first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.headers["x-custom"] == "1"
    assert first.body == _chat()
    assert (second.path, second.body) == ("/v1/models", None)
    assert (third.path, third.body, third.headers["x-api-key"]) == ("/v1/messages", None, "k")
    upstream.clear()
    assert upstream.requests == []


def test_invalid_requests_get_wire_format_400(upstream: MockUpstream, client: httpx.Client) -> None:
    r = client.post(upstream.openai_base_url + "/chat/completions", content=b"nope")
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = client.post(upstream.url + "/v1/messages", json={"model": "x"})
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = client.get(upstream.url + "/nowhere")
    assert r.status_code == 404
    assert upstream.requests[-1].path == "/nowhere"


# ---------------------------------------------------------------------------------------------
# OpenAI Chat Completions
# ---------------------------------------------------------------------------------------------


def test_openai_reply_is_deterministic(upstream: MockUpstream, client: httpx.Client) -> None:
    body = _chat(
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


def test_openai_reply_quotes_first_40_chars(upstream: MockUpstream, client: httpx.Client) -> None:
    text = "x" * 30 + "  yyyyyyyyyy zzzz tail"
    r = client.post(upstream.openai_base_url + "/chat/completions", json=_chat(text=text))
    content = r.json()["choices"][0]["message"]["content"]
    assert content == "mock reply to: " + ("x" * 30 + " yyyyyyyyy")
    assert r.json()["usage"]["prompt_tokens"] == 4


def test_openai_empty_prompt_counts_one_token(upstream: MockUpstream, client: httpx.Client) -> None:
    r = client.post(upstream.openai_base_url + "/chat/completions", json=_chat(text=""))
    assert r.json()["usage"]["prompt_tokens"] == 1
    assert r.json()["choices"][0]["message"]["content"] == "mock reply to:"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_openai_truncates_to_max_tokens(
    upstream: MockUpstream, client: httpx.Client, field: str
) -> None:
    url = upstream.openai_base_url + "/chat/completions"
    data = client.post(url, json={**_chat(), field: 4}).json()
    assert data["choices"][0]["message"]["content"] == "mock reply to: what"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 4
    data = client.post(url, json={**_chat(), field: 9}).json()
    assert data["choices"][0]["finish_reason"] == "stop"


def test_openai_stream_chunks(upstream: MockUpstream, client: httpx.Client) -> None:
    r = client.post(upstream.openai_base_url + "/chat/completions", json=_chat(stream=True))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    chunks = _openai_chunks(r.text)
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
    body = _chat(stream=True, max_tokens=2, stream_options={"include_usage": True})
    chunks = _openai_chunks(
        client.post(upstream.openai_base_url + "/chat/completions", json=body).text
    )
    assert chunks[-1] == "[DONE]"
    usage_chunk, finish_chunk = chunks[-2], chunks[-3]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}
    assert finish_chunk["choices"][0]["finish_reason"] == "length"
    assert all(c["usage"] is None for c in chunks[:-2])


def test_openai_tool_call(upstream: MockUpstream, client: httpx.Client) -> None:
    body = _chat(text="What's the Weather in Paris?", tools=[WEATHER_TOOL_OPENAI])
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
        upstream.openai_base_url + "/chat/completions", json=_chat(text="weather")
    )
    assert no_tools.json()["choices"][0]["finish_reason"] == "stop"
    other = _chat(text="weatherproof jacket", tools=[WEATHER_TOOL_OPENAI])
    r = client.post(upstream.openai_base_url + "/chat/completions", json=other)
    assert r.json()["choices"][0]["finish_reason"] == "stop"


def test_openai_tool_result_gets_text_reply(upstream: MockUpstream, client: httpx.Client) -> None:
    body = _chat(
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


def test_openai_tool_call_stream(upstream: MockUpstream, client: httpx.Client) -> None:
    body = _chat(text="weather?", tools=[WEATHER_TOOL_OPENAI], stream=True)
    chunks = _openai_chunks(
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


# ---------------------------------------------------------------------------------------------
# Anthropic Messages
# ---------------------------------------------------------------------------------------------


def test_anthropic_reply(upstream: MockUpstream, client: httpx.Client) -> None:
    body = _msg(system="be brief")
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
    data = client.post(upstream.url + "/v1/messages", json=_msg(max_tokens=3)).json()
    assert data["content"][0]["text"] == "mock reply to:"
    assert data["stop_reason"] == "max_tokens"
    assert data["usage"]["output_tokens"] == 3


def test_anthropic_tool_use(upstream: MockUpstream, client: httpx.Client) -> None:
    body = _msg(text="weather in Paris?", tools=[WEATHER_TOOL_ANTHROPIC])
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
    r = client.post(upstream.url + "/v1/messages", json=_msg(stream=True))
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _anthropic_events(r.text)
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
    body = _msg(text="weather?", tools=[WEATHER_TOOL_ANTHROPIC], stream=True)
    events = _anthropic_events(client.post(upstream.url + "/v1/messages", json=body).text)
    block = events[1][1]["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather"
    partial = "".join(
        data["delta"]["partial_json"] for name, data in events if name == "content_block_delta"
    )
    assert json.loads(partial) == {"city": "Paris"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert events[-1][0] == "message_stop"


# ---------------------------------------------------------------------------------------------
# Embeddings and models
# ---------------------------------------------------------------------------------------------


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


def test_models(upstream: MockUpstream, client: httpx.Client) -> None:
    data = client.get(upstream.openai_base_url + "/models").json()
    assert data["object"] == "list"
    assert len(data["data"]) >= 2
    assert all(m["object"] == "model" and m["id"] for m in data["data"])


# ---------------------------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "status", "openai_type", "anthropic_type"),
    [
        ("fail-400", 400, "invalid_request_error", "invalid_request_error"),
        ("fail-401", 401, "invalid_request_error", "authentication_error"),
        ("fail-429", 429, "rate_limit_error", "rate_limit_error"),
        ("fail-500", 500, "server_error", "api_error"),
        ("fail-502", 502, "server_error", "api_error"),
        ("fail-503", 503, "server_error", "api_error"),
        ("fail-529", 529, "server_error", "overloaded_error"),
        ("fail-418", 418, "invalid_request_error", "invalid_request_error"),
    ],
)
def test_fail_directives(
    upstream: MockUpstream,
    client: httpx.Client,
    model: str,
    status: int,
    openai_type: str,
    anthropic_type: str,
) -> None:
    for stream in (False, True):
        r = client.post(
            upstream.openai_base_url + "/chat/completions", json=_chat(model, stream=stream)
        )
        assert r.status_code == status
        assert r.headers["content-type"].startswith("application/json")
        error = r.json()["error"]
        assert error["type"] == openai_type
        assert isinstance(error["message"], str) and error["message"]
        assert "code" in error
        r = client.post(upstream.url + "/v1/messages", json=_msg(model, stream=stream))
        assert r.status_code == status
        assert r.json()["type"] == "error"
        assert r.json()["error"]["type"] == anthropic_type
        assert r.json()["error"]["message"]
        if status == 429:
            assert r.headers["retry-after"] == "1"
    r = client.post(upstream.openai_base_url + "/embeddings", json={"model": model, "input": "x"})
    assert r.status_code == status


def test_fail_429_retry_after_openai(upstream: MockUpstream, client: httpx.Client) -> None:
    r = client.post(upstream.openai_base_url + "/chat/completions", json=_chat("fail-429"))
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"


def test_flaky_counts_per_model_name(upstream: MockUpstream, client: httpx.Client) -> None:
    url = upstream.openai_base_url + "/chat/completions"
    statuses = [client.post(url, json=_chat("flaky-2")).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert client.post(url, json=_chat("flaky-1")).status_code == 503  # separate counter
    assert client.post(upstream.url + "/v1/messages", json=_msg("flaky-1")).status_code == 200
    assert client.post(url, json=_chat("flaky-0")).status_code == 200
    upstream.clear()
    assert client.post(url, json=_chat("flaky-2")).status_code == 503
    reply = client.post(upstream.url + "/v1/messages", json=_msg("flaky-2")).json()
    assert reply["type"] == "error" and reply["error"]["type"] == "api_error"


def test_flaky_counter_is_per_instance(client: httpx.Client) -> None:
    with MockUpstream() as a, MockUpstream() as b:
        assert client.post(a.url + "/v1/messages", json=_msg("flaky-1")).status_code == 503
        assert client.post(b.url + "/v1/messages", json=_msg("flaky-1")).status_code == 503
        assert client.post(a.url + "/v1/messages", json=_msg("flaky-1")).status_code == 200


def test_hang_never_answers(upstream: MockUpstream) -> None:
    with httpx.Client(timeout=httpx.Timeout(5, read=0.5)) as slow_client:
        for url, body in [
            (upstream.openai_base_url + "/chat/completions", _chat("hang")),
            (upstream.url + "/v1/messages", _msg("hang", stream=True)),
        ]:
            with pytest.raises(httpx.ReadTimeout):
                slow_client.post(url, json=body)
    assert [r.body["model"] for r in upstream.requests] == ["hang", "hang"]
    # The server is still healthy afterwards.
    r = httpx.post(upstream.openai_base_url + "/chat/completions", json=_chat(), timeout=5)
    assert r.status_code == 200


def test_stop_while_a_request_hangs() -> None:
    server = MockUpstream().start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        body = json.dumps(_chat("hang")).encode()
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 10
        assert sock.recv(1024) == b""  # closed without any response


@pytest.mark.parametrize("stream", [False, True])
def test_reset_aborts_without_response(
    upstream: MockUpstream, client: httpx.Client, stream: bool
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(
            upstream.openai_base_url + "/chat/completions", json=_chat("reset", stream=stream)
        )
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(upstream.url + "/v1/messages", json=_msg("reset", stream=stream))
    assert len(upstream.requests) == 2


def test_reset_raw_socket_gets_no_bytes(upstream: MockUpstream) -> None:
    with socket.create_connection(("127.0.0.1", upstream.port), timeout=5) as sock:
        body = json.dumps(_msg("reset")).encode()
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        try:
            data = sock.recv(1024)
        except ConnectionResetError:
            data = b""
        assert data == b""


def test_bad_json(upstream: MockUpstream, client: httpx.Client) -> None:
    for url, body in [
        (upstream.openai_base_url + "/chat/completions", _chat("bad-json")),
        (upstream.url + "/v1/messages", _msg("bad-json")),
        (upstream.openai_base_url + "/chat/completions", _chat("bad-json", stream=True)),
    ]:
        r = client.post(url, json=body)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.content == b'{"id": "x", "choices": ['
        with pytest.raises(json.JSONDecodeError):
            r.json()


def test_cut_stream_openai(upstream: MockUpstream, client: httpx.Client) -> None:
    received = b""
    body = _chat("cut-stream", stream=True, stream_options={"include_usage": True})
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", upstream.openai_base_url + "/chat/completions", json=body) as r,
    ):
        assert r.status_code == 200
        for piece in r.iter_raw():
            received += piece
    chunks = _openai_chunks(received.decode())
    assert len(chunks) == 3  # role chunk + 2 content chunks
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "mock", " reply"]
    assert b"[DONE]" not in received


def test_cut_stream_anthropic(upstream: MockUpstream, client: httpx.Client) -> None:
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream(
            "POST", upstream.url + "/v1/messages", json=_msg("cut-stream", stream=True)
        ) as r,
    ):
        for piece in r.iter_raw():
            received += piece
    names = [name for name, _ in _anthropic_events(received.decode())]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
    ]


def test_cut_stream_without_stream_is_reset(upstream: MockUpstream, client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(upstream.openai_base_url + "/chat/completions", json=_chat("cut-stream"))


@pytest.mark.parametrize("stream", [False, True])
def test_slow_delays_the_whole_answer(
    upstream: MockUpstream, client: httpx.Client, stream: bool
) -> None:
    started = time.monotonic()
    with client.stream(
        "POST",
        upstream.openai_base_url + "/chat/completions",
        json=_chat("slow-300", stream=stream),
    ) as r:
        headers_at = time.monotonic()
        r.read()
    assert r.status_code == 200
    assert headers_at - started >= 0.28
    if stream:
        assert _openai_chunks(r.text)[-1] == "[DONE]"
    else:
        assert r.json()["choices"][0]["message"]["content"] == REPLY
    started = time.monotonic()
    r2 = client.post(upstream.url + "/v1/messages", json=_msg("slow-300", stream=stream))
    assert time.monotonic() - started >= 0.28
    assert r2.status_code == 200


def test_slow_first_sends_headers_then_waits(upstream: MockUpstream, client: httpx.Client) -> None:
    for url, body in [
        (upstream.openai_base_url + "/chat/completions", _chat("slow-first-500", stream=True)),
        (upstream.url + "/v1/messages", _msg("slow-first-500", stream=True)),
    ]:
        with client.stream("POST", url, json=body) as r:
            headers_at = time.monotonic()
            assert r.status_code == 200
            pieces = r.iter_raw()
            first = next(pieces)
            first_at = time.monotonic()
            rest = b"".join(pieces)
        # The headers arrived well before the first chunk, which was held back.
        assert first_at - headers_at >= 0.4
        assert first.startswith((b"data: ", b"event: "))
        assert rest.endswith((b"data: [DONE]\n\n", b'data: {"type":"message_stop"}\n\n'))
    started = time.monotonic()
    r2 = client.post(upstream.openai_base_url + "/chat/completions", json=_chat("slow-first-300"))
    assert time.monotonic() - started >= 0.28
    assert r2.json()["choices"][0]["message"]["content"] == REPLY


async def test_drip_streams_incrementally(upstream: MockUpstream) -> None:
    body = _chat("drip-100", stream=True)
    arrivals: list[tuple[float, bytes]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(upstream.openai_base_url + "/chat/completions", json=body) as resp,
    ):
        assert resp.status == 200
        while True:
            event = await resp.content.readuntil(b"\n\n")
            if not event:
                break
            arrivals.append((time.monotonic(), event))
            if event == b"data: [DONE]\n\n":
                break
    # role + 9 words + finish + [DONE]
    assert len(arrivals) == 12
    times = [t for t, _ in arrivals]
    assert times == sorted(times)
    # Every event arrived on its own, so the first came long before the last ...
    assert times[-1] - times[0] >= 11 * 0.1 * 0.9
    # ... and the first content chunk was readable while most of the stream was pending.
    assert times[-1] - times[1] >= 10 * 0.1 * 0.9
    assert json.loads(arrivals[1][1][len(b"data: ") :])["choices"][0]["delta"]["content"] == "mock"


async def test_anthropic_drip_streams_incrementally(upstream: MockUpstream) -> None:
    arrivals: list[float] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(upstream.url + "/v1/messages", json=_msg("drip-80", stream=True)) as resp,
    ):
        while event := await resp.content.readuntil(b"\n\n"):
            arrivals.append(time.monotonic())
            if event.startswith(b"event: message_stop"):
                break
    assert len(arrivals) == 14
    assert arrivals[-1] - arrivals[0] >= 13 * 0.08 * 0.9


def test_unknown_model_names_reply_normally(upstream: MockUpstream, client: httpx.Client) -> None:
    for model in ["fail", "slow-", "hang-on", "gpt-4o", "reset2"]:
        r = client.post(upstream.openai_base_url + "/chat/completions", json=_chat(model))
        assert r.status_code == 200, model
        assert r.json()["model"] == model


# ---------------------------------------------------------------------------------------------
# Official SDKs
# ---------------------------------------------------------------------------------------------


def _openai_client(upstream: MockUpstream, **kwargs: Any) -> openai.OpenAI:
    """An OpenAI SDK client pointed at the mock."""
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=upstream.openai_base_url, api_key="sk-test", **kwargs)


def _anthropic_client(upstream: MockUpstream, **kwargs: Any) -> anthropic.Anthropic:
    """An Anthropic SDK client pointed at the mock."""
    kwargs.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=upstream.url, api_key="sk-ant-test", **kwargs)


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


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_serves_in_the_foreground() -> None:
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "trimtab.testing.mock_upstream", "--port", str(port), "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            assert f"http://127.0.0.1:{port}" in banner
            r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=_chat(), timeout=5)
            assert r.json()["choices"][0]["message"]["content"] == REPLY
        finally:
            proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert _port_closed(port)
