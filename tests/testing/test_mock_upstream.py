"""The mock upstream's server (trimtab.testing.mock_upstream): its lifecycle, the requests it
records, its routes and its command line."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from tests.testing.support import REPLY, chat
from trimtab.testing.mock_upstream import MockUpstream, RecordedRequest
from trimtab.testing.servers import free_port


def _port_closed(port: int) -> bool:
    """Whether nothing accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


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
        json=chat(),
        headers={"Authorization": "Bearer sk-test", "X-Custom": "1"},
    )
    client.get(upstream.openai_base_url + "/models")
    client.post(upstream.url + "/v1/messages", content=b"{not json", headers={"x-api-key": "k"})
    first, second, third = upstream.requests
    assert isinstance(first, RecordedRequest)
    assert first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.headers["x-custom"] == "1"
    assert first.body == chat()
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


def test_models(upstream: MockUpstream, client: httpx.Client) -> None:
    data = client.get(upstream.openai_base_url + "/models").json()
    assert data["object"] == "list"
    assert len(data["data"]) >= 2
    assert all(m["object"] == "model" and m["id"] for m in data["data"])


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
            r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(), timeout=5)
            assert r.json()["choices"][0]["message"]["content"] == REPLY
        finally:
            proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert _port_closed(port)
