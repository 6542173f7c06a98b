"""The response of a streamed answer: server-sent events sent as the relay yields them.

Starlette's StreamingResponse, under a server that speaks ASGI 2.3 (uvicorn), runs each
stream in an anyio task group with a second task listening for the client's disconnect:
about 60 µs of CPU a stream, much of it before the first event (measured in
docs/benchmarks.md). This one does the same with one plain task: a watcher that waits
for `http.disconnect` and cancels the streaming task, so the relay sees the
cancellation where it waits (and records the 499) exactly as before; a cancellation the
watcher caused ends the response quietly, any other goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from trimtab.gateway.replies import SSE_TYPE


class EventStream(Response):
    """Server-sent events from `events`, ended quietly when the client goes away."""

    media_type = SSE_TYPE

    def __init__(
        self, events: AsyncIterator[bytes], status_code: int, headers: Mapping[str, str]
    ) -> None:
        self.events = events
        self.status_code = status_code
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None  # an ASGI app runs in a task
        state = {"gone": False, "done": False}

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not state["done"]:
                state["gone"] = True
                streaming.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            async for chunk in self.events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not state["gone"]:
                raise  # not the client leaving: the server's own stop, say
            streaming.uncancel()
        finally:
            state["done"] = True
            watcher.cancel()
