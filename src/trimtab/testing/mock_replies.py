"""The mock upstream's deterministic replies: what it reads from a request and answers.

The reply is computed once (:class:`Reply`) and rendered into either wire format by
:mod:`trimtab.testing.mock_openai` and :mod:`trimtab.testing.mock_anthropic`; this module
also holds the pieces both renderers share (server-sent events, error bodies).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from trimtab.testing.mock_judge import MODEL as judge_model
from trimtab.testing.mock_judge import judge_text

Wire = Literal["openai", "anthropic"]
Finish = Literal["stop", "length", "tool", "refusal"]

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

_WEATHER_RE = re.compile(r"\bweather\b", re.IGNORECASE)
TOOL_INPUT: dict[str, Any] = {"city": "Paris"}
ECHO_TOOL_MODEL = "echo-tool"
ECHO_TOOL_NAME = "echo"  # when the request offers no tools
ECHO_PIECE_CHARS = 7  # streamed arguments in pieces this long: a value spans several
REFUSE_MODEL = "refuse"  # answers with a refusal (OpenAI content_filter, Anthropic refusal)
REFUSAL_TEXT = "I can't help with that."


@dataclass
class Reply:
    """A fully computed reply, rendered later into either wire format and stream or not."""

    n: int
    model: str
    prompt_tokens: int
    finish: Finish
    pieces: list[str] = field(default_factory=list)
    tool_name: str | None = None
    tool_input: dict[str, Any] = field(default_factory=lambda: dict(TOOL_INPUT))

    @property
    def text(self) -> str:
        """The whole content (text, or the tool input JSON)."""
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        """Words in the reply."""
        return len(self.text.split())


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


def embedding(seed: str) -> list[float]:
    """Eight deterministic floats in [-1, 1) derived from a hash of ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    return [round(v / 2**31 - 1.0, 6) for v in struct.unpack("<8I", digest)]


def dumps(obj: Any) -> str:
    """Compact JSON."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event."""
    payload = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def error(
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


def stream_error(wire: Wire, message: str) -> bytes:
    """An error event in the endpoint's streaming format."""
    if wire == "openai":
        return sse({"error": {"message": message, "type": "invalid_request_error"}})
    event = {"type": "error", "error": {"type": "authentication_error", "message": message}}
    return sse(event, "error")


def build_reply(body: dict[str, Any], wire: Wire, n: int) -> Reply:
    """Compute the deterministic reply ``n`` to a chat/messages request."""
    messages = _messages(body)
    model = body.get("model")
    reply = Reply(
        n=n,
        model=model if isinstance(model, str) else "",
        prompt_tokens=_prompt_words(body, wire),
        finish="stop",
    )
    tool_name = _first_tool_name(body.get("tools"))
    if reply.model == ECHO_TOOL_MODEL:  # a tool call whose arguments echo the user's text
        reply.tool_name = tool_name or ECHO_TOOL_NAME
        reply.tool_input = {"text": _last_user_text(messages)}
        text = json.dumps(reply.tool_input)
        reply.pieces = [
            text[i : i + ECHO_PIECE_CHARS] for i in range(0, len(text), ECHO_PIECE_CHARS)
        ]
        reply.finish = "tool"
        return reply
    if tool_name is not None and _wants_tool(messages):
        reply.tool_name = tool_name
        reply.pieces = _word_pieces(json.dumps(TOOL_INPUT).split())
        reply.finish = "tool"
        return reply
    if reply.model == REFUSE_MODEL:
        reply.pieces = _word_pieces(REFUSAL_TEXT.split())
        reply.finish = "refusal"
        return reply
    if model == judge_model:
        reply.pieces = [judge_text(body, messages, _last_user_text(messages))]
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
