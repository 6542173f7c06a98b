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
If the request carries tools and its final message is a user turn mentioning "weather", the reply
is a tool call to the first tool with input ``{"city": "Paris"}`` instead.

Run ``python -m trimtab.testing.mock_upstream --port 18080`` to serve in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import logging
import re
import signal
import struct
import sys
import threading
import time
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

__all__ = ["MockUpstream", "RecordedRequest", "main"]

_log = logging.getLogger(__name__)

Wire = Literal["openai", "anthropic"]
Finish = Literal["stop", "length", "tool"]

_OPENAI_FINISH: dict[Finish, str] = {"stop": "stop", "length": "length", "tool": "tool_calls"}
_ANTHROPIC_STOP: dict[Finish, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool": "tool_use",
}

# status -> (OpenAI error type, OpenAI error code, Anthropic error type)
_ERROR_KINDS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request_error", "invalid_request_error", "invalid_request_error"),
    401: ("invalid_request_error", "invalid_api_key", "authentication_error"),
    403: ("permission_error", "permission_denied", "permission_error"),
    404: ("invalid_request_error", "not_found", "not_found_error"),
    413: ("invalid_request_error", "request_too_large", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded", "rate_limit_error"),
    500: ("server_error", "server_error", "api_error"),
    502: ("server_error", "bad_gateway", "api_error"),
    503: ("server_error", "service_unavailable", "api_error"),
    504: ("server_error", "gateway_timeout", "api_error"),
    529: ("server_error", "overloaded", "overloaded_error"),
}

_BAD_JSON = b'{"id": "x", "choices": ['
_WEATHER_RE = re.compile(r"\bweather\b", re.IGNORECASE)
_TOOL_INPUT: dict[str, Any] = {"city": "Paris"}
_MODELS = ("mock-gpt", "mock-claude")

