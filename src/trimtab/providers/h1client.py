"""A lean keep-alive HTTP/1.1 client for provider calls: one origin, POST, httptools.

aiohttp's general client cost more CPU per provider call than the rest of the gateway's
own logic (issue 11's profile). A provider call needs much less: the request head is
known per provider and operation, so it is built once; a request is one transport write;
the response is parsed by httptools straight into the waiting caller's future, with no
task per request, and a call's deadline is one `loop.call_at` timer.

Errors leave as `ConnectFailed`, `Dropped`, `BadResponse` and `TimeoutError`; the
provider adapter (`providers/http.py`) turns them into `UpstreamError`s (they are
`providers/h1errors.py`). This module is the connections and their pool; the response an
exchange reads is `providers/h1response.py`.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections import deque
from typing import cast

import httptools

from trimtab.providers.h1errors import BadResponse, ConnectFailed, Dropped, describe
from trimtab.providers.h1response import Exchange

KEEPALIVE_S = 15.0  # an idle connection older than this is closed, not reused (as aiohttp)


class Origin:
    """Where one provider's requests go: scheme, host and port, and the TLS context."""

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.ssl: ssl.SSLContext | None = None
        if scheme == "https":
            # the default verified context: the system's CAs (or SSL_CERT_FILE, SSL_CERT_DIR)
            self.ssl = ssl.create_default_context()


