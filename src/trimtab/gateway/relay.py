"""Streaming relays: provider events in, client SSE bytes out, usage and body on the side.

One relay per (client wire, provider wire) pair. Same-format relays forward the provider's
bytes untouched (except the usage chunk the client did not ask for); the others translate.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson

from trimtab.providers.accumulate import AnthropicStreamAccumulator, OpenAIStreamAccumulator
from trimtab.providers.base import SSEEvent, UpstreamError
from trimtab.providers.sse import encode_data, encode_event
from trimtab.providers.stream_translate import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    UpstreamStreamError,
)
from trimtab.types import Wire

JSON = dict[str, Any]
_DONE = b"[DONE]"


class _Accumulator(Protocol):
    """A stream accumulator as a relay uses it (providers/accumulate.py)."""

    def add(self, item: JSON) -> None: ...

    @property
    def response_id(self) -> str | None: ...
    @property
    def response_model(self) -> str | None: ...
    @property
    def input_tokens(self) -> int | None: ...
    @property
    def output_tokens(self) -> int | None: ...
    @property
    def finish_reasons(self) -> list[str]: ...
    def result(self) -> JSON: ...


class Relay:
    """Common state: whether the provider finished, and whether a token went out.

    `acc` rebuilds the response the client receives; `upstream` the provider's own
    stream (the same accumulator when no translation happens). The accessors read
    usage, finish reasons, id and model from `upstream`; a translating relay takes
    usage and finish reasons from its translator instead.
    """

    def __init__(
        self, provider: str, acc: _Accumulator, upstream: _Accumulator | None = None
    ) -> None:
        self.provider = provider
        self.done = False
        self.token_seen = False
        self._acc = acc
        self._upstream = acc if upstream is None else upstream

    def _load(self, data: bytes) -> JSON:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                "invalid_response",
                f"provider '{self.provider}' sent a stream event that is not valid JSON: {exc}",
            ) from None
        if not isinstance(value, dict):
            raise UpstreamError(
                "invalid_response", f"provider '{self.provider}' sent a non-object stream event"
            )
        return value

    def _provider_error(self, message: str) -> UpstreamError:
        return UpstreamError(
            "status", f"provider '{self.provider}' failed mid-stream: {message}", status=502
        )

    def feed(self, event: SSEEvent) -> bytes:
        raise NotImplementedError

    def usage(self) -> tuple[int | None, int | None]:
        """(input tokens, output tokens) as the provider reported them."""
        return self._upstream.input_tokens, self._upstream.output_tokens

    def finish_reasons(self) -> list[str] | None:
        """The provider's own finish reasons (its word, as on the non-stream path)."""
        return self._upstream.finish_reasons or None

    def response(self) -> JSON:
        """The streamed response reassembled, in the client's wire format."""
        return self._acc.result()

    def response_meta(self) -> tuple[str | None, str | None]:
        """(response id, response model) as the provider reported them."""
        return self._upstream.response_id, self._upstream.response_model


def _openai_has_token(chunk: JSON) -> bool:
    choices = chunk.get("choices")
    if not choices:
        return False
    delta = choices[0].get("delta") if isinstance(choices[0], dict) else None
    return isinstance(delta, dict) and bool(delta.get("content") or delta.get("tool_calls"))


def _openai_error(chunk: JSON) -> str | None:
    err = chunk.get("error")
    if err is None:
        return None
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err)


class OpenAIRelay(Relay):
    """OpenAI client, OpenAI-wire provider."""

    def __init__(self, provider: str, client_wants_usage: bool) -> None:
        super().__init__(provider, OpenAIStreamAccumulator())
        self._wants_usage = client_wants_usage

    def feed(self, event: SSEEvent) -> bytes:
        if event.data == _DONE:
            self.done = True
            return encode_data(_DONE)
        chunk = self._load(event.data)
        message = _openai_error(chunk)
        if message is not None:
            raise self._provider_error(message)
        self._acc.add(chunk)
        if not self.token_seen and _openai_has_token(chunk):
            self.token_seen = True
        if not self._wants_usage and not chunk.get("choices") and chunk.get("usage"):
            return b""  # asked upstream for our own accounting; the client did not want it
        return encode_data(event.data)


