"""The mock upstream's OpenAI side: chat completions (whole and streamed) and embeddings."""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

from aiohttp import web

from trimtab.testing.mock_replies import Finish, Reply, dumps, embedding, error, sse

OPENAI_FINISH: dict[Finish, str] = {
    "stop": "stop",
    "length": "length",
    "tool": "tool_calls",
    "refusal": "content_filter",
}


def openai_message(reply: Reply) -> dict[str, Any]:
    """The assistant message of a non-streaming chat completion."""
    if reply.tool_name is not None:
        call = {
            "id": f"call_mock_{reply.n}",
            "type": "function",
            "function": {"name": reply.tool_name, "arguments": reply.text},
        }
        return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
    return {"role": "assistant", "content": reply.text, "refusal": None}


def openai_usage(reply: Reply) -> dict[str, int]:
    """OpenAI usage block."""
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def openai_completion(reply: Reply) -> dict[str, Any]:
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
                "message": openai_message(reply),
                "logprobs": None,
                "finish_reason": OPENAI_FINISH[reply.finish],
            }
        ],
        "usage": openai_usage(reply),
    }


def openai_events(reply: Reply, include_usage: bool) -> list[tuple[bytes, bool]]:
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
        return sse(obj)

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
    events.append((chunk({}, OPENAI_FINISH[reply.finish]), False))
    if include_usage:
        final = {
            "id": f"chatcmpl-mock-{reply.n}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "system_fingerprint": "fp_mock",
            "choices": [],
            "usage": openai_usage(reply),
        }
        events.append((sse(final), False))
    events.append((sse("[DONE]"), False))
    return events


def embeddings_reply(body: dict[str, Any], model: str) -> web.Response:
    """The answer to ``POST /v1/embeddings``: eight deterministic floats per input."""
    raw = body.get("input")
    inputs: list[Any]
    if isinstance(raw, str) or (
        isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)
    ):
        inputs = [raw]
    elif isinstance(raw, list) and raw:
        inputs = raw
    else:
        return error("openai", 400, "'input' must be a string or a non-empty list")
    as_base64 = body.get("encoding_format") == "base64"
    data: list[dict[str, Any]] = []
    tokens = 0
    for index, item in enumerate(inputs):
        if isinstance(item, str):
            seed, tokens = item, tokens + len(item.split())
        elif isinstance(item, list) and all(isinstance(t, int) for t in item):
            seed, tokens = dumps(item), tokens + len(item)
        else:
            return error("openai", 400, f"input[{index}] must be a string or token list")
        vector = embedding(seed)
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack("<8f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = max(1, tokens)
    return web.json_response(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
