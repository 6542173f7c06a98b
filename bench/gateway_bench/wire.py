"""A chat request's body and headers for a target, and a streamed answer parsed back."""

from __future__ import annotations

import json
from typing import Any

from gateway_bench.payload import PAYLOAD
from gateway_bench.processes import Target


def chat_body(model: str, stream: bool) -> bytes:
    req: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PAYLOAD.prompt}],
        "max_tokens": PAYLOAD.max_tokens,
        "temperature": 0,
    }
    if stream:
        req["stream"] = True
        req["stream_options"] = {"include_usage": True}
    return json.dumps(req).encode()


def headers_for(t: Target) -> dict[str, str]:
    h = {"Content-Type": "application/json"}
    if t.auth:
        h["Authorization"] = t.auth
    return h


def parse_sse(data: bytes) -> tuple[str, dict[str, Any] | None, bool]:
    """Concatenated content, the usage object (if any) and whether [DONE] came."""
    content: list[str] = []
    usage: dict[str, Any] | None = None
    done = False
    for raw in data.split(b"\n"):
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            done = True
            continue
        obj = json.loads(payload)
        for ch in obj.get("choices") or []:
            piece = (ch.get("delta") or {}).get("content")
            if piece:
                content.append(piece)
        if obj.get("usage"):
            usage = obj["usage"]
    return "".join(content), usage, done