class Connection(asyncio.Protocol):
    """One keep-alive connection: a response parser and the exchange it feeds."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._ex: Exchange | None = None  # the request in flight
        self._cur: Exchange | None = None  # the exchange the parser's message belongs to
        self._keep = False
        self._junk = False  # a message nobody asked for
        self._poll: select.poll | None = None
        self.state = "busy"  # busy | idle | gone
        self.reused = False
        self.idle_since = 0.0

    # -- the pool's side -------------------------------------------------------------------

    def send(self, data: bytes, stream: bool) -> Exchange | None:
        """Write one request; None when the write failed at once (nothing was sent)."""
        transport = self.transport
        assert transport is not None
        ex = self._ex = Exchange(self, stream)
        transport.write(data)
        if transport.is_closing():
            # the socket refused the first send() of this request: not one byte left
            # (an idle connection's write buffer is empty, and a failed send sends nothing)
            self._ex = None
            return None
        return ex

    def usable(self) -> bool:
        """An idle connection still open, not expired, and with nothing to read: a
        readable idle socket is one the server closed (or wrote garbage to)."""
        if self.loop.time() - self.idle_since > KEEPALIVE_S:
            return False
        return not (self._poll is not None and self._poll.poll(0))

    def abort(self) -> None:
        self._ex = None
        if self.transport is not None and self.state != "gone":
            self.transport.abort()
        self.pool.forget(self)

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # -- asyncio's side --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no subclass of asyncio.Transport, but have its methods
        self.attach(cast(asyncio.Transport, transport))

    def attach(self, transport: asyncio.Transport) -> None:
        """Take the transport (uvloop calls connection_made after create_connection
        returns, asyncio before)."""
        if self.transport is not None:
            return
        self.transport = transport
        if self.pool.origin.ssl is None:
            # TLS may send records (session tickets) to an idle connection: only a plain
            # socket's readability says the server closed it
            sock = transport.get_extra_info("socket")
            if sock is not None:
                self._poll = select.poll()
                self._poll.register(sock.fileno(), select.POLLIN)

    def data_received(self, data: bytes) -> None:
        ex = self._ex
        if ex is None:  # bytes nobody asked for: the connection is out of step
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            ex.fail(cause if isinstance(cause, BadResponse) else BadResponse(describe(exc)))
            self.abort()
            return
        except httptools.HttpParserError as exc:
            ex.fail(BadResponse(f"not an HTTP/1.1 response: {describe(exc)}"))
            self.abort()
            return
        if ex.complete:
            self._ex = None
            keep = (
                self._keep
                and not self._junk
                and not ex.until_eof
                # a response that came before the whole request was written
                and transport_idle(self.transport)
            )
            self.pool.release(self, keep)

    def eof_received(self) -> bool | None:
        return None  # close: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        ex = self._ex
        if ex is not None:
            self._ex = None
            detail = describe(exc) if exc is not None else "the connection closed"
            ex.fail(Dropped(detail), clean=exc is None)
        self.pool.forget(self)

    # httptools callbacks

    def on_message_begin(self) -> None:
        ex = self._ex
        self._cur = ex if ex is not None and not ex.complete else None
        if self._cur is None:
            self._junk = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._cur is not None:
            self._cur.on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._cur is not None:
            self._keep = self._parser.should_keep_alive()
            self._cur.on_headers_complete(self._parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        if self._cur is not None:
            self._cur.on_body(body)

    def on_message_complete(self) -> None:
        if self._cur is not None:
            self._cur.on_message_complete()


class Pool:
    """At most `limit` connections to one origin: idle ones reused newest first, callers
    past the limit served in arrival order."""

    def __init__(self, origin: Origin, limit: int) -> None:
        self.origin = origin
        self.limit = limit
        self.loop = asyncio.get_running_loop()
        self._idle: list[Connection] = []
        self._open = 0  # busy, idle and connecting
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._closed = False

    async def send(self, data: bytes, deadline: float, *, stream: bool) -> Exchange:
        """Write one request on a connection; the exchange carries its response."""
        conn = self._take_idle()
        if conn is None:
            async with asyncio.timeout_at(deadline):
                conn = await self._acquire()
        ex = conn.send(data, stream)
        if ex is None:
            # Sending again is safe only because nothing of the request left this host: the
            # first send() failed outright on a reused connection the server had closed
            # while it sat idle. A request whose bytes were written is never sent twice,
            # even when the connection then closes before any response byte: the server
            # may have acted on it (a POST is not idempotent).
            reused = conn.reused
            self._drop(conn)
            if not reused:
                raise Dropped("the connection closed before the request was written")
            async with asyncio.timeout_at(deadline):
                conn = await self._acquire(fresh=True)
            ex = conn.send(data, stream)
            if ex is None:
                self._drop(conn)
                raise Dropped("the connection closed before the request was written")
        return ex

    def _take_idle(self) -> Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            conn.state = "busy"
            if conn.usable():
                return conn
            self._drop(conn)
        return None

    async def _acquire(self, *, fresh: bool = False) -> Connection:
        while True:
            if not fresh:
                conn = self._take_idle()
                if conn is not None:
                    return conn
            if self._closed:
                raise Dropped("the provider is closed")
            if self._open < self.limit:
                self._open += 1
                return await self._connect()
            waiter: asyncio.Future[Connection | None] = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                got = await waiter
            except BaseException:
                if not waiter.done() or waiter.cancelled():
                    self._waiters.remove(waiter)
                elif (handed := waiter.result()) is not None:
                    self.release(handed, True)  # handed over as we were cancelled
                else:
                    self._open -= 1  # so was a slot
                    self._free_slot()
                raise
            if got is None:  # a free slot, ours to connect on
                return await self._connect()
            if not fresh:
                return got
            self.release(got, True)

    async def _connect(self) -> Connection:
        """Open a connection on a slot already counted in `_open`."""
        origin = self.origin
        try:
            transport, conn = await self.loop.create_connection(
                lambda: Connection(self),
                origin.host,
                origin.port,
                ssl=origin.ssl,
                server_hostname=origin.host if origin.ssl is not None else None,
            )
        except BaseException as exc:
            self._open -= 1
            self._free_slot()
            if isinstance(exc, OSError):
                raise ConnectFailed(exc) from None
            raise
        conn.attach(transport)
        return conn

    def release(self, conn: Connection, keep: bool) -> None:
        """A connection whose response ended: idle again, to the next waiter, or closed."""
        if conn.state == "gone":
            return
        if not keep or self._closed:
            self._drop(conn)
            return
        conn.reused = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                conn.state = "busy"
                waiter.set_result(conn)
                return
        conn.state = "idle"
        conn.idle_since = self.loop.time()
        self._idle.append(conn)

    def forget(self, conn: Connection) -> None:
        """The connection is closed (by us or by the server)."""
        if conn.state == "gone":
            return
        if conn.state == "idle":
            self._idle.remove(conn)
        conn.state = "gone"
        self._open -= 1
        self._free_slot()

    def _drop(self, conn: Connection) -> None:
        if conn.state != "gone" and conn.transport is not None:
            conn.transport.abort()
        self.forget(conn)

    def _free_slot(self) -> None:
        """Give a free slot to the first waiter still waiting."""
        while self._waiters and self._open < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close every connection; busy ones close as their exchanges end."""
        self._closed = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(Dropped("the provider is closed"))
        self._waiters.clear()
        for conn in list(self._idle):
            self._drop(conn)


def transport_idle(transport: asyncio.Transport | None) -> bool:
    return transport is not None and transport.get_write_buffer_size() == 0
