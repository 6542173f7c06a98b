"""A deliberately tiny, fast mock of the OpenAI chat-completions endpoint.

It is a raw ``asyncio.Protocol`` HTTP/1.1 server (on uvloop when available) that answers
every ``POST .../chat/completions`` with a fixed small completion, either as one JSON body or,
when the request says ``"stream": true``, as an SSE stream (chunked transfer encoding) whose
first content chunk is written immediately. With ``stream_options.include_usage`` the stream
ends with a usage chunk, as OpenAI's does. The answer is a 5-word greeting, or with
``--reply-bytes N`` about N bytes of prose (sentences with a few figures, no personal
data) streamed one word a chunk, as a model streams tokens. Keep-alive is supported;
pipelining is tolerated (requests on one connection are answered in order).

By default the whole stream is written at once (``--stream-gap-ms 0``), so no process idles
mid-request and time-to-first-token measures only the path. A request for a model whose name
contains ``slowstream`` gets the greeting with ``--slow-gap-ms`` (50 ms) between chunks
instead: that shows whether a gateway forwards chunks as they come or buffers the stream.

It exists so that the benchmark measures the gateway, not the upstream: no framework, no
per-request allocation beyond a few small byte strings.

Run: ``python bench/mock_upstream.py --port 18080`` (it prints ``READY <port>`` when listening).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from typing import Any, cast

SHORT_PIECES: tuple[str, ...] = ("Hello", " from", " the", " mock", " upstream.")
SHORT_TOKENS = 9
PROMPT_TOKENS = 12
# --reply-bytes: an answer a support assistant might give, cycled to the size asked for
REPLY_SENTENCES: tuple[str, ...] = (
    "Thanks for your patience while we looked into this.",
    "Your order 48213 left our warehouse on 28 November and is now with the carrier.",
    "The tracking page shows two delivery attempts, at 10:40 and at 15:05.",
    "We have refunded the shipping cost of 7.95 EUR to the original payment method.",
    "Refunds usually appear within 3 to 5 business days, depending on the bank.",
    "If the parcel does not arrive by Friday, reply here and we will send a replacement.",
    "You can also pick it up at the depot, which is open from 8 to 18 on weekdays.",
    "Version 2.4.1 of the app shows the depot's address under Orders, then Details.",
    "We are sorry for the trouble and appreciate you letting us know.",
)


class Reply:
    """The answer every request gets: its pieces (one stream chunk each) and usage."""

    def __init__(self, reply_bytes: int = 0) -> None:
        if reply_bytes <= 0:
            self.pieces: tuple[str, ...] = SHORT_PIECES
        else:
            words: list[str] = []
            size, n = -1, 0
            while size < reply_bytes:
                for word in REPLY_SENTENCES[n % len(REPLY_SENTENCES)].split():
                    words.append(word)
                    size += len(word) + 1
                    if size >= reply_bytes:
                        break
                n += 1
            self.pieces = tuple(w if i == 0 else " " + w for i, w in enumerate(words))
        self.content = "".join(self.pieces)
        completion = SHORT_TOKENS if reply_bytes <= 0 else len(self.pieces)
        self.usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": completion,
            "total_tokens": PROMPT_TOKENS + completion,
        }


CREATED = 1_700_000_000
MAX_HEADER_BYTES = 64 * 1024


SHORT_REPLY = Reply()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def completion_body(model: str, seq: int, reply: Reply) -> bytes:
    return _dumps(
        {
            "id": f"chatcmpl-mock-{seq}",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": reply.usage,
        }
    )


def _chunk(model: str, seq: int, delta: dict[str, Any], finish: str | None) -> bytes:
    return _dumps(
        {
            "id": f"chatcmpl-mock-{seq}",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
    )


def _sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def first_event(model: str, seq: int, reply: Reply) -> bytes:
    """The first SSE event (already framed as ``data: ...\\n\\n``): sent with the headers."""
    return _sse(_chunk(model, seq, {"role": "assistant", "content": reply.pieces[0]}, None))


def stream_events(model: str, seq: int, include_usage: bool, reply: Reply) -> list[bytes]:
    """The SSE events after the first, framed, in order, [DONE] last."""
    events = [_chunk(model, seq, {"content": piece}, None) for piece in reply.pieces[1:]]
    events.append(_chunk(model, seq, {}, "stop"))
    if include_usage:
        events.append(
            _dumps(
                {
                    "id": f"chatcmpl-mock-{seq}",
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": model,
                    "choices": [],
                    "usage": reply.usage,
                }
            )
        )
    out = [_sse(e) for e in events]
    out.append(b"data: [DONE]\n\n")
    return out


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


MODELS_BODY = _dumps(
    {"object": "list", "data": [{"id": "mock-1", "object": "model", "owned_by": "bench"}]}
)


SEQ_MARK = -1  # rendered as "chatcmpl-mock--1", replaced by each stream's own id
SEQ_ID = b"chatcmpl-mock--1"


class Stats:
    def __init__(self) -> None:
        # a stream's events after the first, by (model, include_usage, reply), id marked
        self.rendered: dict[tuple[str, bool, int], bytes] = {}
        self.requests = 0
        self.streams = 0
        self.connections = 0


class MockProtocol(asyncio.Protocol):
    def __init__(self, stats: Stats, gap_s: float, slow_gap_s: float, reply: Reply) -> None:
        self.stats = stats
        self.reply = reply
        self.gap_s = gap_s
        self.slow_gap_s = slow_gap_s
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a stream is being written; later requests wait in ``buf``
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport; duck-type them.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._process()

    def _process(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER_BYTES:
                    self._simple(431, b"{}", close=True)
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                self._simple(400, b'{"error":"bad request line"}', close=True)
                return
            method, target, version = parts
            length = 0
            keep_alive = version == "HTTP/1.1"
            for line in lines[1:]:
                name, _, value = line.partition(":")
                lname = name.strip().lower()
                if lname == "content-length":
                    length = int(value.strip())
                elif lname == "connection":
                    v = value.strip().lower()
                    keep_alive = v == "keep-alive" or (keep_alive and v != "close")
                elif lname == "transfer-encoding":
                    self._simple(501, b'{"error":"chunked requests unsupported"}', close=True)
                    return
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = bytes(self.buf[end + 4 : total])
            del self.buf[:total]
            self.close_after = not keep_alive
            self._handle(method, target.split("?", 1)[0], body)

    def _handle(self, method: str, path: str, body: bytes) -> None:
        self.stats.requests += 1
        if method == "POST" and path.endswith("/chat/completions"):
            try:
                req = json.loads(body) if body else {}
            except ValueError:
                self._simple(400, b'{"error":{"message":"invalid json"}}')
                return
            model = str(req.get("model") or "mock-1")
            seq = self.stats.requests
            if req.get("stream"):
                opts = req.get("stream_options") or {}
                # the chunk-by-chunk check: the greeting, its 5 chunks spaced out
                slow = "slowstream" in model
                gap = self.slow_gap_s if slow else self.gap_s
                reply = SHORT_REPLY if slow else self.reply
                self._stream(model, seq, bool(opts.get("include_usage")), gap, reply)
            else:
                self._simple(200, completion_body(model, seq, self.reply))
        elif method == "GET" and path.endswith("/models"):
            self._simple(200, MODELS_BODY)
        elif method == "GET" and path in ("/health", "/healthz", "/"):
            self._simple(200, b'{"status":"ok"}')
        else:
            self._simple(404, b'{"error":{"message":"not found"}}')

    def _simple(self, status: int, body: bytes, close: bool = False) -> None:
        if self.transport is None:
            return
        close = close or self.close_after
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            f"connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        if close:
            self.transport.close()

    def _stream(
        self, model: str, seq: int, include_usage: bool, gap_s: float, reply: Reply
    ) -> None:
        assert self.transport is not None
        self.stats.streams += 1
        head = (
            b"HTTP/1.1 200 OK\r\n"
            b"content-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n"
            + (b"connection: close\r\n" if self.close_after else b"connection: keep-alive\r\n")
            + b"\r\n"
        )
        # First content chunk goes out with the headers, immediately.
        self.transport.write(head + _chunked(first_event(model, seq, reply)))
        if gap_s <= 0:  # the rest in one chunk, rendered once: the mock's cost stays tiny
            key = (model, include_usage, id(reply))
            if key not in self.stats.rendered:
                events = stream_events(model, SEQ_MARK, include_usage, reply)
                self.stats.rendered[key] = b"".join(events)
            rest_bytes = self.stats.rendered[key].replace(SEQ_ID, b"chatcmpl-mock-%d" % seq)
            self.transport.write(_chunked(rest_bytes) + b"0\r\n\r\n")
            self._stream_done()
            return
        rest = stream_events(model, seq, include_usage, reply)
        self.busy = True
        loop = asyncio.get_running_loop()

        def send_next(i: int) -> None:
            if self.transport is None:
                self.busy = False
                return
            if i < len(rest) - 2:
                self.transport.write(_chunked(rest[i]))
                loop.call_later(gap_s, send_next, i + 1)
            else:  # finish chunk, usage chunk, [DONE] and the terminator go out together
                self.transport.write(b"".join(_chunked(e) for e in rest[i:]) + b"0\r\n\r\n")
                self.busy = False
                self._stream_done()

        loop.call_later(gap_s, send_next, 0)

    def _stream_done(self) -> None:
        if self.transport is None:
            return
        if self.close_after:
            self.transport.close()
            return
        if self.buf:
            self._process()


async def serve(host: str, port: int, gap_s: float, slow_gap_s: float, reply: Reply) -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    server = await loop.create_server(
        lambda: MockProtocol(stats, gap_s, slow_gap_s, reply),
        host,
        port,
        backlog=1024,
        reuse_address=True,
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    await stop.wait()
    server.close()
    print(
        json.dumps(
            {
                "requests": stats.requests,
                "streams": stats.streams,
                "connections": stats.connections,
                "uptime_s": round(time.monotonic() - started, 3),
            }
        ),
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    p.add_argument(
        "--stream-gap-ms",
        type=float,
        default=0.0,
        help="delay between SSE chunks after the first (0: the whole stream at once)",
    )
    p.add_argument(
        "--slow-gap-ms",
        type=float,
        default=50.0,
        help="delay between SSE chunks for models whose name contains 'slowstream'",
    )
    p.add_argument(
        "--reply-bytes",
        type=int,
        default=0,
        help="answer with about this many bytes of prose, one word a stream chunk "
        "(0: the 5-word greeting)",
    )
    p.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("refusing to listen on a non-loopback address", file=sys.stderr)
        return 2
    gap_s, slow_gap_s = args.stream_gap_ms / 1000.0, args.slow_gap_ms / 1000.0
    coro = serve(args.host, args.port, gap_s, slow_gap_s, Reply(args.reply_bytes))
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(coro)
            return 0
    asyncio.run(coro)
    return 0


if __name__ == "__main__":
    sys.exit(main())
