"""The HTTP transport shared by the OpenAI-compatible and Anthropic adapters.

Requests go through `h1client`, a keep-alive HTTP/1.1 client made for this one job
(plain and TLS upstreams alike); this module builds each provider's request head once
and says what the client's failures mean, in the provider's words.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, ClassVar
from urllib.parse import SplitResult, quote, unquote, urlsplit

import orjson

from trimtab.config import ProviderConfig
from trimtab.providers.base import FailureKind, SSEEvent, UpstreamError
from trimtab.providers.h1client import Origin, Pool
from trimtab.providers.h1errors import BadResponse, ConnectFailed, Dropped
from trimtab.providers.h1response import Exchange
from trimtab.providers.secrets import Scrubber, provider_secrets
from trimtab.providers.sse import parse_sse
from trimtab.types import Operation, Wire

_SNIPPET = 200  # bytes of an unexpected upstream body quoted in an error
_DEFAULT_PORTS = {"http": 80, "https": 443}
# what aiohttp, the client before this one, sent unasked; a provider's headers override them
_AUTO_HEADERS = {"accept": "*/*", "accept-encoding": "gzip, deflate"}
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


class HttpStream:
    """A streaming upstream response read line by line, as it arrives."""

    def __init__(
        self,
        exchange: Exchange,
        provider: str,
        idle_timeout_s: float,
        scrub: Scrubber,
    ) -> None:
        self._ex = exchange
        self._provider = provider
        self._idle = idle_timeout_s
        self._scrub = scrub

    async def events(self) -> AsyncIterator[SSEEvent]:
        # a mid-stream error event is relayed (and same-format streams are forwarded as
        # is): its text is scrubbed like an error body's
        scrub = self._scrub.data if self._scrub else None
        try:
            async for event in parse_sse(self._ex.lines(self._idle)):
                if scrub is not None:
                    event.data = scrub(event.data)
                yield event
        except TimeoutError:
            raise UpstreamError(
                "timeout",
                f"provider '{self._provider}' sent nothing for {self._idle:g}s mid-stream",
            ) from None
        except (Dropped, BadResponse) as exc:
            raise UpstreamError(
                "stream_cut",
                self._scrub.text(f"provider '{self._provider}' cut the stream: {exc}"),
            ) from None

    async def close(self) -> None:
        self._ex.close()


class HttpProvider:
    """POSTs JSON to one base URL with pooled keep-alive connections."""

    wire: Wire
    paths: ClassVar[dict[Operation, str]]

    def __init__(
        self,
        name: str,
        config: ProviderConfig,
        headers: dict[str, str],
        error_message: Callable[[bytes], str | None],
        known_secrets: Iterable[str] = (),
    ) -> None:
        """`known_secrets`: every other provider's credentials, scrubbed here too."""
        self.name = name
        self.kind: str = config.kind
        self._base = (config.base_url or "").rstrip("/")
        self._limit = config.max_connections
        self._error_message = error_message
        self._scrub = Scrubber([*provider_secrets(config, headers), *known_secrets])
        self._pool: Pool | None = None
        url = urlsplit(self._base)
        try:
            port = url.port or _DEFAULT_PORTS.get(url.scheme)
        except ValueError:  # out of range
            port = None
        self._origin_error: str | None = None
        if url.scheme not in _DEFAULT_PORTS or not url.hostname or port is None:
            self._origin_error = f"'{self._base}' is not an http:// or https:// URL with a host"
        self._scheme = url.scheme
        self._host = (url.hostname or "").encode("idna").decode("ascii")
        self._port = port or 0
        self._header_block = _header_block(name, url, self._host, port, headers, config.headers)
        self._heads: dict[Operation, bytes] = {}

    async def start(self) -> None:
        if self._origin_error is None:
            self._pool = Pool(Origin(self._scheme, self._host, self._port), self._limit)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _url(self, op: Operation) -> str:
        path = self.paths.get(op)
        if path is None:
            raise UpstreamError(
                "status", f"provider '{self.name}' ({self.kind}) has no {op} endpoint", status=400
            )
        return self._base + path

    def _head(self, op: Operation) -> bytes:
        """The request head up to the body's length, built once per operation."""
        head = self._heads.get(op)
        if head is None:
            url = urlsplit(self._url(op))
            target = quote(url.path or "/", safe=_PATH_SAFE)
            if url.query:
                target += "?" + quote(url.query, safe=_QUERY_SAFE)
            head = b"POST %s HTTP/1.1\r\n%scontent-length: " % (
                target.encode("ascii"),
                self._header_block,
            )
            self._heads[op] = head
        return head

    def _require_pool(self, op: Operation) -> Pool:
        if self._pool is None:
            if self._origin_error is not None:
                raise self._error(
                    "connect",
                    f"cannot connect to provider '{self.name}' at {self._url(op)}: "
                    f"{self._origin_error}",
                )
            raise RuntimeError(f"provider '{self.name}' used before start()")
        return self._pool

    def _request(self, op: Operation, body: dict[str, Any], encoded: bytes | None) -> bytes:
        head = self._head(op)
        data = orjson.dumps(body) if encoded is None else encoded
        # head and body in one buffer: one write, one send() on the socket
        return b"".join((head, str(len(data)).encode(), b"\r\n\r\n", data))

    async def call(
        self, op: Operation, body: dict[str, Any], timeout_s: float, *, encoded: bytes | None = None
    ) -> bytes:
        request = self._request(op, body, encoded)
        pool = self._require_pool(op)
        deadline = pool.loop.time() + timeout_s
        try:
            exchange = await pool.send(request, deadline, stream=False)
            resp = await exchange.response(deadline)
        except (TimeoutError, ConnectFailed, Dropped, BadResponse) as exc:
            raise self._transport_error(exc, op, timeout_s) from None
        if resp.status >= 400:
            raise self._status_error(resp.status, resp.headers, resp.body)
        return resp.body

    async def open_stream(
        self,
        op: Operation,
        body: dict[str, Any],
        timeout_s: float,
        idle_timeout_s: float,
        *,
        encoded: bytes | None = None,
    ) -> HttpStream:
        request = self._request(op, body, encoded)
        pool = self._require_pool(op)
        # the whole-request bound does not fit a stream: bound the headers, then each silence
        deadline = pool.loop.time() + timeout_s
        try:
            ex = await pool.send(request, deadline, stream=True)
            await ex.head(deadline)
        except (TimeoutError, ConnectFailed, Dropped, BadResponse) as exc:
            raise self._transport_error(exc, op, timeout_s) from None
        if ex.status >= 400:
            try:
                raw = await ex.read_all(idle_timeout_s)
            except (TimeoutError, Dropped, BadResponse):
                raw = b""
            finally:
                ex.close()
            raise self._status_error(ex.status, ex.headers, raw)
        ctype = ex.headers.get("content-type", "")
        if not ctype.startswith("text/event-stream"):
            try:
                raw = await ex.read_some(_SNIPPET + self._scrub.longest, idle_timeout_s)
            except (TimeoutError, Dropped, BadResponse):
                raw = b""
            finally:
                ex.close()
            snippet = _snippet(self._scrub.data(raw))
            raise self._error(
                "invalid_response",
                f"provider '{self.name}' answered a streaming request with "
                f"'{ctype or 'no content-type'}' instead of an event stream: {snippet!r}",
            )
        return HttpStream(ex, self.name, idle_timeout_s, self._scrub)

    def _error(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
    ) -> UpstreamError:
        """An UpstreamError whose message carries none of this provider's credentials:
        the one place upstream text becomes what clients, records and logs see."""
        return UpstreamError(
            kind, self._scrub.text(message), status=status, retry_after=retry_after
        )

    def _transport_error(
        self, exc: BaseException, op: Operation, timeout_s: float
    ) -> UpstreamError:
        """What a timeout or a connection failure on the way to the provider means."""
        if isinstance(exc, TimeoutError):
            return UpstreamError(
                "timeout", f"provider '{self.name}' did not answer within {timeout_s:g}s"
            )
        if isinstance(exc, ConnectFailed):
            return self._error(
                "connect", f"cannot connect to provider '{self.name}' at {self._url(op)}: {exc}"
            )
        if isinstance(exc, BadResponse):
            return self._error(
                "invalid_response", f"provider '{self.name}' sent an invalid response: {exc}"
            )
        return self._error("stream_cut", f"provider '{self.name}' dropped the connection: {exc}")

    def _status_error(self, status: int, headers: dict[str, str], raw: bytes) -> UpstreamError:
        # scrubbed before the cut, so no prefix of a key survives at the 200th byte
        detail = self._error_message(raw) or _snippet(self._scrub.data(raw)) or "empty body"
        return self._error(
            "status",
            f"provider '{self.name}' returned HTTP {status}: {detail}",
            status=status,
            retry_after=headers.get("retry-after"),
        )


