"""One request's response on an HTTP/1.1 connection, as httptools parses it: the whole
body, or a stream read line by line with a bound on what is buffered (reading pauses past
it) and one idle timer per silence. The connection (`providers/h1client.py`) feeds it the
parser's callbacks; the caller awaits it."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from trimtab.providers.h1errors import BadResponse

_HIGH_WATER = 1 << 17  # stream bytes buffered before reading from the socket pauses
_LOW_WATER = 1 << 15


class Carrier(Protocol):
    """What an exchange needs of the connection it arrives on."""

    loop: asyncio.AbstractEventLoop

    def abort(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Response:
    """A whole response: status, the first value of each header (lower-cased), the body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Exchange:
    """One request's response as it arrives on one connection.

    Whole (`stream=False`): `response()` resolves once the body has ended. Streaming:
    `head()` resolves at the headers, then `lines()` / `read_some()` read the body as
    it arrives."""

    __slots__ = (
        "_buf",
        "_conn",
        "_decoder",
        "_deflate",
        "_error",
        "_fut",
        "_idle_timer",
        "_last_data",
        "_loop",
        "_parts",
        "_paused",
        "_stream",
        "_waiter",
        "complete",
        "headers",
        "status",
        "until_eof",
    )

    def __init__(self, conn: Carrier, stream: bool) -> None:
        self._conn = conn
        self._loop = conn.loop
        self._stream = stream
        self._fut: asyncio.Future[None] = conn.loop.create_future()
        self.status = 0
        self.headers: dict[str, str] = {}
        self._parts: list[bytes] = []
        self._buf = bytearray()
        self._decoder: Any = None  # zlib's Decompress type is private
        self._deflate = False  # decoder chosen at the first body byte
        self.until_eof = False  # a body delimited by the connection's close
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._paused = False
        self.complete = False

    # -- what the caller awaits ------------------------------------------------------------

    async def response(self, deadline: float) -> Response:
        """The whole response, by `deadline` (loop time) or TimeoutError."""
        await self._await(deadline)
        return Response(self.status, self.headers, b"".join(self._parts))

    async def head(self, deadline: float) -> None:
        """Wait for the status and headers."""
        await self._await(deadline)

    async def _await(self, deadline: float) -> None:
        timer = self._loop.call_at(deadline, self._expire)
        try:
            await self._fut
        except BaseException:
            # a timeout, a drop, or the caller cancelled: the connection is unusable
            self._conn.abort()
            raise
        finally:
            timer.cancel()

    def _expire(self) -> None:
        if not self._fut.done():
            self._fut.set_exception(TimeoutError())
            self._conn.abort()

    async def lines(self, idle_s: float) -> AsyncIterator[bytes]:
        """The body's lines (each with its b"\\n"; the last may lack it), as they arrive;
        TimeoutError after `idle_s` seconds of silence, Dropped if the body is cut."""
        buf = self._buf
        while True:
            end = buf.find(b"\n") + 1
            if end:
                line = bytes(buf[:end])
                del buf[:end]
                if self._paused and len(buf) < _LOW_WATER:
                    self._resume()
                yield line
                continue
            if self.complete:
                if buf:
                    rest = bytes(buf)
                    buf.clear()
                    yield rest
                return
            await self._data(idle_s)

    async def read_some(self, limit: int, idle_s: float) -> bytes:
        """Up to `limit` bytes of the body: what has arrived, waiting for some if none has."""
        while not self._buf and not self.complete:
            await self._data(idle_s)
        out = bytes(self._buf[:limit])
        del self._buf[:limit]
        return out

    async def read_all(self, idle_s: float) -> bytes:
        """The rest of the body."""
        while not self.complete:
            await self._data(idle_s)
        out = bytes(self._buf)
        self._buf.clear()
        return out

    async def _data(self, idle_s: float) -> None:
        """Wait for more body bytes, the body's end, or its failure."""
        if self._error is not None:
            raise self._error
        if self._paused:
            self._resume()
        waiter = self._waiter = self._loop.create_future()
        if self._idle_timer is None:
            self._idle_timer = self._loop.call_at(self._last_data + idle_s, self._idle, idle_s)
        try:
            await waiter
        except BaseException:
            self._waiter = None
            if not self.complete:
                self._conn.abort()
            raise
        self._waiter = None
        if self._error is not None:
            raise self._error

    def _idle(self, idle_s: float) -> None:
        # one timer per silence, not per read: it re-arms itself while data keeps coming
        self._idle_timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        due = self._last_data + idle_s
        if self._loop.time() < due:
            self._idle_timer = self._loop.call_at(due, self._idle, idle_s)
            return
        waiter.set_exception(TimeoutError())

    def close(self) -> None:
        """The caller is done: a body not read to its end leaves no reusable connection."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if not self.complete:
            self._conn.abort()

    def _resume(self) -> None:
        self._paused = False
        self._last_data = self._loop.time()  # the silence counts from when it could send
        self._conn.resume_reading()

    # -- what the connection feeds in ------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key not in self.headers:
            self.headers[key] = value.decode("latin-1")

    def on_headers_complete(self, status: int) -> None:
        if status < 200:  # 1xx (100 Continue, 103 Early Hints): the response follows it
            self.headers = {}
            return
        self.status = status
        headers = self.headers
        coding = headers.get("content-encoding", "").strip().lower()
        if coding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._deflate = True
        self.until_eof = (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
            and status not in (204, 304)
        )
        if self._stream:
            self._last_data = self._loop.time()
            if not self._fut.done():
                self._fut.set_result(None)

    def on_body(self, data: bytes) -> None:
        if self._deflate:
            # RFC 9110's deflate is zlib-wrapped; some servers send raw deflate (as aiohttp)
            self._deflate = False
            wbits = zlib.MAX_WBITS if data[0] & 0x0F == 8 else -zlib.MAX_WBITS
            self._decoder = zlib.decompressobj(wbits)
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                raise BadResponse(
                    f"a body that does not decode as {self.headers['content-encoding']}: {exc}"
                ) from None
        if not self._stream:
            self._parts.append(data)
            return
        self._last_data = self._loop.time()
        self._buf += data
        if len(self._buf) > _HIGH_WATER and not self._paused:
            self._paused = True
            self._conn.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status == 0:  # the end of a 1xx
            return
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                (self._buf.extend if self._stream else self._parts.append)(tail)
        self.complete = True
        if self._paused:  # the connection goes back to the pool: it must read again
            self._paused = False
            self._conn.resume_reading()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if not self._fut.done():
            self._fut.set_result(None)
        self._wake()

    def fail(self, exc: BaseException, *, clean: bool = False) -> None:
        """The connection failed or closed (`clean`: closed by the server, no error): the
        body ends here, or is cut."""
        if self.complete:
            return
        if clean and self.until_eof and self.status:
            self.on_message_complete()
            return
        if not self._fut.done():
            self._fut.set_exception(exc)
        self._error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
