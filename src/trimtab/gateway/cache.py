"""The response cache: exact match on the normalised request, replayable as a stream."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from trimtab.providers.sse import encode_data, encode_event
from trimtab.types import Wire

# fields that do not change the answer: delivery, attribution
_IGNORED = frozenset({"stream", "stream_options", "user", "metadata"})


def cache_key(
    model: str,
    client: Wire,
    op: str,
    body: dict[str, Any],
    *,
    tenant: str,
    route_version: str | None = None,
) -> str:
    """A digest of everything that shapes the answer, keys sorted.

    The tenant is part of it, so one tenant is never served another's answer; so is the
    route version of a `route:` call ("support@v2"), so a new version starts cold.
    """
    shape = {k: v for k, v in body.items() if k not in _IGNORED}
    shape["model"] = model
    scope = [tenant, route_version, client, op, shape]
    digest = hashlib.sha256(orjson.dumps(scope, option=orjson.OPT_SORT_KEYS))
    return "cache:" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A response in the client's wire format and what producing it cost."""

    body: bytes
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    finish_reasons: list[str] | None
    response_model: str | None

    def encode(self) -> bytes:
        data = asdict(self)
        data["body"] = self.body.decode()
        return orjson.dumps(data)

    @classmethod
    def decode(cls, raw: bytes) -> CachedAnswer:
        data = orjson.loads(raw)
        data["body"] = data["body"].encode()
        return cls(**data)


def replay_stream(client: Wire, response: dict[str, Any], include_usage: bool) -> bytes:
    """A complete response as the SSE stream the client would have received."""
    if client == "openai":
        return _openai_stream(response, include_usage)
    return _anthropic_stream(response)


def _openai_stream(resp: dict[str, Any], include_usage: bool) -> bytes:
    base = {
        "id": resp.get("id"),
        "object": "chat.completion.chunk",
        "created": resp.get("created"),
        "model": resp.get("model"),
    }
    choice = (resp.get("choices") or [{}])[0]
    message = choice.get("message") or {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return encode_data(orjson.dumps(body))

    out = [chunk({"role": "assistant", "content": ""})]
    if message.get("content"):
        out.append(chunk({"content": message["content"]}))
    for i, call in enumerate(message.get("tool_calls") or []):
        out.append(chunk({"tool_calls": [{"index": i, **call}]}))
    out.append(chunk({}, choice.get("finish_reason") or "stop"))
    if include_usage and resp.get("usage"):
        out.append(encode_data(orjson.dumps({**base, "choices": [], "usage": resp["usage"]})))
    out.append(encode_data(b"[DONE]"))
    return b"".join(out)


def _anthropic_stream(msg: dict[str, Any]) -> bytes:
    usage = msg.get("usage") or {}
    start = {**msg, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {"input_tokens": usage.get("input_tokens", 0), "output_tokens": 0}
    out = [encode_event("message_start", orjson.dumps({"type": "message_start", "message": start}))]
    for i, block in enumerate(msg.get("content") or []):
        if block.get("type") == "tool_use":
            opening = {**block, "input": {}}
            delta = {
                "type": "input_json_delta",
                "partial_json": orjson.dumps(block["input"]).decode(),
            }
        else:
            opening = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block.get("text", "")}
        events = [
            (
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": opening},
            ),
            ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": i}),
        ]
        out.extend(encode_event(name, orjson.dumps(data)) for name, data in events)
    ending = {
        "type": "message_delta",
        "delta": {"stop_reason": msg.get("stop_reason"), "stop_sequence": msg.get("stop_sequence")},
        "usage": {"output_tokens": usage.get("output_tokens", 0)},
    }
    out.append(encode_event("message_delta", orjson.dumps(ending)))
    out.append(encode_event("message_stop", b'{"type":"message_stop"}'))
    return b"".join(out)
