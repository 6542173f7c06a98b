"""Accumulators that rebuild a final response and its usage from a stream of parsed events."""

from __future__ import annotations

from typing import Any

import orjson

from trimtab.providers.translate import JSON, anthropic_input_tokens

# Anthropic delta type -> the key holding its fragment, and the block type it belongs to.
_DELTA_PAYLOAD = {
    "text_delta": "text",
    "input_json_delta": "partial_json",
    "thinking_delta": "thinking",
}
_DELTA_BLOCK_TYPE = {
    "text_delta": "text",
    "input_json_delta": "tool_use",
    "thinking_delta": "thinking",
}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _ToolCall:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self, call_id: str | None) -> None:
        self.id = call_id
        self.type = "function"
        self.name = ""
        self.arguments: list[str] = []


class _Choice:
    __slots__ = ("content", "finish_reason", "refusal", "role", "tool_calls", "tools_by_index")

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: list[_ToolCall] = []
        self.tools_by_index: dict[int, _ToolCall] = {}
        self.finish_reason: str | None = None

    def add_tool_fragment(self, fragment: JSON) -> None:
        index = fragment.get("index", 0)
        call_id = fragment.get("id")
        call = self.tools_by_index.get(index)
        # Same rule as the stream translator: a new id at a known index is a new call.
        if call is None or (call_id and call.id and call_id != call.id):
            call = _ToolCall(call_id)
            self.tool_calls.append(call)
            self.tools_by_index[index] = call
        elif call_id and not call.id:
            call.id = call_id
        if fragment.get("type"):
            call.type = fragment["type"]
        fn = fragment.get("function")
        if fn:
            if fn.get("name") and not call.name:
                call.name = fn["name"]
            if fn.get("arguments"):
                call.arguments.append(fn["arguments"])

    def message(self) -> JSON:
        text = "".join(self.content)
        message: JSON = {
            "role": self.role,
            "content": text if text or (self.content and not self.tool_calls) else None,
            "refusal": "".join(self.refusal) if self.refusal else None,
        }
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": call.type,
                    "function": {"name": call.name, "arguments": "".join(call.arguments)},
                }
                for call in self.tool_calls
            ]
        return message