def _snippet(raw: bytes) -> str:
    return raw[:_SNIPPET].decode("utf-8", "replace")


def _header_block(
    name: str,
    url: SplitResult,
    host: str,
    port: int | None,
    headers: dict[str, str],
    config_headers: dict[str, str],
) -> bytes:
    """Every header of a provider's requests but content-length, one per name, the later
    ones winning: host, the adapter's, Basic auth from the URL, the config's, defaults."""
    merged: dict[str, tuple[str, str]] = {}
    authority = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS.get(url.scheme):
        authority += f":{port}"
    merged["host"] = ("host", authority)
    for key, value in {"content-type": "application/json", **headers}.items():
        merged[key.lower()] = (key, value)
    if url.username is not None and "authorization" not in merged:
        # credentials in the base URL mean HTTP Basic auth, as with aiohttp
        basic = f"{unquote(url.username)}:{unquote(url.password or '')}".encode()
        merged["authorization"] = ("authorization", "Basic " + base64.b64encode(basic).decode())
    for key, value in config_headers.items():
        merged[key.lower()] = (key, value)
    for key, value in _AUTO_HEADERS.items():
        merged.setdefault(key, (key, value))
    for skip in ("content-length", "transfer-encoding"):
        merged.pop(skip, None)  # the body's framing is the client's
    lines = []
    for key, value in merged.values():
        if any(c in key + value for c in "\r\n\0"):
            raise ValueError(f"provider '{name}': header {key!r} has a line break or NUL")
        lines.append(f"{key}: {value}\r\n")
    return "".join(lines).encode()