class AnthropicRelay(Relay):
    """Anthropic client, Anthropic provider."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider, AnthropicStreamAccumulator())

    def feed(self, event: SSEEvent) -> bytes:
        data = self._load(event.data)
        kind = data.get("type")
        if kind == "error":
            err = data.get("error")
            raise self._provider_error(
                str(err.get("message")) if isinstance(err, dict) else str(err)
            )
        self._acc.add(data)
        if kind == "content_block_delta":
            self.token_seen = True
        elif kind == "message_stop":
            self.done = True
        return encode_event(event.event or str(kind), event.data)


class AnthropicToOpenAIRelay(Relay):
    """OpenAI client, Anthropic provider."""

    def __init__(self, provider: str, model: str, client_wants_usage: bool) -> None:
        super().__init__(provider, OpenAIStreamAccumulator(), AnthropicStreamAccumulator())
        self._tr = AnthropicToOpenAIStream(model, int(time.time()), client_wants_usage)

    def feed(self, event: SSEEvent) -> bytes:
        data = self._load(event.data)
        try:
            chunks = self._tr.feed(data)
        except UpstreamStreamError as exc:
            raise self._provider_error(str(exc)) from None
        self._upstream.add(data)
        out = []
        for chunk in chunks:
            self._acc.add(chunk)
            if not self.token_seen and _openai_has_token(chunk):
                self.token_seen = True
            out.append(encode_data(orjson.dumps(chunk)))
        if data.get("type") == "message_stop":
            self.done = True
            out.append(encode_data(_DONE))
        return b"".join(out)

    def usage(self) -> tuple[int | None, int | None]:
        return self._tr.input_tokens, self._tr.output_tokens

    def finish_reasons(self) -> list[str] | None:
        reason = self._tr.stop_reason  # the provider's own word, as on the non-stream path
        return [reason] if reason else None


class OpenAIToAnthropicRelay(Relay):
    """Anthropic client, OpenAI-wire provider."""

    def __init__(self, provider: str, model: str, message_id: str) -> None:
        super().__init__(provider, AnthropicStreamAccumulator(), OpenAIStreamAccumulator())
        self._tr = OpenAIToAnthropicStream(model, message_id)

    def _emit(self, events: list[tuple[str, JSON]]) -> bytes:
        out = []
        for name, data in events:
            self._acc.add(data)
            if name == "content_block_delta":
                self.token_seen = True
            out.append(encode_event(name, orjson.dumps(data)))
        return b"".join(out)

    def feed(self, event: SSEEvent) -> bytes:
        if event.data == _DONE:
            self.done = True
            return self._emit(self._tr.finish())
        chunk = self._load(event.data)
        message = _openai_error(chunk)
        if message is not None:
            raise self._provider_error(message)
        self._upstream.add(chunk)
        return self._emit(self._tr.feed(chunk))

    def usage(self) -> tuple[int | None, int | None]:
        return self._tr.input_tokens, self._tr.output_tokens

    def finish_reasons(self) -> list[str] | None:
        reason = self._tr.finish_reason
        return [reason] if reason else None


def make_relay(
    client: Wire, provider: Wire, provider_name: str, model: str, wants_usage: bool, rid: str
) -> Relay:
    if client == "openai":
        if provider == "openai":
            return OpenAIRelay(provider_name, wants_usage)
        return AnthropicToOpenAIRelay(provider_name, model, wants_usage)
    if provider == "anthropic":
        return AnthropicRelay(provider_name)
    return OpenAIToAnthropicRelay(provider_name, model, "msg_" + rid.removeprefix("req_"))
