"""`trimtab serve`'s stop: a keep-alive connection is drained, never cut under a request."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from tests.support import start_gateway

REQUEST = b"GET /healthz HTTP/1.1\r\nhost: trimtab\r\n\r\n"


def _answer(conn: socket.socket) -> bytes:
    """One whole response (the health answer has a content-length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"the connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, "the connection closed mid-answer"
        body += chunk
    return head


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_stop_serves_the_next_request_on_an_idle_connection_then_closes_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    """After SIGTERM new connections are refused, but a keep-alive connection that was
    idle is not cut under the client: its next request is answered, with
    `connection: close`, and then the server closes it and exits."""
    proc, url = start_gateway({"store": {"url": sqlite_url}}, tmp_path, "trimtab")
    port = int(url.rsplit(":", 1)[1])
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        conn.sendall(REQUEST)
        first = _answer(conn)
        assert first.startswith(b"HTTP/1.1 200")
        assert b"connection: close" not in first.lower()

        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        while not _refused(port):  # the stop has begun: the listener is closed
            assert time.monotonic() < deadline, "the listener stayed open after SIGTERM"
            time.sleep(0.02)
        assert proc.poll() is None, "the server exited with a keep-alive connection open"

        conn.sendall(REQUEST)
        second = _answer(conn)
        assert second.startswith(b"HTTP/1.1 200")
        assert b"connection: close" in second.lower()
        assert conn.recv(65536) == b""  # closed by the server after that answer
    finally:
        conn.close()
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)


def test_a_stop_waits_no_longer_than_the_keep_alive_timeout_for_a_silent_client(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A client that keeps an idle connection and never speaks again does not hold the
    stop up: uvicorn's keep-alive timer (5 s) closes it, and the process exits."""
    proc, url = start_gateway({"store": {"url": sqlite_url}}, tmp_path, "trimtab")
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(REQUEST)
        _answer(conn)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert conn.recv(65536) == b""
