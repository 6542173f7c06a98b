"""Server-sent events: parse a byte-line stream into events, encode events."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from trimtab.providers.base import SSEEvent


async def parse_sse(lines: AsyncIterable[bytes]) -> AsyncIterator[SSEEvent]:
    """Group lines into events at each blank line (the WHATWG event-stream rules we need)."""
    event: str | None = None
    data: list[bytes] = []
    async for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield SSEEvent(event, b"\n".join(data))
            event, data = None, []
            continue
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode("utf-8", "replace")
        # comments (":") and other fields (id:, retry:) carry nothing we use
    if data:
        yield SSEEvent(event, b"\n".join(data))


def encode_data(data: bytes) -> bytes:
    """An unnamed event (OpenAI style)."""
    return b"data: " + data + b"\n\n"


def encode_event(name: str, data: bytes) -> bytes:
    """A named event (Anthropic style)."""
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"
