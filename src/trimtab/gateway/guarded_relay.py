"""A streamed answer's output checks on the data plane (docs/guardrails.md, "Streams"): the
relay that checks, and rewrites, the provider's text deltas before the inner relay
translates them for the client. Split from gateway/guarding.py, whose Guard it reports to."""

from __future__ import annotations

from typing import Any

import orjson

from trimtab.gateway.guarding import Guard, blocked_error
from trimtab.gateway.relay import Relay
from trimtab.guardrails.stream import GuardrailBlocked, OutputStream
from trimtab.providers.base import SSEEvent
from trimtab.types import Wire

JSON = dict[str, Any]
_Key = int | tuple[int, int]  # a choice's or block's text: its index; a tool call's: (choice, call)


class GuardedRelay(Relay):
    """A relay whose provider events have their text deltas checked (and rewritten) before
    the inner relay translates and forwards them; held text is released before the event
    that ends its choice or block. A block raises GatewayError: before the first token the
    client gets an error response, after it the stream's error event."""

    def __init__(self, inner: Relay, provider: Wire, guard: Guard) -> None:
        super().__init__(inner.provider, _NoAccumulator())
        self._inner = inner
        self._provider_wire = provider
        self._guard = guard
        # a choice's or block's text: its index; an OpenAI tool call's: (choice, call)
        self._streams: dict[_Key, OutputStream] = {}
        self._json_blocks: set[int] = set()  # Anthropic blocks streaming a tool's input
        self._last: JSON = {}  # the last OpenAI chunk, to shape a flushing one like it

    def _stream(self, key: _Key, label: str | None = None) -> OutputStream:
        s = self._streams.get(key)
        if s is None:
            policy, redactor = self._guard.policy, self._guard.redactor
            s = OutputStream(policy, redactor, label, schema=label is None)
            self._streams[key] = s
            self._guard.streams.append(s)
        return s

    def feed(self, event: SSEEvent) -> bytes:
        try:
            if self._provider_wire == "openai":
                events = self._openai(event)
            else:
                events = self._anthropic(event)
        except GuardrailBlocked as blocked:
            self.done = True
            raise blocked_error(blocked.verdict, 422) from None
        out = b"".join(self._inner.feed(e) for e in events)
        self.done, self.token_seen = self._inner.done, self._inner.token_seen
        return out

    def _openai(self, event: SSEEvent) -> list[SSEEvent]:
        if event.data == b"[DONE]":
            return [*self._flush_openai(), event]
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return [event]  # the inner relay reports the provider's garbage
        if not isinstance(chunk, dict) or not chunk.get("choices"):
            if isinstance(chunk, dict) and chunk.get("usage"):
                return [*self._flush_openai(), event]  # the usage chunk follows the text
            return [event]
        self._last = chunk
        changed = False
        for choice in chunk["choices"]:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            index = index if isinstance(index, int) else 0
            delta = choice.get("delta")
            s = self._stream(index)
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(delta, dict) and delta.get("tool_calls"):
                changed = self._openai_tool_deltas(index, delta["tool_calls"]) or changed
            if isinstance(text, str) and isinstance(delta, dict):
                sent = s.feed(text)
                if choice.get("finish_reason"):
                    sent += s.finish()
                    self._streams.pop(index, None)
                if sent != text:
                    delta["content"] = sent
                    changed = True
            elif choice.get("finish_reason"):
                rest = s.finish()
                self._streams.pop(index, None)
                if rest:
                    kept = delta if isinstance(delta, dict) else {}
                    choice["delta"] = {**kept, "content": rest}
                    changed = True
            if choice.get("finish_reason") and self._tools_open(index):
                calls = self._finish_tools(index)
                if calls:
                    delta = choice.get("delta")
                    kept = delta if isinstance(delta, dict) else {}
                    choice["delta"] = {**kept, "tool_calls": [*kept.get("tool_calls", ()), *calls]}
                    changed = True
        if not changed:
            return [event]
        return [SSEEvent(event.event, orjson.dumps(chunk))]

    def _openai_tool_deltas(self, index: int, calls: Any) -> bool:
        """Each tool call's arguments delta through its own stream; True if one changed."""
        changed = False
        for k, call in enumerate(calls if isinstance(calls, list) else ()):
            function = call.get("function") if isinstance(call, dict) else None
            piece = function.get("arguments") if isinstance(function, dict) else None
            if not isinstance(piece, str) or not isinstance(function, dict):
                continue
            at = call.get("index", k)
            at = at if isinstance(at, int) else k
            label = f"choices[{index}].message.tool_calls[{at}].function.arguments"
            sent = self._stream((index, at), label).feed(piece)
            if sent != piece:
                function["arguments"] = sent
                changed = True
        return changed

    def _tools_open(self, index: int) -> bool:
        return any(isinstance(key, tuple) and key[0] == index for key in self._streams)

    def _finish_tools(self, index: int) -> list[JSON]:
        """The held arguments of a choice's tool calls, as tool-call deltas."""
        calls: list[JSON] = []
        for key in [k for k in self._streams if isinstance(k, tuple) and k[0] == index]:
            rest = self._streams.pop(key).finish()
            if rest:
                calls.append({"index": key[1], "function": {"arguments": rest}})
        return calls

    def _flush_openai(self) -> list[SSEEvent]:
        out = []
        for index in sorted({k[0] if isinstance(k, tuple) else k for k in self._streams}):
            delta: JSON = {}
            s = self._streams.pop(index, None)
            rest = s.finish() if s is not None else ""
            if rest:
                delta["content"] = rest
            calls = self._finish_tools(index)
            if calls:
                delta["tool_calls"] = calls
            if delta:
                chunk = {
                    "id": self._last.get("id"),
                    "object": "chat.completion.chunk",
                    "created": self._last.get("created", 0),
                    "model": self._last.get("model"),
                    "choices": [{"index": index, "delta": delta, "finish_reason": None}],
                }
                out.append(SSEEvent(None, orjson.dumps(chunk)))
        return out

    def _anthropic(self, event: SSEEvent) -> list[SSEEvent]:
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return [event]
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "content_block_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                return [event]
            kind, field = delta.get("type"), "text"
            if kind == "input_json_delta":  # a tool's input, streamed as JSON text
                field = "partial_json"
            elif kind != "text_delta":
                return [event]
            text = delta.get(field)
            if isinstance(text, str):
                index = int(data.get("index") or 0)
                label = None
                if field == "partial_json":
                    self._json_blocks.add(index)
                    label = f"content[{index}].input"
                sent = self._stream(index, label).feed(text)
                if sent != text:
                    delta[field] = sent
                    return [SSEEvent(event.event, orjson.dumps(data))]
            return [event]
        if kind == "content_block_stop":
            index = int(data.get("index") or 0)
            s = self._streams.pop(index, None)
            rest = s.finish() if s is not None else ""
            if rest:
                return [self._anthropic_flush(index, rest), event]
            return [event]
        if kind in ("message_delta", "message_stop"):
            out = []
            for key, s in list(self._streams.items()):
                rest = s.finish()
                del self._streams[key]
                if rest and isinstance(key, int):
                    out.append(self._anthropic_flush(key, rest))
            return [*out, event]
        return [event]

    def _anthropic_flush(self, index: int, rest: str) -> SSEEvent:
        """The held text of a block, as the delta its block streams."""
        if index in self._json_blocks:
            delta = {"type": "input_json_delta", "partial_json": rest}
        else:
            delta = {"type": "text_delta", "text": rest}
        flush = {"type": "content_block_delta", "index": index, "delta": delta}
        return SSEEvent("content_block_delta", orjson.dumps(flush))

    def usage(self) -> tuple[int | None, int | None]:
        return self._inner.usage()

    def finish_reasons(self) -> list[str] | None:
        return self._inner.finish_reasons()

    def response(self) -> JSON:
        return self._inner.response()

    def response_meta(self) -> tuple[str | None, str | None]:
        return self._inner.response_meta()


class _NoAccumulator:
    """The guarded relay keeps nothing itself: its inner relay accumulates."""

    def add(self, item: JSON) -> None:
        return None

    response_id = None
    response_model = None
    input_tokens = None
    output_tokens = None

    @property
    def finish_reasons(self) -> list[str]:
        return []

    def result(self) -> JSON:
        return {}
