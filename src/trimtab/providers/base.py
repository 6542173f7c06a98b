"""The one small interface every provider adapter implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from trimtab.types import Operation, Wire

FailureKind = Literal["connect", "timeout", "status", "invalid_response", "stream_cut"]


@dataclass(slots=True)
class SSEEvent:
    """One server-sent event: its optional `event:` name and its joined `data:` payload."""

    event: str | None
    data: bytes


class UpstreamError(Exception):
    """The provider failed: could not be reached, timed out, refused, or answered garbage."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after


class UpstreamStream(Protocol):
    """An open streaming response whose status was already checked."""

    def events(self) -> AsyncIterator[SSEEvent]: ...

    async def close(self) -> None: ...


class Provider(Protocol):
    """A model provider speaking one wire format natively."""

    name: str
    kind: str
    wire: Wire

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def call(
        self, op: Operation, body: dict[str, Any], timeout_s: float, *, encoded: bytes | None = None
    ) -> bytes:
        """Send a non-streaming request; return the 2xx body or raise UpstreamError.

        `encoded`: `body` already serialised (kept for the record), sent as is."""
        ...

    async def open_stream(
        self,
        op: Operation,
        body: dict[str, Any],
        timeout_s: float,
        idle_timeout_s: float,
        *,
        encoded: bytes | None = None,
    ) -> UpstreamStream:
        """Start a streaming request; raise UpstreamError before any byte on failure.

        `timeout_s` bounds connecting and the response headers, `idle_timeout_s` each
        silence between events."""
        ...
