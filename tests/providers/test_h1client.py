"""The provider client over real loopback sockets, against a scripted server: framings,
encodings, keep-alive and closes, the connection bound, and when a request may be sent
twice (only when none of it was). Every test runs on asyncio's loop and on uvloop (the
one `trimtab serve` uses)."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable

import orjson
import pytest

from tests.providers.support import (
    BODY,
    KEY,
    RawServer,
    Reply,
    Run,
    Seen,
    chunked,
    provider,
    response,
)
from trimtab.providers.base import UpstreamError


def serve(*replies: Reply) -> RawServer:
    """A server answering its requests with `replies` in order (the last one repeated)."""
    count = iter(range(1_000_000))

    def script(seen: Seen) -> Reply:
        return replies[min(next(count), len(replies) - 1)]

    return RawServer(script)


def test_one_write_of_precomputed_head_and_body(run: Run) -> None:
    async def go() -> bytes:
        async with provider(server.url + "/v1", headers={"x-team": "core"}) as p:
            return await p.call("chat", BODY, 5)

    with serve(Reply(response())) as server:
        assert run(go()) == b'{"ok": true}'
    seen = server.seen[0]
    assert seen.head.split(b"\r\n")[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert seen.header("host") == f"127.0.0.1:{server.port}"
    assert seen.header("content-type") == "application/json"
    assert seen.header("authorization") == f"Bearer {KEY}"
    assert seen.header("x-team") == "core"
    assert seen.header("accept-encoding") == "gzip, deflate"
    assert seen.header("content-length") == str(len(seen.body))
    assert orjson.loads(seen.body) == BODY


def test_keep_alive_reuses_one_connection(run: Run) -> None:
    async def go() -> list[bytes]:
        async with provider(server.url) as p:
            return [await p.call("chat", BODY, 5) for _ in range(5)]

    with serve(Reply(response())) as server:
        assert run(go()) == [b'{"ok": true}'] * 5
    assert server.connections == 1
    assert len(server.seen) == 5


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        # raw deflate, without zlib's wrapper: some servers send it, aiohttp took it too
        ("deflate", lambda b: zlib.compress(b)[2:-4]),
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
def test_compressed_bodies_arrive_decoded(
    run: Run, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    text = b'{"text": "' + b"compressible " * 200 + b'"}'
    sse = b"".join(b'data: {"n": %d}\n\n' % i for i in range(50)) + b"data: [DONE]\n\n"
    packed = encode(sse)
    whole = response(encode(text), headers=(f"content-encoding: {encoding}",))
    # the stream's compressed bytes split over several chunks, mid-line
    parts = [packed[i : i + 40] for i in range(0, len(packed), 40)]
    streamed = chunked(
        *parts, headers=("content-type: text/event-stream", f"content-encoding: {encoding}")
    )

    async def go() -> tuple[bytes, list[bytes]]:
        async with provider(server.url) as p:
            got = await p.call("chat", BODY, 5)
            stream = await p.open_stream("chat", BODY, 5, 5)
            events = [e.data async for e in stream.events()]
            await stream.close()
            return got, events

    with serve(Reply(whole), Reply(streamed)) as server:
        got, events = run(go())
    assert got == text
    assert events == [b'{"n": %d}' % i for i in range(50)] + [b"[DONE]"]
    assert server.connections == 1  # both bodies read to their ends: the connection kept


def test_chunked_body(run: Run) -> None:
    async def go() -> bytes:
        async with provider(server.url) as p:
            return await p.call("chat", BODY, 5)

    with serve(Reply(chunked(b'{"a": ', b"1", b"}"))) as server:
        assert run(go()) == b'{"a": 1}'


def test_server_connection_close_and_body_to_eof(run: Run) -> None:
    """`connection: close`, and a body delimited by the close (no length): each response
    whole, and the next request on a new connection."""

    async def go() -> list[bytes]:
        async with provider(server.url) as p:
            return [await p.call("chat", BODY, 5) for _ in range(3)]

    replies = (
        Reply(response(b"one", headers=("connection: close",)), "close"),
        Reply(response(b"two", length=False), "close"),
        Reply(response(b"three")),
    )
    with serve(*replies) as server:
        assert run(go()) == [b"one", b"two", b"three"]
    assert server.connections == 3


def test_informational_response_skipped(run: Run) -> None:
    async def go() -> bytes:
        async with provider(server.url) as p:
            return await p.call("chat", BODY, 5)

    early = b"HTTP/1.1 103 Early Hints\r\nlink: </x>; rel=preload\r\n\r\n"
    with serve(Reply(early + response(b"after"))) as server:
        assert run(go()) == b"after"


def test_server_closed_idle_connection_unnoticed(run: Run) -> None:
    """The server closed the idle connection and the loop has not run since, so nothing
    has marked it closed: the next request goes on a fresh connection, sent once."""

    async def go() -> list[bytes]:
        async with provider(server.url) as p:
            first = await p.call("chat", BODY, 5)
            # block the loop thread (deliberately): the FIN arrives, unread by the loop
            assert server.closed.wait(5)
            time.sleep(0.05)  # noqa: ASYNC251 - the point: the loop must not run
            return [first, await p.call("chat", BODY, 5)]

    with serve(Reply(response(b"a"), "close"), Reply(response(b"b"))) as server:
        assert run(go()) == [b"a", b"b"]
    assert [s.conn for s in server.seen] == [1, 2]


def test_server_closed_idle_connection_noticed(run: Run) -> None:
    async def go() -> list[bytes]:
        async with provider(server.url) as p:
            first = await p.call("chat", BODY, 5)
            await asyncio.to_thread(server.closed.wait, 5)
            await asyncio.sleep(0.05)  # the loop reads the FIN
            return [first, await p.call("chat", BODY, 5)]

    with serve(Reply(response(b"a"), "reset"), Reply(response(b"b"))) as server:
        assert run(go()) == [b"a", b"b"]
    assert [s.conn for s in server.seen] == [1, 2]


def test_failed_write_on_reused_connection_is_sent_again_once(run: Run) -> None:
    """The write on a reused connection fails outright (here: its sending side shut),
    so not a byte of the request left: it goes again, on a fresh connection, once."""

    async def go() -> list[bytes]:
        async with provider(server.url) as p:
            first = await p.call("chat", BODY, 5)
            pool = p._pool
            assert pool is not None
            [idle] = pool._idle  # the one connection, reused next
            sock = idle.transport.get_extra_info("socket") if idle.transport else None
            assert sock is not None
            # through a duplicate of its descriptor: uvloop's transport sockets refuse it
            with socket.socket(fileno=os.dup(sock.fileno())) as dup:
                dup.shutdown(socket.SHUT_WR)
            return [first, await p.call("chat", BODY, 5)]

    # the server holds the first connection open and silent: only the write can fail
    with serve(Reply(response(b"a"), "hold"), Reply(response(b"b"))) as server:
        assert run(go()) == [b"a", b"b"]
    assert [s.conn for s in server.seen] == [1, 2]


@pytest.mark.parametrize("reused", [False, True], ids=["fresh", "reused"])
def test_close_after_request_written_is_not_sent_again(run: Run, reused: bool) -> None:
    """Closed after the request arrived, before any response byte: the server may have
    acted on it, so the client reports the drop and sends nothing again."""

    async def go() -> UpstreamError:
        async with provider(server.url) as p:
            if reused:
                await p.call("chat", BODY, 5)
            with pytest.raises(UpstreamError) as info:
                await p.call("chat", {**BODY, "model": "second"}, 5)
            return info.value

    replies = (Reply(response()), Reply(b"", "reset")) if reused else (Reply(b"", "close"),)
    with serve(*replies) as server:
        err = run(go())
    assert err.kind == "stream_cut"
    assert err.message.startswith("provider 'up' dropped the connection: ")
    assert len(server.seen) == (2 if reused else 1)


def test_cut_body_is_a_drop(run: Run) -> None:
    async def go() -> UpstreamError:
        async with provider(server.url) as p:
            with pytest.raises(UpstreamError) as info:
                await p.call("chat", BODY, 5)
            return info.value

    cut = response(b"0123456789")[:-4]  # content-length 10, 6 bytes, then the close
    with serve(Reply(cut, "close")) as server:
        err = run(go())
    assert err.kind == "stream_cut"
    assert "dropped the connection" in err.message


def test_cut_stream(run: Run) -> None:
    async def go() -> tuple[list[bytes], UpstreamError]:
        async with provider(server.url) as p:
            stream = await p.open_stream("chat", BODY, 5, 5)
            got: list[bytes] = []
            with pytest.raises(UpstreamError) as info:
                async for event in stream.events():
                    got.append(event.data)
            await stream.close()
            return got, info.value

    cut = chunked(b"data: 1\n\ndata: 2\n\n", headers=("content-type: text/event-stream",))
    with serve(Reply(cut[:-5], "close")) as server:
        got, err = run(go())
    assert got == [b"1", b"2"]
    assert err.kind == "stream_cut"
    assert err.message.startswith("provider 'up' cut the stream: ")


@pytest.mark.parametrize(
    "garbage",
    [b"SMTP ready\r\n\r\n", response(b"not gzip at all", headers=("content-encoding: gzip",))],
    ids=["not-http", "bad-gzip"],
)
def test_garbage_is_an_invalid_response(run: Run, garbage: bytes) -> None:
    async def go() -> UpstreamError:
        async with provider(server.url) as p:
            with pytest.raises(UpstreamError) as info:
                await p.call("chat", BODY, 5)
            return info.value

    with serve(Reply(garbage, "close")) as server:
        err = run(go())
    assert err.kind == "invalid_response"
    assert err.message.startswith("provider 'up' sent an invalid response: ")


def test_at_most_max_connections(run: Run) -> None:
    gate = threading.Semaphore(0)

    def script(seen: Seen) -> Reply:
        gate.acquire(timeout=5)  # answers wait until the test lets them go
        return Reply(response())

    async def go() -> list[bytes]:
        async with provider(server.url, max_connections=2) as p:
            calls = [asyncio.ensure_future(p.call("chat", BODY, 10)) for _ in range(6)]
            await asyncio.sleep(0.2)
            assert server.open_now == 2
            for _ in range(6):
                gate.release()
            return list(await asyncio.gather(*calls))

    with RawServer(script) as server:
        assert run(go()) == [b'{"ok": true}'] * 6
    assert server.most_open == 2
    assert server.connections == 2
    assert len(server.seen) == 6


def test_timeout_and_cancel_free_their_connection(run: Run) -> None:
    """With one connection allowed, a call that timed out and one that was cancelled
    each leave the slot free for the next."""

    def script(seen: Seen) -> Reply:
        if orjson.loads(seen.body)["model"] == "hang":
            return Reply(b"", "hold")
        return Reply(response())

    async def go() -> tuple[UpstreamError, bytes]:
        async with provider(server.url, max_connections=1) as p:
            with pytest.raises(UpstreamError) as info:
                await p.call("chat", {**BODY, "model": "hang"}, 0.2)
            hung = asyncio.ensure_future(p.call("chat", {**BODY, "model": "hang"}, 10))
            await asyncio.sleep(0.1)
            hung.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hung
            return info.value, await p.call("chat", BODY, 5)

    with RawServer(script) as server:
        err, got = run(go())
    assert err.kind == "timeout"
    assert err.message == "provider 'up' did not answer within 0.2s"
    assert got == b'{"ok": true}'
    assert server.connections == 3


def test_stream_idle_timeout(run: Run) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked"
    first = head + b"\r\n\r\n" + b"9\r\ndata: 1\n\n\r\n"

    async def go() -> tuple[list[bytes], UpstreamError]:
        async with provider(server.url) as p:
            stream = await p.open_stream("chat", BODY, 5, 0.2)
            got: list[bytes] = []
            with pytest.raises(UpstreamError) as info:
                async for event in stream.events():
                    got.append(event.data)
            await stream.close()
            return got, info.value

    with serve(Reply(first, "hold")) as server:
        got, err = run(go())
    assert got == [b"1"]
    assert err.kind == "timeout"
    assert err.message == "provider 'up' sent nothing for 0.2s mid-stream"


def test_connect_refused(run: Run) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused

        async def go() -> UpstreamError:
            async with provider(f"http://127.0.0.1:{port}/v1") as p:
                with pytest.raises(UpstreamError) as info:
                    await p.call("chat", BODY, 5)
                return info.value

        err = run(go())
    assert err.kind == "connect"
    assert err.message.startswith(
        f"cannot connect to provider 'up' at http://127.0.0.1:{port}/v1/chat/completions: "
    )