_FAIL_RE = re.compile(r"fail-([45]\d\d)")
_FLAKY_RE = re.compile(r"flaky-(\d+)")
_SLOW_FIRST_RE = re.compile(r"slow-first-(\d+)")
_SLOW_RE = re.compile(r"slow-(\d+)")
_DRIP_RE = re.compile(r"drip-(\d+)")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the mock upstream received it (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class _Plan:
    """What a model name asks the server to do."""

    kind: Literal[
        "reply",
        "fail",
        "flaky",
        "hang",
        "reset",
        "bad-json",
        "cut-stream",
        "echo-key",
        "echo-key-stream",
    ] = "reply"
    status: int = 200
    flaky: int = 0
    delay: float = 0.0
    first_delay: float = 0.0
    drip: float = 0.0


_SIMPLE_PLANS: dict[str, _Plan] = {
    "hang": _Plan(kind="hang"),
    "reset": _Plan(kind="reset"),
    "bad-json": _Plan(kind="bad-json"),
    "cut-stream": _Plan(kind="cut-stream"),
    "echo-key": _Plan(kind="echo-key"),
    "echo-key-stream": _Plan(kind="echo-key-stream"),
}


def _parse_directive(model: str) -> _Plan:
    """Map a model name onto a fault-injection plan."""
    if model in _SIMPLE_PLANS:
        return _SIMPLE_PLANS[model]
    if m := _FAIL_RE.fullmatch(model):
        return _Plan(kind="fail", status=int(m.group(1)))
    if m := _FLAKY_RE.fullmatch(model):
        return _Plan(kind="flaky", flaky=int(m.group(1)))
    if m := _SLOW_FIRST_RE.fullmatch(model):
        return _Plan(first_delay=int(m.group(1)) / 1000)
    if m := _SLOW_RE.fullmatch(model):
        return _Plan(delay=int(m.group(1)) / 1000)
    if m := _DRIP_RE.fullmatch(model):
        return _Plan(drip=int(m.group(1)) / 1000)
    return _Plan()


@dataclass
class _Reply:
    """A fully computed reply, rendered later into either wire format and stream or not."""

    n: int
    model: str
    prompt_tokens: int
    finish: Finish
    pieces: list[str] = field(default_factory=list)
    tool_name: str | None = None

    @property
    def text(self) -> str:
        """The whole content (text, or the tool input JSON)."""
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        """Words in the reply."""
        return len(self.text.split())


# ---------------------------------------------------------------------------------------------
# Request helpers
# ---------------------------------------------------------------------------------------------


def _text_of(content: Any, *, tool_results: bool) -> str:
    """Concatenate the text inside a message content (string or list of parts/blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [_text_of(item, tool_results=tool_results) for item in content]
        return " ".join(p for p in parts if p)
    if isinstance(content, dict):
        if content.get("type") == "tool_result":
            return _text_of(content.get("content"), tool_results=True) if tool_results else ""
        text = content.get("text")
        if isinstance(text, str):
            return text
    return ""


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The well-formed messages of a request body."""
    raw = body.get("messages")
    if not isinstance(raw, list):
        return []
    return [m for m in raw if isinstance(m, dict)]


def _prompt_words(body: dict[str, Any], wire: Wire) -> int:
    """Whitespace-separated words across all message text (and the Anthropic system prompt)."""
    texts = [_text_of(m.get("content"), tool_results=True) for m in _messages(body)]
    if wire == "anthropic":
        texts.append(_text_of(body.get("system"), tool_results=True))
    return max(1, sum(len(t.split()) for t in texts))


def _last_user_text(messages: Sequence[dict[str, Any]]) -> str:
    """Text of the last user message that has any (tool results do not count)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            text = _text_of(message.get("content"), tool_results=False)
            if text.strip():
                return text
    return ""


def _wants_tool(messages: Sequence[dict[str, Any]]) -> bool:
    """Whether the final message is a plain user turn mentioning the weather."""
    if not messages or messages[-1].get("role") != "user":
        return False
    content = messages[-1].get("content")
    if isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    ):
        return False
    return bool(_WEATHER_RE.search(_text_of(content, tool_results=False)))


def _first_tool_name(tools: Any) -> str | None:
    """Name of the first tool of an OpenAI or Anthropic ``tools`` list, if any."""
    if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
        return None
    tool: dict[str, Any] = tools[0]
    function = tool.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return str(function["name"])
    name = tool.get("name")
    return name if isinstance(name, str) else "tool"


def _int_field(body: dict[str, Any], *names: str) -> int | None:
    """The first of ``names`` holding an integer."""
    for name in names:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _word_pieces(words: Sequence[str]) -> list[str]:
    """Stream pieces: one per word, each but the first carrying its leading space."""
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def _embedding(seed: str) -> list[float]:
    """Eight deterministic floats in [-1, 1) derived from a hash of ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    return [round(v / 2**31 - 1.0, 6) for v in struct.unpack("<8I", digest)]


def _dumps(obj: Any) -> str:
    """Compact JSON."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event."""
    payload = data if isinstance(data, str) else _dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _error(
    wire: Wire, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An error response in the endpoint's wire format."""
    default = ("server_error", "server_error", "api_error")
    if status < 500:
        default = ("invalid_request_error", "invalid_request_error", "invalid_request_error")
    openai_type, openai_code, anthropic_type = _ERROR_KINDS.get(status, default)
    body: dict[str, Any]
    if wire == "openai":
        body = {
            "error": {"message": message, "type": openai_type, "param": None, "code": openai_code}
        }
    else:
        body = {"type": "error", "error": {"type": anthropic_type, "message": message}}
    return web.json_response(body, status=status, headers=headers)


def _stream_error(wire: Wire, message: str) -> bytes:
    """An error event in the endpoint's streaming format."""
    if wire == "openai":
        return _sse({"error": {"message": message, "type": "invalid_request_error"}})
    error = {"type": "error", "error": {"type": "authentication_error", "message": message}}
    return _sse(error, "error")


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _openai_message(reply: _Reply) -> dict[str, Any]:
    """The assistant message of a non-streaming chat completion."""
    if reply.tool_name is not None:
        call = {
            "id": f"call_mock_{reply.n}",
            "type": "function",
            "function": {"name": reply.tool_name, "arguments": reply.text},
        }
        return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
    return {"role": "assistant", "content": reply.text, "refusal": None}


def _openai_usage(reply: _Reply) -> dict[str, int]:
    """OpenAI usage block."""
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _openai_completion(reply: _Reply) -> dict[str, Any]:
    """A non-streaming chat completion."""
    return {
        "id": f"chatcmpl-mock-{reply.n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "system_fingerprint": "fp_mock",
        "choices": [
            {
                "index": 0,
                "message": _openai_message(reply),
                "logprobs": None,
                "finish_reason": _OPENAI_FINISH[reply.finish],
            }
        ],
        "usage": _openai_usage(reply),
    }


def _openai_events(reply: _Reply, include_usage: bool) -> list[tuple[bytes, bool]]:
    """Chat completion chunks as (SSE bytes, is-content) pairs, ending with ``[DONE]``."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": f"chatcmpl-mock-{reply.n}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            obj["usage"] = None
        return _sse(obj)

    events: list[tuple[bytes, bool]] = []
    if reply.tool_name is not None:
        call = {
            "index": 0,
            "id": f"call_mock_{reply.n}",
            "type": "function",
            "function": {"name": reply.tool_name, "arguments": ""},
        }
        events.append((chunk({"role": "assistant", "content": None, "tool_calls": [call]}), False))
        for piece in reply.pieces:
            delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            events.append((chunk(delta), True))
    else:
        events.append((chunk({"role": "assistant", "content": ""}), False))
        events.extend((chunk({"content": piece}), True) for piece in reply.pieces)
    events.append((chunk({}, _OPENAI_FINISH[reply.finish]), False))
    if include_usage:
        final = {
            "id": f"chatcmpl-mock-{reply.n}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "system_fingerprint": "fp_mock",
            "choices": [],
            "usage": _openai_usage(reply),
        }
        events.append((_sse(final), False))
    events.append((_sse("[DONE]"), False))
    return events


def _anthropic_message(reply: _Reply) -> dict[str, Any]:
    """A non-streaming Anthropic message."""
    block: dict[str, Any]
    if reply.tool_name is not None:
        block = {
            "type": "tool_use",
            "id": f"toolu_mock_{reply.n}",
            "name": reply.tool_name,
            "input": dict(_TOOL_INPUT),
        }
    else:
        block = {"type": "text", "text": reply.text}
    return {
        "id": f"msg_mock_{reply.n}",
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [block],
        "stop_reason": _ANTHROPIC_STOP[reply.finish],
        "stop_sequence": None,
        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
    }


def _anthropic_events(reply: _Reply) -> list[tuple[bytes, bool]]:
    """Anthropic stream events as (SSE bytes, is-content) pairs, ending with ``message_stop``."""

    def event(obj: dict[str, Any]) -> bytes:
        return _sse(obj, event=str(obj["type"]))

    start = _anthropic_message(reply)
    start.update(content=[], stop_reason=None)
    start["usage"] = {"input_tokens": reply.prompt_tokens, "output_tokens": 1}
    block: dict[str, Any]
    if reply.tool_name is not None:
        block = {
            "type": "tool_use",
            "id": f"toolu_mock_{reply.n}",
            "name": reply.tool_name,
            "input": {},
        }
    else:
        block = {"type": "text", "text": ""}
    events: list[tuple[bytes, bool]] = [
        (event({"type": "message_start", "message": start}), False),
        (event({"type": "content_block_start", "index": 0, "content_block": block}), False),
    ]
    for piece in reply.pieces:
        delta = (
            {"type": "input_json_delta", "partial_json": piece}
            if reply.tool_name is not None
            else {"type": "text_delta", "text": piece}
        )
        events.append((event({"type": "content_block_delta", "index": 0, "delta": delta}), True))
    stop = {"stop_reason": _ANTHROPIC_STOP[reply.finish], "stop_sequence": None}
    events += [
        (event({"type": "content_block_stop", "index": 0}), False),
        (
            event(
                {
                    "type": "message_delta",
                    "delta": stop,
                    "usage": {"output_tokens": reply.completion_tokens},
                }
            ),
            False,
        ),
        (event({"type": "message_stop"}), False),
    ]
    return events


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------


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

    async def _abort(self, request: web.Request) -> None:
        """Drop the TCP connection without a (further) response."""
        transport = request.transport
        if transport is not None:
            # Let already-written bytes reach the socket before the hard close.
            for _ in range(100):
                if transport.get_write_buffer_size() == 0:
                    break
                await asyncio.sleep(0.01)
            transport.abort()
        # The handler is cancelled once aiohttp notices the lost connection.
        await asyncio.sleep(5)

    async def _hang(self, request: web.Request) -> None:
        """Never answer: wait until the client disconnects or the server stops."""
        while not self._stopping:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(0.05)
        await self._abort(request)  # server stopping: still never send a response

    async def _fault(
        self, request: web.Request, wire: Wire, model: str, stream: bool
    ) -> tuple[_Plan, web.StreamResponse | None]:
        """Apply the model's directive; a response means the request is fully handled."""
        plan = _parse_directive(model)
        if plan.kind == "fail":
            headers = {"retry-after": "1"} if plan.status == 429 else None
            message = f"mock upstream: injected HTTP {plan.status} for model {model!r}"
            if plan.status == 429:
                message = f"mock upstream: rate limit exceeded for model {model!r}"
            return plan, _error(wire, plan.status, message, headers)
        if plan.kind == "flaky":
            with self._lock:
                seen = self._flaky_counts.get(model, 0)
                self._flaky_counts[model] = seen + 1
            if seen < plan.flaky:
                msg = f"mock upstream: flaky failure {seen + 1}/{plan.flaky} for model {model!r}"
                return plan, _error(wire, 503, msg)
            return plan, None
        if plan.kind == "hang":
            await self._hang(request)
            return plan, web.Response(status=504)
        if plan.kind == "reset" or (plan.kind == "cut-stream" and not stream):
            await self._abort(request)
            return plan, web.Response(status=500)
        if plan.kind in ("echo-key", "echo-key-stream"):
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            credential = bearer or request.headers.get("x-api-key", "")
            echoed = f"mock upstream: incorrect API key provided: {credential}"
            if plan.kind == "echo-key" or not stream:
                return plan, _error(wire, 401, echoed)
            return plan, await self._stream(request, plan, [(_stream_error(wire, echoed), False)])
        if plan.kind == "bad-json":
            return plan, web.Response(status=200, body=_BAD_JSON, content_type="application/json")
        if plan.delay or (plan.first_delay and not stream):
            await asyncio.sleep(plan.delay or plan.first_delay)
        return plan, None

    async def _stream(
        self, request: web.Request, plan: _Plan, events: list[tuple[bytes, bool]]
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
            await self._abort(request)
            return response
        await response.write_eof()
        return response

    def _build_reply(self, body: dict[str, Any], wire: Wire) -> _Reply:
        """Compute the deterministic reply to a chat/messages request."""
        messages = _messages(body)
        model = body.get("model")
        reply = _Reply(
            n=next(self._ids),
            model=model if isinstance(model, str) else "",
            prompt_tokens=_prompt_words(body, wire),
            finish="stop",
        )
        tool_name = _first_tool_name(body.get("tools"))
        if tool_name is not None and _wants_tool(messages):
            reply.tool_name = tool_name
            reply.pieces = _word_pieces(json.dumps(_TOOL_INPUT).split())
            reply.finish = "tool"
            return reply
        snippet = " ".join(_last_user_text(messages).split())[:40].strip()
        words = f"mock reply to: {snippet}".split()
        if wire == "openai":
            limit = _int_field(body, "max_completion_tokens", "max_tokens")
        else:
            limit = _int_field(body, "max_tokens")
        if limit is not None and limit < len(words):
            words = words[: max(0, limit)]
            reply.finish = "length"
        reply.pieces = _word_pieces(words)
        return reply

    # -- handlers -------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions."""
        body = await self._record(request)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error("openai", 400, "request body must be a JSON object with 'messages'")
        model = str(body.get("model", ""))
        stream = body.get("stream") is True
        plan, done = await self._fault(request, "openai", model, stream)
        if done is not None:
            return done
        reply = self._build_reply(body, "openai")
        if not stream:
            return web.json_response(_openai_completion(reply))
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return await self._stream(request, plan, _openai_events(reply, include_usage))

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/messages."""
        body = await self._record(request)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error("anthropic", 400, "request body must be a JSON object with 'messages'")
        model = str(body.get("model", ""))
        stream = body.get("stream") is True
        plan, done = await self._fault(request, "anthropic", model, stream)
        if done is not None:
            return done
        reply = self._build_reply(body, "anthropic")
        if not stream:
            return web.json_response(_anthropic_message(reply))
        return await self._stream(request, plan, _anthropic_events(reply))

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/embeddings."""
        body = await self._record(request)
        if not isinstance(body, dict):
            return _error("openai", 400, "request body must be a JSON object")
        model = str(body.get("model", ""))
        _, done = await self._fault(request, "openai", model, False)
        if done is not None:
            return done
        raw = body.get("input")
        inputs: list[Any]
        if isinstance(raw, str) or (
            isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)
        ):
            inputs = [raw]
        elif isinstance(raw, list) and raw:
            inputs = raw
        else:
            return _error("openai", 400, "'input' must be a string or a non-empty list")
        as_base64 = body.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        tokens = 0
        for index, item in enumerate(inputs):
            if isinstance(item, str):
                seed, tokens = item, tokens + len(item.split())
            elif isinstance(item, list) and all(isinstance(t, int) for t in item):
                seed, tokens = _dumps(item), tokens + len(item)
            else:
                return _error("openai", 400, f"input[{index}] must be a string or token list")
            vector = _embedding(seed)
            embedding: Any = vector
            if as_base64:
                embedding = base64.b64encode(struct.pack("<8f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = max(1, tokens)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

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
        return _error("openai", 404, f"mock upstream: no route for {request.method} {request.path}")


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
