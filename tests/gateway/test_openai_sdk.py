"""The official `openai` SDK against a running gateway, changing only base_url."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest

from tests.support import APP_KEY, KEYS, GatewayFactory, Running, stored
from trimtab.telemetry.queries import RequestFilter, list_requests
from trimtab.testing.mock_upstream import MockUpstream


def client(running: Running, key: str = APP_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=running.url + "/v1", api_key=key, max_retries=0)


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return gateway(store=store_url, keys=KEYS)


def test_chat_non_streaming(running: Running, upstream: MockUpstream) -> None:
    raw = client(running).chat.completions.with_raw_response.create(
        model="gpt-mock", messages=[{"role": "user", "content": "hello from the sdk"}], user="u-1"
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "mock reply to: hello from the sdk"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    rid = raw.headers["x-trimtab-request-id"]
    assert float(raw.headers["x-trimtab-overhead-ms"]) >= 0
    sent = [r for r in upstream.requests if r.body and r.body.get("user") == "u-1"][-1]
    assert sent.body["model"] == "mock-1"
    assert {k.lower(): v for k, v in sent.headers.items()}["authorization"] == "Bearer sk-up"
    row = stored(running, rid)
    assert row["request_model"] == "gpt-mock"
    assert row["upstream_model"] == "mock-1"
    assert row["provider"] == "upstream"
    assert row["tenant"] == "acme"
    assert row["user_id"] == "u-1"
    assert row["status_code"] == 200
    assert row["streamed"] is False or row["streamed"] == 0
    assert row["input_tokens"] == completion.usage.prompt_tokens
    assert row["output_tokens"] == completion.usage.completion_tokens
    expected = (row["input_tokens"] * 0.15 + row["output_tokens"] * 0.60) / 1e6
    assert row["cost_usd"] == pytest.approx(expected)
    assert APP_KEY not in str(row)


def _collect(stream: Any) -> tuple[str, list[Any]]:
    text, chunks = "", []
    for chunk in stream:
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    return text, chunks


def test_stream_without_usage_request_strips_usage_but_records_it(
    running: Running, upstream: MockUpstream
) -> None:
    raw = client(running).chat.completions.with_raw_response.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        user="u-stream",
    )
    text, chunks = _collect(raw.parse())
    assert text == "mock reply to: stream me please"
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    sent = [r for r in upstream.requests if r.body and r.body.get("user") == "u-stream"][-1]
    assert sent.body["stream_options"] == {"include_usage": True}
    row = stored(running, raw.headers["x-trimtab-request-id"])
    assert row["streamed"]
    assert row["input_tokens"] and row["output_tokens"]
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["duration_ms"]
    assert row["finish_reasons"] == ["stop"]
    assert "mock reply to: stream me please" in row["response_body"]


def test_stream_with_include_usage_relays_usage(running: Running) -> None:
    stream = client(running).chat.completions.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": "count my tokens"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, chunks = _collect(stream)
    assert text == "mock reply to: count my tokens"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert chunks[-1].choices == []


class _GatedUpstream(ThreadingHTTPServer):
    """Sends one chunk, then holds the rest of the stream until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        gate = self.gate

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()

                def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
                    data = {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "gated",
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    }
                    return b"data: " + json.dumps(data).encode() + b"\n\n"

                self.wfile.write(chunk({"role": "assistant", "content": "first"}))
                self.wfile.flush()
                gate.wait(20)
                self.wfile.write(chunk({"content": " second"}) + chunk({}, "stop"))
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)