class OpenAIStreamAccumulator:
    """Rebuilds a chat.completion object from OpenAI chat.completion.chunk dicts."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._created: int | None = None
        self._choices: dict[int, _Choice] = {}
        self._usage: JSON | None = None

    @property
    def response_id(self) -> str | None:
        """The upstream completion id, once seen."""
        return self._id

    @property
    def response_model(self) -> str | None:
        """The model the upstream reported, once seen."""
        return self._model

    @property
    def input_tokens(self) -> int | None:
        """Prompt tokens from the usage chunk; None until one is seen."""
        return _int(self._usage.get("prompt_tokens")) if self._usage else None

    @property
    def output_tokens(self) -> int | None:
        """Completion tokens from the usage chunk; None until one is seen."""
        return _int(self._usage.get("completion_tokens")) if self._usage else None

    @property
    def finish_reasons(self) -> list[str]:
        """Finish reasons seen so far, in choice order."""
        return [
            reason
            for _, choice in sorted(self._choices.items())
            if (reason := choice.finish_reason) is not None
        ]

    def add(self, chunk: JSON) -> None:
        """Fold one chunk into the accumulated response."""
        if self._id is None:
            self._id = chunk.get("id")
            self._created = chunk.get("created")
        if self._model is None:
            self._model = chunk.get("model")
        usage = chunk.get("usage")
        if usage:
            self._usage = usage
        for raw in chunk.get("choices") or ():
            index = raw.get("index", 0)
            choice = self._choices.get(index)
            if choice is None:
                choice = self._choices[index] = _Choice()
            delta = raw.get("delta")
            if delta:
                content = delta.get("content")
                if isinstance(content, str):
                    choice.content.append(content)
                refusal = delta.get("refusal")
                if refusal:
                    choice.refusal.append(refusal)
                for fragment in delta.get("tool_calls") or ():
                    choice.add_tool_fragment(fragment)
                if delta.get("role"):
                    choice.role = delta["role"]
            if raw.get("finish_reason"):
                choice.finish_reason = raw["finish_reason"]

    def result(self) -> JSON:
        """The chat.completion-shaped response accumulated so far."""
        out: JSON = {
            "id": self._id,
            "object": "chat.completion",
            "created": self._created,
            "model": self._model,
            "choices": [
                {
                    "index": index,
                    "message": choice.message(),
                    "logprobs": None,
                    "finish_reason": choice.finish_reason,
                }
                for index, choice in sorted(self._choices.items())
            ],
        }
        if self._usage is not None:
            out["usage"] = self._usage
        return out


class AnthropicStreamAccumulator:
    """Rebuilds an Anthropic Message from Messages stream events."""

    def __init__(self) -> None:
        self._message: JSON = {}
        self._usage: JSON = {}
        self._blocks: dict[int, JSON] = {}
        self._fragments: dict[int, list[str]] = {}
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._error: JSON | None = None

    @property
    def response_id(self) -> str | None:
        """The upstream message id, once seen."""
        return self._message.get("id")

    @property
    def response_model(self) -> str | None:
        """The model the upstream reported, once seen."""
        return self._message.get("model")

    @property
    def input_tokens(self) -> int | None:
        """Input tokens including cache reads/writes; None until reported."""
        return anthropic_input_tokens(self._usage)

    @property
    def output_tokens(self) -> int | None:
        """Output tokens reported so far; None until reported."""
        return _int(self._usage.get("output_tokens"))

    @property
    def finish_reasons(self) -> list[str]:
        """The stop_reason as a one-element list, or empty until known."""
        return [self._stop_reason] if self._stop_reason else []

    @property
    def error(self) -> JSON | None:
        """The error object of an in-stream error event, if one arrived."""
        return self._error

    def add(self, event: JSON) -> None:
        """Fold one stream event into the accumulated message."""
        etype = event.get("type")
        if etype == "content_block_delta":
            self._add_delta(event.get("index", 0), event.get("delta") or {})
        elif etype == "content_block_start":
            block = event.get("content_block")
            if isinstance(block, dict):
                self._blocks[event.get("index", 0)] = dict(block)
        elif etype == "message_start":
            message = event.get("message") or {}
            self._message = message
            usage = message.get("usage")
            if isinstance(usage, dict):
                self._usage = dict(usage)
        elif etype == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason"):
                self._stop_reason = delta["stop_reason"]
                self._stop_sequence = delta.get("stop_sequence")
            usage = event.get("usage")
            if isinstance(usage, dict):
                # Cumulative counts; nulls mean "not reported here", not zero.
                self._usage.update((k, v) for k, v in usage.items() if v is not None)
        elif etype == "error":
            error = event.get("error")
            self._error = error if isinstance(error, dict) else {"message": str(error)}

    def _add_delta(self, index: int, delta: JSON) -> None:
        dtype: str = delta.get("type") or ""
        payload_key = _DELTA_PAYLOAD.get(dtype)
        if payload_key is not None:
            fragments = self._fragments.get(index)
            if fragments is None:
                fragments = self._fragments[index] = []
                if index not in self._blocks:  # delta without a start: infer the block
                    self._blocks[index] = {"type": _DELTA_BLOCK_TYPE[dtype]}
            piece = delta.get(payload_key)
            if piece:
                fragments.append(piece)
        elif dtype == "signature_delta":
            self._blocks.setdefault(index, {"type": "thinking"})["signature"] = delta.get(
                "signature"
            )
        elif dtype == "citations_delta":
            block = self._blocks.setdefault(index, {"type": "text"})
            block["citations"] = [*block.get("citations", ()), delta.get("citation")]

    def result(self) -> JSON:
        """The Message-shaped response accumulated so far."""
        content: list[JSON] = []
        for index in sorted(self._blocks):
            block = dict(self._blocks[index])
            fragments = self._fragments.get(index)
            btype = block.get("type")
            if btype in ("tool_use", "server_tool_use"):
                # The start event carries an empty input; the streamed JSON is the whole input.
                joined = "".join(fragments) if fragments else ""
                block["input"] = _json_or_raw(joined) if joined else block.get("input") or {}
            elif fragments:
                field = "thinking" if btype == "thinking" else "text"
                block[field] = (block.get(field) or "") + "".join(fragments)
            content.append(block)
        return {
            "id": self._message.get("id"),
            "type": "message",
            "role": self._message.get("role", "assistant"),
            "model": self._message.get("model"),
            "content": content,
            "stop_reason": self._stop_reason,
            "stop_sequence": self._stop_sequence,
            "usage": dict(self._usage),
        }


def _json_or_raw(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
