"""The last resort for an exception no handler caught: an answer, not a closed connection.

Starlette's ServerErrorMiddleware sends its 500 and then re-raises, and uvicorn closes
a connection whose application raised, resetting every request queued behind it on a
keep-alive connection. `LastResort` sits inside it: it answers in the caller's wire
format, logs the traceback once, and returns normally, so the connection stays open.
A store that cannot be reached (store/errors.py says which failures are outages) is a 503
`store_unavailable` on every endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trimtab.errors import GatewayError, error_body, gateway_error, internal_error
from trimtab.store.errors import store_unavailable
from trimtab.types import Wire, new_request_id

log = logging.getLogger(__name__)

_ANTHROPIC_PREFIX = "/v1/messages"
_OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/embeddings", "/v1/completions"})
# where a wrong base_url sends the Messages API: without /v1, or the Anthropic SDK (which
# adds /v1 itself) given a base_url ending in /v1
_MISPLACED_MESSAGES = frozenset({"/messages", "/v1/v1/messages"})
_OPENAI_ENDPOINTS = ("/chat/completions", "/embeddings", "/completions", "/models")


def wire_for(path: str, headers: Mapping[str, str]) -> Wire:
    """The format a caller of `path` reads errors in: Anthropic's under /v1/messages (and
    where a wrong base_url puts it), and on other /v1 paths (but OpenAI's own) when the
    client sends `anthropic-version`."""
    if path == _ANTHROPIC_PREFIX or path.startswith(_ANTHROPIC_PREFIX + "/"):
        return "anthropic"
    if path in _MISPLACED_MESSAGES:
        return "anthropic"
    if path.startswith("/v1/") and path not in _OPENAI_PATHS and "anthropic-version" in headers:
        return "anthropic"
    return "openai"


def base_url_hint(path: str, base: str) -> str | None:
    """What to set `base_url` to, for a 404 that a common base_url mistake explains:
    an OpenAI path without /v1 (or with it twice), the Messages API without /v1, or the
    Anthropic SDK given a base_url ending in /v1. `base` is this server's URL, as the
    client reached it. None for any other path."""
    base = base.rstrip("/")
    if path == "/v1/v1/messages":
        return (
            f"the Anthropic SDK adds /v1 itself: set base_url to {base} (without /v1), "
            f"so that it calls {base}/v1/messages"
        )
    if path == "/messages":
        return (
            f"the Messages API is at /v1/messages: set base_url to {base} with the "
            f"Anthropic SDK (it adds /v1), or to {base}/v1 with a client that appends "
            "/messages"
        )
    for endpoint in _OPENAI_ENDPOINTS:
        if path.endswith(endpoint):
            prefix = path[: -len(endpoint)]
            if prefix == "" or prefix == "/v1/v1":
                return (
                    f"trimtab serves this at /v1{endpoint}: set base_url to {base}/v1 "
                    f'(OpenAI SDK: OpenAI(base_url="{base}/v1")), so that it calls '
                    f"{base}/v1{endpoint}"
                )
    return None


def error_message(err: GatewayError, wire: Wire, request_id: str) -> tuple[Message, Message]:
    """The two ASGI messages of an error response carrying `request_id`."""
    body = error_body(err, wire, request_id)
    start: Message = {
        "type": "http.response.start",
        "status": err.status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-trimtab-request-id", request_id.encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class LastResort:
    """Pure ASGI middleware: an exception raised before the response started becomes
    a 500 `internal_error` (or 503 `store_unavailable`) and is not re-raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:
                raise  # half a response cannot be mended: the server must close the connection
            rid = new_request_id()
            outage = store_unavailable(exc)
            path = scope.get("path", "")
            if outage is None:
                log.error(
                    "internal error on %s %s, request %s", scope.get("method"), path, rid,
                    exc_info=exc,
                )  # fmt: skip
                err = internal_error(exc)
            else:
                err = gateway_error(outage)
                log.warning("%s %s, request %s: %s", scope.get("method"), path, rid, err.message)
            for message in error_message(err, wire_for(path, Headers(scope=scope)), rid):
                await send(message)


Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    """Pure ASGI middleware: the gateway's POST endpoints answered at once, without
    Starlette's router, its exception layer and the wrappers of each route (about 9 µs a
    request, measured in docs/benchmarks.md). Those endpoints answer every error
    themselves, in the caller's wire format; `LastResort` outside still catches what they
    cannot. Every other request goes on to the app, whose router keeps the same routes, so
    the OpenAPI document and a wrong method's 405 are unchanged."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, Endpoint]) -> None:
        self.app = app
        self._routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._routes.get(scope["path"])
            if endpoint is not None:
                response = await endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