def test_stream_chunks_are_relayed_as_they_arrive(gateway: GatewayFactory) -> None:
    # the upstream withholds the end of its stream until the client has seen the first
    # chunk: a gateway that buffered the stream would never deliver it (read timeout)
    gated = _GatedUpstream()
    threading.Thread(target=gated.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{gated.server_address[1]}/v1"
        running = gateway(
            providers={"gated": {"kind": "openai", "base_url": url}},
            models={"gated": {"provider": "gated"}},
        )
        with (
            httpx.Client(timeout=10) as http,
            http.stream(
                "POST",
                running.url + "/v1/chat/completions",
                json={
                    "model": "gated",
                    "messages": [{"role": "user", "content": "x"}],
                    "stream": True,
                },
            ) as resp,
        ):
            lines = resp.iter_lines()
            first = next(line for line in lines if line)
            assert '"first"' in first
            assert not gated.gate.is_set()
            gated.gate.set()
            rest = [line for line in lines if line]
        assert '" second"' in rest[0]
        assert rest[-1] == "data: [DONE]"
    finally:
        gated.gate.set()
        gated.shutdown()


def test_embeddings(running: Running) -> None:
    result = client(running).embeddings.create(model="embed-mock", input=["a b", "c"])
    assert len(result.data) == 2
    assert len(result.data[0].embedding) == 8
    assert result.usage.prompt_tokens > 0


def test_simulator_embeddings_and_chat(running: Running) -> None:
    c = client(running)
    result = c.embeddings.create(model="sim-1", input="hello")
    assert len(result.data[0].embedding) == 16
    first = c.chat.completions.create(model="sim-1", messages=[{"role": "user", "content": "q"}])
    second = c.chat.completions.create(model="sim-1", messages=[{"role": "user", "content": "q"}])
    assert first.choices[0].message.content == second.choices[0].message.content


def test_models_lists_configured_models(running: Running) -> None:
    ids = {m.id for m in client(running).models.list()}
    assert {"gpt-mock", "claude-mock", "sim-1"} <= ids


def test_anthropic_model_through_openai_endpoint(running: Running, upstream: MockUpstream) -> None:
    raw = client(running).chat.completions.with_raw_response.create(
        model="claude-mock",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "translate me"},
        ],
        max_tokens=100,
        user="u-claude",
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "mock reply to: translate me"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    sent = [r for r in upstream.requests if r.path == "/v1/messages"][-1]
    assert sent.body["model"] == "claude-x"
    assert sent.body["system"] == "be brief"
    assert sent.body["max_tokens"] == 100
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"]
    row = stored(running, raw.headers["x-trimtab-request-id"])
    assert row["provider_kind"] == "anthropic"
    expected = (row["input_tokens"] * 3.0 + row["output_tokens"] * 15.0) / 1e6
    assert row["cost_usd"] == pytest.approx(expected)


def test_anthropic_model_streamed_through_openai_endpoint(running: Running) -> None:
    raw = client(running).chat.completions.with_raw_response.create(
        model="claude-mock",
        messages=[{"role": "user", "content": "stream translated"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, chunks = _collect(raw.parse())
    assert text == "mock reply to: stream translated"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    row = stored(running, raw.headers["x-trimtab-request-id"])
    assert row["streamed"] and row["input_tokens"] and row["output_tokens"]


def test_tool_calls_translate_both_ways(running: Running) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    c = client(running)
    completion = c.chat.completions.create(
        model="claude-mock",
        messages=[{"role": "user", "content": "what is the weather"}],
        tools=tools,  # type: ignore[arg-type]
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"
    stream = c.chat.completions.create(
        model="claude-mock",
        messages=[{"role": "user", "content": "what is the weather"}],
        tools=tools,  # type: ignore[arg-type]
        stream=True,
    )
    assert isinstance(stream, openai.Stream)
    names, args = [], ""
    for chunk in stream:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if tc.function and tc.function.name:
                names.append(tc.function.name)
            if tc.function and tc.function.arguments:
                args += tc.function.arguments
    assert names == ["get_weather"]
    assert '"city"' in args


def test_every_response_has_a_request_id(running: Running) -> None:
    with httpx.Client(base_url=running.url) as http:
        for method, path in [
            ("GET", "/healthz"),
            ("GET", "/nope"),
            ("POST", "/v1/models"),
            ("GET", "/v1/models"),
            ("GET", "/api/requests"),
        ]:
            resp = http.request(method, path, headers={"authorization": f"Bearer {APP_KEY}"})
            assert resp.headers.get("x-trimtab-request-id", "").startswith("req_"), path


def test_recent_requests_visible_through_store(running: Running) -> None:
    c = client(running)
    for i in range(3):
        c.chat.completions.create(model="sim-1", messages=[{"role": "user", "content": f"n{i}"}])
    running.wait_for_rows(3)
    rows, _ = list_requests(running.engine, RequestFilter(model="sim-1"), 10)
    assert len(rows) == 3
