"""`EventStream`: events sent as they come; a client that leaves cancels the relay where it
waits, and the response ends quietly; any other cancellation goes on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.types import Message

from trimtab.gateway.event_stream import EventStream

SCOPE: dict[str, Any] = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}}


class Client:
    """The server's side of one connection: what was sent, and a disconnect to deliver."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.left = asyncio.Event()

    async def receive(self) -> Message:
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


async def respond(events: AsyncIterator[bytes], client: Client) -> None:
    await EventStream(events, 200, {})(SCOPE, client.receive, client.send)


async def test_every_event_is_sent_then_the_end() -> None:
    async def events() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"data: {i}\n\n".encode()

    client = Client()
    await EventStream(events(), 200, {"x-a": "1"})(SCOPE, client.receive, client.send)
    start = client.sent[0]
    assert start["type"] == "http.response.start" and start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert headers[b"x-a"] == b"1"
    assert client.bodies() == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n", b""]
    assert client.sent[-1]["more_body"] is False


async def test_a_client_that_leaves_cancels_the_relay_and_the_response_ends_quietly() -> None:
    seen: list[str] = []
    waiting = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        try:
            waiting.set()
            await asyncio.sleep(30)  # the provider, slow to send the next event
            yield b"data: never\n\n"
        except asyncio.CancelledError:
            seen.append("cancelled")  # where the relay records its 499
            raise

    client = Client()
    task = asyncio.current_task()
    assert task is not None
    serving = asyncio.create_task(
        EventStream(events(), 200, {})(SCOPE, client.receive, client.send)
    )
    await waiting.wait()
    client.left.set()
    await asyncio.wait_for(serving, 5)  # returns, does not raise
    assert seen == ["cancelled"]
    assert client.bodies() == [b"data: first\n\n"]
    assert serving.cancelling() == 0  # the cancellation it caused is taken back


async def test_a_client_leaving_after_the_end_cancels_nothing() -> None:
    async def events() -> AsyncIterator[bytes]:
        yield b"data: only\n\n"

    client = Client()
    client.left.set()  # the disconnect is already there when the watcher first looks
    await EventStream(events(), 200, {})(SCOPE, client.receive, client.send)
    await asyncio.sleep(0)  # a cancellation left behind would land here
    assert client.bodies() == [b"data: only\n\n", b""]


async def test_another_cancellation_is_not_swallowed() -> None:
    waiting = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        waiting.set()
        await asyncio.sleep(30)
        yield b"data: never\n\n"

    client = Client()
    serving = asyncio.create_task(
        EventStream(events(), 200, {})(SCOPE, client.receive, client.send)
    )
    await waiting.wait()
    serving.cancel()  # e.g. the server stopping
    with pytest.raises(asyncio.CancelledError):
        await serving
