"""The mock upstream's fault directives (trimtab.testing.mock_faults), over real loopback sockets:
fail-, flaky-, hang, reset, bad-json, cut-stream, slow-, slow-first-, drip-."""

from __future__ import annotations

import json
import socket
import time

import aiohttp
import httpx
import pytest

from tests.testing.support import REPLY, anthropic_events, chat, msg, openai_chunks
from trimtab.testing.mock_upstream import MockUpstream


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
            upstream.openai_base_url + "/chat/completions", json=chat(model, stream=stream)
        )
        assert r.status_code == status
        assert r.headers["content-type"].startswith("application/json")
        error = r.json()["error"]
        assert error["type"] == openai_type
        assert isinstance(error["message"], str) and error["message"]
        assert "code" in error
        r = client.post(upstream.url + "/v1/messages", json=msg(model, stream=stream))
        assert r.status_code == status
        assert r.json()["type"] == "error"
        assert r.json()["error"]["type"] == anthropic_type
        assert r.json()["error"]["message"]
        if status == 429:
            assert r.headers["retry-after"] == "1"
    r = client.post(upstream.openai_base_url + "/embeddings", json={"model": model, "input": "x"})
    assert r.status_code == status


def test_fail_429_retry_after_openai(upstream: MockUpstream, client: httpx.Client) -> None:
    r = client.post(upstream.openai_base_url + "/chat/completions", json=chat("fail-429"))
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"


def test_flaky_counts_per_model_name(upstream: MockUpstream, client: httpx.Client) -> None:
    url = upstream.openai_base_url + "/chat/completions"
    statuses = [client.post(url, json=chat("flaky-2")).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert client.post(url, json=chat("flaky-1")).status_code == 503  # separate counter
    assert client.post(upstream.url + "/v1/messages", json=msg("flaky-1")).status_code == 200
    assert client.post(url, json=chat("flaky-0")).status_code == 200
    upstream.clear()
    assert client.post(url, json=chat("flaky-2")).status_code == 503
    reply = client.post(upstream.url + "/v1/messages", json=msg("flaky-2")).json()
    assert reply["type"] == "error" and reply["error"]["type"] == "api_error"


def test_flaky_counter_is_per_instance(client: httpx.Client) -> None:
    with MockUpstream() as a, MockUpstream() as b:
        assert client.post(a.url + "/v1/messages", json=msg("flaky-1")).status_code == 503
        assert client.post(b.url + "/v1/messages", json=msg("flaky-1")).status_code == 503
        assert client.post(a.url + "/v1/messages", json=msg("flaky-1")).status_code == 200


def test_hang_never_answers(upstream: MockUpstream) -> None:
    with httpx.Client(timeout=httpx.Timeout(5, read=0.5)) as slow_client:
        for url, body in [
            (upstream.openai_base_url + "/chat/completions", chat("hang")),
            (upstream.url + "/v1/messages", msg("hang", stream=True)),
        ]:
            with pytest.raises(httpx.ReadTimeout):
                slow_client.post(url, json=body)
    assert [r.body["model"] for r in upstream.requests] == ["hang", "hang"]
    # The server is still healthy afterwards.
    r = httpx.post(upstream.openai_base_url + "/chat/completions", json=chat(), timeout=5)
    assert r.status_code == 200


def test_stop_while_a_request_hangs() -> None:
    server = MockUpstream().start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        body = json.dumps(chat("hang")).encode()
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
            upstream.openai_base_url + "/chat/completions", json=chat("reset", stream=stream)
        )
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(upstream.url + "/v1/messages", json=msg("reset", stream=stream))
    assert len(upstream.requests) == 2


def test_reset_raw_socket_gets_no_bytes(upstream: MockUpstream) -> None:
    with socket.create_connection(("127.0.0.1", upstream.port), timeout=5) as sock:
        body = json.dumps(msg("reset")).encode()
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
        (upstream.openai_base_url + "/chat/completions", chat("bad-json")),
        (upstream.url + "/v1/messages", msg("bad-json")),
        (upstream.openai_base_url + "/chat/completions", chat("bad-json", stream=True)),
    ]:
        r = client.post(url, json=body)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.content == b'{"id": "x", "choices": ['
        with pytest.raises(json.JSONDecodeError):
            r.json()


def test_cut_stream_openai(upstream: MockUpstream, client: httpx.Client) -> None:
    received = b""
    body = chat("cut-stream", stream=True, stream_options={"include_usage": True})
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", upstream.openai_base_url + "/chat/completions", json=body) as r,
    ):
        assert r.status_code == 200
        for piece in r.iter_raw():
            received += piece
    chunks = openai_chunks(received.decode())
    assert len(chunks) == 3  # role chunk + 2 content chunks
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "mock", " reply"]
    assert b"[DONE]" not in received


def test_cut_stream_anthropic(upstream: MockUpstream, client: httpx.Client) -> None:
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream(
            "POST", upstream.url + "/v1/messages", json=msg("cut-stream", stream=True)
        ) as r,
    ):
        for piece in r.iter_raw():
            received += piece
    names = [name for name, _ in anthropic_events(received.decode())]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
    ]


def test_cut_stream_without_stream_is_reset(upstream: MockUpstream, client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(upstream.openai_base_url + "/chat/completions", json=chat("cut-stream"))


@pytest.mark.parametrize("stream", [False, True])
def test_slow_delays_the_whole_answer(
    upstream: MockUpstream, client: httpx.Client, stream: bool
) -> None:
    started = time.monotonic()
    with client.stream(
        "POST",
        upstream.openai_base_url + "/chat/completions",
        json=chat("slow-300", stream=stream),
    ) as r:
        headers_at = time.monotonic()
        r.read()
    assert r.status_code == 200
    assert headers_at - started >= 0.28
    if stream:
        assert openai_chunks(r.text)[-1] == "[DONE]"
    else:
        assert r.json()["choices"][0]["message"]["content"] == REPLY
    started = time.monotonic()
    r2 = client.post(upstream.url + "/v1/messages", json=msg("slow-300", stream=stream))
    assert time.monotonic() - started >= 0.28
    assert r2.status_code == 200


def test_slow_first_sends_headers_then_waits(upstream: MockUpstream, client: httpx.Client) -> None:
    for url, body in [
        (upstream.openai_base_url + "/chat/completions", chat("slow-first-500", stream=True)),
        (upstream.url + "/v1/messages", msg("slow-first-500", stream=True)),
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
    r2 = client.post(upstream.openai_base_url + "/chat/completions", json=chat("slow-first-300"))
    assert time.monotonic() - started >= 0.28
    assert r2.json()["choices"][0]["message"]["content"] == REPLY


async def test_drip_streams_incrementally(upstream: MockUpstream) -> None:
    body = chat("drip-100", stream=True)
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
        session.post(upstream.url + "/v1/messages", json=msg("drip-80", stream=True)) as resp,
    ):
        while event := await resp.content.readuntil(b"\n\n"):
            arrivals.append(time.monotonic())
            if event.startswith(b"event: message_stop"):
                break
    assert len(arrivals) == 14
    assert arrivals[-1] - arrivals[0] >= 13 * 0.08 * 0.9


def test_unknown_model_names_reply_normally(upstream: MockUpstream, client: httpx.Client) -> None:
    for model in ["fail", "slow-", "hang-on", "gpt-4o", "reset2"]:
        r = client.post(upstream.openai_base_url + "/chat/completions", json=chat(model))
        assert r.status_code == 200, model
        assert r.json()["model"] == model
