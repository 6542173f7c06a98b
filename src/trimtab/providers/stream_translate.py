"""Stateful translators between Anthropic and OpenAI streaming events (already-parsed dicts)."""

from __future__ import annotations

from trimtab.providers.translate import (
    JSON,
    anthropic_input_tokens,
    finish_reason_from_stop_reason,
    openai_usage_from_anthropic,
    stop_reason_from_finish_reason,
)

Event = tuple[str, JSON]


class UpstreamStreamError(Exception):
    """An error event that arrived in the middle of an upstream stream."""

    def __init__(self, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


class AnthropicToOpenAIStream:
    """Turns Anthropic Messages stream events into OpenAI chat.completion.chunk dicts."""

    def __init__(self, model: str, created: int, include_usage: bool) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._id = "chatcmpl-"
        self._started = False
        self._finished = False
        self._usage: JSON = {}
        self._stop_reason: str | None = None
        self._tool_index: dict[int, int] = {}  # anthropic block index -> openai tool_calls index

    @property
    def input_tokens(self) -> int | None:
        """Input tokens including cache reads/writes, once reported."""
        return anthropic_input_tokens(self._usage)

    @property
    def output_tokens(self) -> int | None:
        """Output tokens reported so far (cumulative)."""
        value = self._usage.get("output_tokens")
        return value if isinstance(value, int) else None

    @property
    def stop_reason(self) -> str | None:
        """The upstream Anthropic stop_reason, once known."""
        return self._stop_reason

    @property
    def finish_reason(self) -> str | None:
        """The OpenAI finish_reason sent to the client, once known."""
        return finish_reason_from_stop_reason(self._stop_reason) if self._stop_reason else None

    def feed(self, event: JSON) -> list[JSON]:
        """Translate one Anthropic stream event into zero or more OpenAI chunks."""
        etype = event.get("type")
        if etype == "content_block_delta":
            return self._on_delta(event)
        if etype == "content_block_start":
            return self._on_block_start(event)
        if etype == "message_start":
            message = event.get("message") or {}
            self._id = f"chatcmpl-{message.get('id') or ''}"
            usage = message.get("usage")
            if isinstance(usage, dict):
                self._usage = dict(usage)
            return self._start()
        if etype == "message_delta":
            return self._on_message_delta(event)
        if etype == "message_stop":
            return self._on_message_stop()
        if etype == "error":
            error = event.get("error") or {}
            raise UpstreamStreamError(
                str(error.get("message") or "upstream stream error"), error.get("type")
            )
        return []  # ping, content_block_stop and unknown future events carry nothing for openai

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> JSON:
        chunk: JSON = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self._include_usage:
            chunk["usage"] = None  # openai sends an explicit null until the usage-only chunk
        return chunk

    def _start(self) -> list[JSON]:
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_delta(self, event: JSON) -> list[JSON]:
        out = self._start() if not self._started else []
        delta = event.get("delta") or {}
        dtype = delta.get("type")
        if dtype == "text_delta":
            text = delta.get("text")
            if text:
                out.append(self._chunk({"content": text}))
        elif dtype == "input_json_delta":
            partial = delta.get("partial_json")
            index = self._tool_index.get(event.get("index", 0))
            if partial and index is not None:
                call = {"index": index, "function": {"arguments": partial}}
                out.append(self._chunk({"tool_calls": [call]}))
        return out

    def _on_block_start(self, event: JSON) -> list[JSON]:
        out = self._start() if not self._started else []
        block = event.get("content_block") or {}
        btype = block.get("type")
        if btype == "tool_use":
            index = len(self._tool_index)
            self._tool_index[event.get("index", 0)] = index
            call = {
                "index": index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            out.append(self._chunk({"tool_calls": [call]}))
        elif btype == "text" and block.get("text"):
            out.append(self._chunk({"content": block["text"]}))
        return out

    def _on_message_delta(self, event: JSON) -> list[JSON]:
        out = self._start() if not self._started else []
        usage = event.get("usage")
        if isinstance(usage, dict):
            # message_delta usage is cumulative and may repeat input/cache counts; skip nulls.
            self._usage.update((k, v) for k, v in usage.items() if v is not None)
        stop_reason = (event.get("delta") or {}).get("stop_reason")
        if stop_reason:
            self._stop_reason = stop_reason
        if stop_reason and not self._finished:
            self._finished = True
            out.append(self._chunk({}, finish_reason_from_stop_reason(stop_reason)))
        return out

    def _on_message_stop(self) -> list[JSON]:
        out = self._start() if not self._started else []
        if not self._finished:  # never leave an openai client without a finish_reason
            self._finished = True
            out.append(self._chunk({}, finish_reason_from_stop_reason(self._stop_reason)))
        if self._include_usage:
            out.append(
                {
                    "id": self._id,
                    "object": "chat.completion.chunk",
                    "created": self._created,
                    "model": self._model,
                    "choices": [],
                    "usage": openai_usage_from_anthropic(self._usage),
                }
            )
        return out


class OpenAIToAnthropicStream:
    """Turns OpenAI chat.completion.chunk dicts into Anthropic (event, data) stream pairs."""

    def __init__(self, model: str, message_id: str) -> None:
        self._model = model
        self._message_id = message_id
        self._started = False
        self._finished = False
        self._block = -1  # index of the open content block
        self._block_kind: str | None = None  # "text" or "tool_use" while a block is open
        self._next_block = 0
        self._tools: dict[int, tuple[str, int]] = {}  # openai tool index -> (call id, block)
        self._finish_reason: str | None = None
        self._input_tokens: int | None = None
        self._output_tokens: int | None = None

    @property
    def input_tokens(self) -> int | None:
        """Prompt tokens from the upstream usage chunk, once seen."""
        return self._input_tokens

    @property
    def output_tokens(self) -> int | None:
        """Completion tokens from the upstream usage chunk, once seen."""
        return self._output_tokens

    @property
    def finish_reason(self) -> str | None:
        """The upstream OpenAI finish_reason, once known."""
        return self._finish_reason

    @property
    def stop_reason(self) -> str | None:
        """The Anthropic stop_reason sent to the client, once known."""
        if self._finish_reason is None:
            return None
        return stop_reason_from_finish_reason(self._finish_reason)

    def feed(self, chunk: JSON) -> list[Event]:
        """Translate one OpenAI chunk into zero or more Anthropic stream events."""
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._input_tokens = usage.get("prompt_tokens", self._input_tokens)
            self._output_tokens = usage.get("completion_tokens", self._output_tokens)
        out: list[Event] = [] if self._started else [self._message_start()]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # anthropic has a single choice; extra ones cannot be represented
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    self._text(content, out)
                refusal = delta.get("refusal")
                if refusal:
                    self._text(refusal, out)
                for call in delta.get("tool_calls") or ():
                    self._tool_call(call, out)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self._finish_reason = finish_reason
        return out

    def finish(self) -> list[Event]:
        """Close the stream: stop any open block, then message_delta and message_stop."""
        if self._finished:
            return []
        self._finished = True
        out: list[Event] = [] if self._started else [self._message_start()]
        self._close_block(out)
        usage: JSON = {}
        if self._input_tokens is not None:
            usage["input_tokens"] = self._input_tokens
        usage["output_tokens"] = self._output_tokens or 0
        delta = {
            "stop_reason": stop_reason_from_finish_reason(self._finish_reason),
            "stop_sequence": None,
        }
        out.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out

    def _message_start(self) -> Event:
        self._started = True
        message: JSON = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens or 0, "output_tokens": 0},
        }
        return "message_start", {"type": "message_start", "message": message}

    def _open_block(self, block: JSON, kind: str, out: list[Event]) -> int:
        self._close_block(out)
        index = self._next_block
        self._next_block += 1
        self._block = index
        self._block_kind = kind
        out.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        return index

    def _close_block(self, out: list[Event]) -> None:
        if self._block_kind is not None:
            out.append(("content_block_stop", {"type": "content_block_stop", "index": self._block}))
            self._block_kind = None

    def _text(self, text: str, out: list[Event]) -> None:
        if self._block_kind != "text":
            self._open_block({"type": "text", "text": ""}, "text", out)
        delta = {"type": "text_delta", "text": text}
        out.append(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": self._block, "delta": delta},
            )
        )

    def _tool_call(self, call: JSON, out: list[Event]) -> None:
        tool_index = call.get("index", 0)
        fn = call.get("function") or {}
        call_id = call.get("id")
        known = self._tools.get(tool_index)
        # Some servers repeat the id on every fragment, others reuse index 0 for parallel calls:
        # only an id we have not seen at this index starts a new tool_use block.
        if known is None or (call_id and call_id != known[0]):
            call_id = call_id or f"toolu_{self._message_id}_{self._next_block}"
            block: JSON = {
                "type": "tool_use",
                "id": call_id,
                "name": fn.get("name") or "",
                "input": {},
            }
            known = (call_id, self._open_block(block, "tool_use", out))
            self._tools[tool_index] = known
        arguments = fn.get("arguments")
        if arguments:
            # If a server interleaves fragments of parallel calls, this targets an already
            # stopped block; clients accumulate by index, which beats dropping the fragment.
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": known[1], "delta": delta},
                )
            )
