"""A chat request's body and headers for a target, and a streamed answer parsed back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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


@dataclass
class ChatStream:
    """An OpenAI chat stream read back line by line: its content pieces, its usage object
    (if any) and whether ``[DONE]`` came."""

    content: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    done: bool = False

    def feed(self, raw: bytes) -> bool:
        """Take one line of the stream; whether it carried content."""
        line = raw.strip()
        if not line.startswith(b"data:"):
            return False
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return False
        obj = json.loads(payload)
        got = False
        for ch in obj.get("choices") or []:
            piece = (ch.get("delta") or {}).get("content")
            if piece:
                self.content.append(piece)
                got = True
        if obj.get("usage"):
            self.usage = obj["usage"]
        return got

    @property
    def text(self) -> str:
        return "".join(self.content)


def parse_sse(data: bytes) -> tuple[str, dict[str, Any] | None, bool]:
    """Concatenated content, the usage object (if any) and whether [DONE] came."""
    stream = ChatStream()
    for raw in data.split(b"\n"):
        stream.feed(raw)
    return stream.text, stream.usage, stream.done
