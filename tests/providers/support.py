"""What the provider tests share: the upstream model name, a whole Anthropic response
(translation tests); a scripted loopback HTTP server (client tests)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from trimtab.config import ProviderConfig
from trimtab.providers.openai import OpenAIProvider
from trimtab.providers.translate import JSON

UP = "claude-up"


ANTHROPIC_RESP: JSON = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "thinking", "thinking": "...", "signature": "s"},
        {"type": "text", "text": "Hello "},
        {"type": "text", "text": "world"},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"q": "é"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 3,
    },
}


# -- a scripted HTTP/1.1 server ---------------------------------------------------------

Run = Callable[[Coroutine[Any, Any, Any]], Any]  # the `run` fixture: a coroutine to its end
KEY = "sk-h1client-test-key"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@asynccontextmanager
async def provider(url: str, **config: Any) -> AsyncIterator[OpenAIProvider]:
    """A started OpenAI-kind provider at `url`, closed after."""
    config = {"api_key": KEY, **config}
    p = OpenAIProvider("up", ProviderConfig(kind="openai", base_url=url, **config))
    await p.start()
    try:
        yield p
    finally:
        await p.close()


After = Literal["keep", "close", "reset", "hold"]


@dataclass(frozen=True)
class Seen:
    """One request as the raw server read it: on which connection, its head, its body."""

    conn: int
    head: bytes
    body: bytes

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.encode():
                return value.strip().decode()
        return None


@dataclass(frozen=True)
class Reply:
    """The bytes sent back (a whole response, or none) and what the connection does next:
    `keep` reads the next request, `close` closes it (FIN), `reset` aborts it (RST),
    `hold` keeps it open and reads nothing more."""

    data: bytes
    after: After = "keep"


Script = Callable[[Seen], Reply]


@dataclass
class RawServer:
    """A loopback server answering each request from a script, byte for byte: the
    framings, encodings and closes the mock upstream does not make. One thread per
    connection; plain TCP, or TLS with `tls`."""

    script: Script
    tls: ssl.SSLContext | None = None
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    closed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)  # accept() wakes to see the stop
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.port = self._sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._sock.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self.open_now += 1
                self.most_open = max(self.most_open, self.open_now)
                number = self.connections
            self._spawn(self._serve, conn, number)

    def _serve(self, raw: socket.socket, number: int) -> None:
        conn = raw
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(raw, server_side=True)
            conn.settimeout(0.2)
            self._requests(conn, number)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self._lock:
                self.open_now -= 1
            with contextlib.suppress(OSError):
                conn.close()
            self.closed.set()

    def _requests(self, conn: socket.socket, number: int) -> None:
        buf = b""
        while not self._stop.is_set():
            while b"\r\n\r\n" not in buf:
                chunk = self._recv(conn)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            seen = Seen(number, head, b"")
            length = int(seen.header("content-length") or 0)
            while len(buf) < length:
                chunk = self._recv(conn)
                if not chunk:
                    return
                buf += chunk
            seen = Seen(number, head, buf[:length])
            buf = buf[length:]
            with self._lock:
                self.seen.append(seen)
            reply = self.script(seen)
            conn.sendall(reply.data)
            if reply.after == "close":
                return
            if reply.after == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if reply.after == "hold":
                self._stop.wait()
                return

    def _recv(self, conn: socket.socket) -> bytes:
        while not self._stop.is_set():
            try:
                return conn.recv(65536)
            except TimeoutError:
                continue
        return b""


def response(
    body: bytes = b'{"ok": true}',
    *,
    status: str = "200 OK",
    headers: tuple[str, ...] = ("content-type: application/json",),
    length: bool = True,
) -> bytes:
    """An HTTP/1.1 response's bytes; `length=False` sends no content-length."""
    lines = [f"HTTP/1.1 {status}", *headers]
    if length:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*parts: bytes, headers: tuple[str, ...] = ()) -> bytes:
    """A 200 response with a chunked body of `parts`."""
    head = "\r\n".join(["HTTP/1.1 200 OK", "transfer-encoding: chunked", *headers])
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    return head.encode() + b"\r\n\r\n" + body
