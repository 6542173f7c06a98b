"""The HTTP transport shared by the OpenAI-compatible and Anthropic adapters (aiohttp)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, ClassVar

import aiohttp
import orjson

from trimtab.config import ProviderConfig
from trimtab.providers.base import FailureKind, SSEEvent, UpstreamError
from trimtab.providers.secrets import Scrubber, provider_secrets
from trimtab.providers.sse import parse_sse
from trimtab.types import Operation, Wire

_SNIPPET = 200  # bytes of an unexpected upstream body quoted in an error


class HttpStream:
    """A streaming upstream response read line by line, as it arrives."""

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        provider: str,
        idle_timeout_s: float,
        scrub: Scrubber,
    ) -> None:
        self._resp = resp
        self._provider = provider
        self._idle = idle_timeout_s
        self._scrub = scrub

    async def events(self) -> AsyncIterator[SSEEvent]:
        # a mid-stream error event is relayed (and same-format streams are forwarded as
        # is): its text is scrubbed like an error body's
        scrub = self._scrub.data if self._scrub else None
        try:
            async for event in parse_sse(self._resp.content):
                if scrub is not None:
                    event.data = scrub(event.data)
                yield event
        except TimeoutError:
            raise UpstreamError(
                "timeout",
                f"provider '{self._provider}' sent nothing for {self._idle:g}s mid-stream",
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise UpstreamError(
                "stream_cut",
                f"provider '{self._provider}' cut the stream: {_describe(exc)}",
            ) from None

    async def close(self) -> None:
        self._resp.close()


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
        self._headers = {"content-type": "application/json", **headers, **config.headers}
        self._limit = config.max_connections
        self._error_message = error_message
        self._scrub = Scrubber([*provider_secrets(config, headers), *known_secrets])
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _url(self, op: Operation) -> str:
        path = self.paths.get(op)
        if path is None:
            raise UpstreamError(
                "status", f"provider '{self.name}' ({self.kind}) has no {op} endpoint", status=400
            )
        return self._base + path

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"provider '{self.name}' used before start()")
        return self._session

    async def call(
        self, op: Operation, body: dict[str, Any], timeout_s: float, *, encoded: bytes | None = None
    ) -> bytes:
        url = self._url(op)
        session = self._require_session()
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        data = orjson.dumps(body) if encoded is None else encoded
        try:
            async with session.post(url, data=data, headers=self._headers, timeout=timeout) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise self._status_error(resp, raw)
                return raw
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc, url, timeout_s) from None

    async def open_stream(
        self,
        op: Operation,
        body: dict[str, Any],
        timeout_s: float,
        idle_timeout_s: float,
        *,
        encoded: bytes | None = None,
    ) -> HttpStream:
        url = self._url(op)
        session = self._require_session()
        # the whole-request bound does not fit a stream: bound the headers, then each read
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout_s, sock_read=idle_timeout_s
        )
        data = orjson.dumps(body) if encoded is None else encoded
        try:
            async with asyncio.timeout(timeout_s):
                resp = await session.post(url, data=data, headers=self._headers, timeout=timeout)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc, url, timeout_s) from None
        if resp.status >= 400:
            try:
                raw = await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                raw = b""
            finally:
                resp.close()
            raise self._status_error(resp, raw)
        ctype = resp.headers.get("content-type", "")
        if not ctype.startswith("text/event-stream"):
            try:
                raw = await resp.content.read(_SNIPPET + self._scrub.longest)
            except (aiohttp.ClientError, TimeoutError):
                raw = b""
            finally:
                resp.close()
            snippet = _snippet(self._scrub.data(raw))
            raise self._error(
                "invalid_response",
                f"provider '{self.name}' answered a streaming request with "
                f"'{ctype or 'no content-type'}' instead of an event stream: {snippet!r}",
            )
        return HttpStream(resp, self.name, idle_timeout_s, self._scrub)

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

    def _transport_error(self, exc: BaseException, url: str, timeout_s: float) -> UpstreamError:
        """What a timeout or a connection failure on the way to the provider means."""
        if isinstance(exc, TimeoutError):
            return UpstreamError(
                "timeout", f"provider '{self.name}' did not answer within {timeout_s:g}s"
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            return self._error(
                "connect", f"cannot connect to provider '{self.name}' at {url}: {_describe(exc)}"
            )
        return self._error(
            "stream_cut", f"provider '{self.name}' dropped the connection: {_describe(exc)}"
        )

    def _status_error(self, resp: aiohttp.ClientResponse, raw: bytes) -> UpstreamError:
        # scrubbed before the cut, so no prefix of a key survives at the 200th byte
        detail = self._error_message(raw) or _snippet(self._scrub.data(raw)) or "empty body"
        return self._error(
            "status",
            f"provider '{self.name}' returned HTTP {resp.status}: {detail}",
            status=resp.status,
            retry_after=resp.headers.get("retry-after"),
        )


def _snippet(raw: bytes) -> str:
    return raw[:_SNIPPET].decode("utf-8", "replace")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
