"""The uvicorn server one gateway process runs, with a stop that loses no request.

uvicorn's own stop closes every idle keep-alive connection at once. A proxy or client
that is writing its next request to such a connection at that moment gets a reset, and
cannot tell whether the request was served: nginx answers 502 and, rightly, does not
send a POST twice. So a stop here drains first:

1. stop accepting (a new connection is refused, and a proxy moves on to the next
   process before it has sent anything);
2. every response from then on carries ``connection: close``, so a connection that is
   used once more closes after its answer, with the client knowing it;
3. idle connections are left to their peer, which closes them at its own keep-alive
   timeout (nginx's is set below ours), or to uvicorn's keep-alive timer — the same
   close a connection gets any day — for at most that timeout and a second;
4. then uvicorn's stop: requests still running finish within the graceful timeout.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn

CLOSE = (b"connection", b"close")


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose stop drains keep-alive connections first (module docstring)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        # read by each request as it starts (uvicorn re-creates the list every second
        # while serving; that loop has stopped by now)
        state.default_headers = [*state.default_headers, CLOSE]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout_keep_alive + 1.0
        # uvicorn's set of open connections has no event to wait on
        while state.connections and not self.force_exit and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await super().shutdown(sockets=None)
