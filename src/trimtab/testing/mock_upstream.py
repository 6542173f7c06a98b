"""A fault-injecting mock LLM provider (OpenAI Chat Completions + Anthropic Messages) on loopback.

The server runs an aiohttp application on its own event loop in a background thread, so it can
be used from synchronous and asynchronous tests alike::

    with MockUpstream() as upstream:
        client = openai.OpenAI(base_url=upstream.openai_base_url, api_key="x")
        client.chat.completions.create(model="gpt-mock", messages=[...])
        assert upstream.requests[-1].path == "/v1/chat/completions"

Behaviour is chosen by the request's ``model`` field (exact match), so a gateway config can map a
model name onto a faulty upstream model:

``fail-<status>``
    Answer with that 4xx/5xx status and an error body in the endpoint's wire format
    (``fail-400``, ``fail-401``, ``fail-500``, ``fail-502``, ``fail-503``...).
``fail-429``
    429 with ``retry-after: 1`` and a rate-limit error body.
``flaky-<k>``
    The first *k* requests for that exact model name get 503, later ones succeed (per instance;
    :meth:`MockUpstream.clear` resets the counters).
``hang``
    Accept the request and never answer (until the client goes away or the server stops).
``reset``
    Abort the TCP connection without sending any response.
``bad-json``
    200, ``content-type: application/json``, truncated JSON body.
``cut-stream``
    Streaming: headers, the preamble and the first 2 content chunks/events, then abort the
    connection (no ``[DONE]`` / ``message_stop``). Non-streaming: like ``reset``.
``slow-<ms>``
    Wait *ms* milliseconds before answering (headers included), then reply normally.
``slow-first-<ms>``
    Streaming: send the headers at once, wait *ms* before the first chunk. Non-streaming: like
    ``slow-<ms>``.
``drip-<ms>``
    Streaming: wait *ms* between consecutive chunks. Non-streaming: a normal reply.
``echo-key``
    401 whose error message repeats the credential the request carried (``Authorization``
    bearer token or ``x-api-key``), as some providers do.
``echo-key-stream``
    Streaming: a 200 event stream whose first event is an error repeating the credential.
    Non-streaming: like ``echo-key``.

Any other model name gets a normal, deterministic reply: ``"mock reply to: <first 40 chars of the
last user message>"`` (whitespace collapsed), with usage counted in whitespace-separated words.
Model ``refuse`` refuses: a short refusal text whose finish reason is OpenAI's
``content_filter`` (whole and streamed) or Anthropic's ``refusal`` stop reason.
Model ``judge-mock`` answers like an LLM judge: ``{"score": s, "reason": "..."}``, the share
of the rubric's words (after ``rubric:``) found in the answer judged (after ``Answer:``), as
:mod:`trimtab.testing.mock_judge` says. If the request carries tools and its final message
is a user turn mentioning "weather", the reply
is a tool call to the first tool with input ``{"city": "Paris"}`` instead. Model
``echo-tool`` answers with a tool call (to the request's first tool, else one named
``echo``) whose input is ``{"text": <the last user message>}``: OpenAI
``tool_calls[0].function.arguments``, Anthropic ``tool_use.input``, streamed as argument
deltas / ``input_json_delta`` of 7 characters each, so a value in the text spans several.

Run ``python -m trimtab.testing.mock_upstream --port 18080`` to serve in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import signal
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from trimtab.testing.mock_anthropic import anthropic_events, anthropic_message
from trimtab.testing.mock_faults import BAD_JSON, Plan, abort, hang, parse_directive
from trimtab.testing.mock_openai import embeddings_reply, openai_completion, openai_events
from trimtab.testing.mock_replies import Wire, build_reply, error, stream_error

__all__ = ["MockUpstream", "RecordedRequest", "main"]

_log = logging.getLogger(__name__)

_MODELS = ("mock-gpt", "mock-claude")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the mock upstream received it (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    body: Any


class MockUpstream:
    """A mock OpenAI/Anthropic provider served from a background thread on loopback."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, access_log: bool = False) -> None:
        """Configure (but do not start) the server; port 0 picks a free port."""
        self.host = host
        self._requested_port = port
        self._access_log = access_log
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._flaky_counts: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> MockUpstream:
        """Start serving in a background thread; return once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("MockUpstream already started")
        self._ready.clear()
        self._startup_error = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="mock-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("MockUpstream did not start within 30s")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Stop the server and join its thread (idempotent)."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        self._stopping = True
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=30)
        self._thread = None
        self._loop = None
        self._stop_event = None

    def __enter__(self) -> MockUpstream:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._port is None:
            raise RuntimeError("MockUpstream is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:18080`` (the Anthropic SDK's base URL)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI SDK's base URL (``url + "/v1"``)."""
        return self.url + "/v1"

    def clear(self) -> None:
        """Forget recorded requests and reset the ``flaky-<k>`` counters."""
        with self._lock:
            del self.requests[:]
            self._flaky_counts.clear()

    # -- event loop thread ----------------------------------------------------------------------

    def _run(self) -> None:
        """Thread body: run the server on a private event loop until stopped."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # pragma: no cover - defensive
            if not self._ready.is_set():
                self._startup_error = exc
            else:
                _log.exception("mock upstream crashed")
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _serve(self) -> None:
        """Start the site, signal readiness, wait for the stop event, clean up."""
        self._stop_event = asyncio.Event()
        runner = web.AppRunner(
            self._make_app(),
            handler_cancellation=True,
            shutdown_timeout=0.5,
            access_log=_log if self._access_log else None,
        )
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
            self._port = int(runner.addresses[0][1])
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            await runner.cleanup()
            return
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await runner.cleanup()

    def _make_app(self) -> web.Application:
        """The aiohttp application with all routes."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # -- request plumbing -----------------------------------------------------------------------

    async def _record(self, request: web.Request) -> Any:
        """Read, parse and record the request; return the parsed JSON body (or None)."""
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        with self._lock:
            self.requests.append(RecordedRequest(path=request.path, headers=headers, body=body))
        return body

    async def _fault(
        self, request: web.Request, wire: Wire, model: str, stream: bool
    ) -> tuple[Plan, web.StreamResponse | None]:
        """Apply the model's directive; a response means the request is fully handled."""
        plan = parse_directive(model)
        if plan.kind == "fail":
            headers = {"retry-after": "1"} if plan.status == 429 else None
            message = f"mock upstream: injected HTTP {plan.status} for model {model!r}"
            if plan.status == 429:
                message = f"mock upstream: rate limit exceeded for model {model!r}"
            return plan, error(wire, plan.status, message, headers)
        if plan.kind == "flaky":
            with self._lock:
                seen = self._flaky_counts.get(model, 0)
                self._flaky_counts[model] = seen + 1
            if seen < plan.flaky:
                msg = f"mock upstream: flaky failure {seen + 1}/{plan.flaky} for model {model!r}"
                return plan, error(wire, 503, msg)
            return plan, None
        if plan.kind == "hang":
            await hang(request, lambda: self._stopping)
            return plan, web.Response(status=504)
        if plan.kind == "reset" or (plan.kind == "cut-stream" and not stream):
            await abort(request)
            return plan, web.Response(status=500)
        if plan.kind in ("echo-key", "echo-key-stream"):
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            credential = bearer or request.headers.get("x-api-key", "")
            echoed = f"mock upstream: incorrect API key provided: {credential}"
            if plan.kind == "echo-key" or not stream:
                return plan, error(wire, 401, echoed)
            return plan, await self._stream(request, plan, [(stream_error(wire, echoed), False)])
        if plan.kind == "bad-json":
            return plan, web.Response(status=200, body=BAD_JSON, content_type="application/json")
        if plan.delay or (plan.first_delay and not stream):
            await asyncio.sleep(plan.delay or plan.first_delay)
        return plan, None

    async def _stream(
        self, request: web.Request, plan: Plan, events: list[tuple[bytes, bool]]
    ) -> web.StreamResponse:
        """Send SSE events one write at a time, honouring drip/slow-first/cut-stream."""
        response = web.StreamResponse(
            status=200,
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
            },
        )
        await response.prepare(request)  # headers go out now
        if plan.first_delay:
            await asyncio.sleep(plan.first_delay)
        if plan.kind == "cut-stream":
            # Keep the preamble and the first 2 content chunks, drop everything after them.
            content_at = [i for i, (_, is_content) in enumerate(events) if is_content][:2]
            events = events[: content_at[-1] + 1 if content_at else 1]
        for i, (data, _) in enumerate(events):
            if i and plan.drip:
                await asyncio.sleep(plan.drip)
            await response.write(data)
        if plan.kind == "cut-stream":
            await abort(request)
            return response
        await response.write_eof()
        return response

    # -- handlers -------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions."""
        body = await self._record(request)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return error("openai", 400, "request body must be a JSON object with 'messages'")
        model = str(body.get("model", ""))
        stream = body.get("stream") is True
        plan, done = await self._fault(request, "openai", model, stream)
        if done is not None:
            return done
        reply = build_reply(body, "openai", next(self._ids))
        if not stream:
            return web.json_response(openai_completion(reply))
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return await self._stream(request, plan, openai_events(reply, include_usage))

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/messages."""
        body = await self._record(request)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return error("anthropic", 400, "request body must be a JSON object with 'messages'")
        model = str(body.get("model", ""))
        stream = body.get("stream") is True
        plan, done = await self._fault(request, "anthropic", model, stream)
        if done is not None:
            return done
        reply = build_reply(body, "anthropic", next(self._ids))
        if not stream:
            return web.json_response(anthropic_message(reply))
        return await self._stream(request, plan, anthropic_events(reply))

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/embeddings."""
        body = await self._record(request)
        if not isinstance(body, dict):
            return error("openai", 400, "request body must be a JSON object")
        model = str(body.get("model", ""))
        _, done = await self._fault(request, "openai", model, False)
        if done is not None:
            return done
        return embeddings_reply(body, model)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/models (fields of both the OpenAI and the Anthropic shapes)."""
        await self._record(request)
        data = [
            {
                "id": name,
                "object": "model",
                "created": 1_700_000_000,
                "owned_by": "trimtab-mock",
                "type": "model",
                "display_name": name,
                "created_at": "2023-11-14T22:13:20Z",
            }
            for name in _MODELS
        ]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"],
                "last_id": data[-1]["id"],
            }
        )

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        """Any other path: 404 in the OpenAI error format."""
        await self._record(request)
        return error("openai", 404, f"mock upstream: no route for {request.method} {request.path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the mock upstream in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m trimtab.testing.mock_upstream",
        description="Fault-injecting mock OpenAI/Anthropic upstream for trying out trimtab.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=18080, help="port to bind (default 18080)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def _terminate(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    upstream = MockUpstream(args.host, args.port, access_log=not args.quiet).start()
    print(
        f"mock upstream listening on {upstream.url} "
        f"(OpenAI base URL {upstream.openai_base_url}, Anthropic base URL {upstream.url})",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
