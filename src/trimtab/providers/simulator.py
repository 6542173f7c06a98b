"""A built-in provider that needs no network: deterministic replies, configurable latency
and failure rate. It speaks the OpenAI wire format natively."""

from __future__ import annotations

import asyncio
import hashlib
import random
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from trimtab.config import ProviderConfig
from trimtab.providers.base import SSEEvent, UpstreamError
from trimtab.types import Operation, Wire

_WORDS = [
    "the",
    "quick",
    "answer",
    "is",
    "that",
    "it",
    "depends",
    "on",
    "your",
    "latency",
    "budget",
    "and",
    "on",
    "how",
    "often",
    "the",
    "provider",
    "fails",
    "so",
    "measure",
    "first",
    "then",
    "decide",
]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("text")
        )
    return ""


def _word_count(messages: Any) -> int:
    if not isinstance(messages, list):
        return 1
    n = sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))
    return max(n, 1)


def reply_words(body: dict[str, Any]) -> list[str]:
    """The reply for a chat request: a function of its messages and max_tokens only."""
    digest = hashlib.sha256(orjson.dumps(body.get("messages"))).digest()
    length = 8 + digest[0] % 17
    words = [_WORDS[(digest[i % 32] + i) % len(_WORDS)] for i in range(length)]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and 0 < limit < len(words):
        return words[:limit]
    return words


def embedding(text: str, dims: int = 16) -> list[float]:
    """A deterministic unit vector derived from the text."""
    raw = hashlib.sha256(text.encode()).digest() * ((dims * 2) // 32 + 1)
    values = [v / 32768.0 for v in struct.unpack(f"<{dims}h", raw[: dims * 2])]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [v / norm for v in values]


class SimulatorStream:
    def __init__(self, provider: SimulatorProvider, body: dict[str, Any]) -> None:
        self._p = provider
        self._body = body

    async def events(self) -> AsyncIterator[SSEEvent]:
        body = self._body
        words = reply_words(body)
        model = str(body.get("model"))
        cid, created = self._p.next_id(), int(time.time())
        limited = len(words) < len(reply_words({"messages": body.get("messages")}))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> SSEEvent:
            return SSEEvent(
                None,
                orjson.dumps(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    }
                ),
            )

        await self._p.pause(self._p.config.latency_ms)
        yield chunk({"role": "assistant", "content": ""})
        for i, word in enumerate(words):
            if i:
                await self._p.pause(self._p.config.chunk_delay_ms)
            yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, "length" if limited else "stop")
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage = self._p.usage(body, len(words))
            yield SSEEvent(
                None,
                orjson.dumps(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                ),
            )
        yield SSEEvent(None, b"[DONE]")

    async def close(self) -> None:
        return None


class SimulatorProvider:
    """Answers chat and embeddings in-process."""

    wire: Wire = "openai"

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.kind: str = config.kind
        self.config = config
        self._rng = random.Random(config.seed)
        self._count = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def next_id(self) -> str:
        self._count += 1
        return f"chatcmpl-sim-{self._count}"

    @staticmethod
    async def pause(ms: float) -> None:
        if ms > 0:
            await asyncio.sleep(ms / 1000)

    def usage(self, body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
        prompt = _word_count(body.get("messages"))
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        }

    def _maybe_fail(self) -> None:
        # one draw per request from a seeded generator: the same seed, the same failures
        if self.config.error_rate and self._rng.random() < self.config.error_rate:
            raise UpstreamError(
                "status",
                f"provider '{self.name}' returned HTTP 503: simulated failure",
                status=503,
            )

    async def call(
        self, op: Operation, body: dict[str, Any], timeout_s: float, *, encoded: bytes | None = None
    ) -> bytes:
        self._maybe_fail()
        if self.config.latency_ms > timeout_s * 1000:
            await asyncio.sleep(timeout_s)
            raise UpstreamError(
                "timeout", f"provider '{self.name}' did not answer within {timeout_s:g}s"
            )
        await self.pause(self.config.latency_ms)
        if op == "embeddings":
            return orjson.dumps(self._embeddings(body))
        words = reply_words(body)
        limited = len(words) < len(reply_words({"messages": body.get("messages")}))
        return orjson.dumps(
            {
                "id": self.next_id(),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " ".join(words)},
                        "finish_reason": "length" if limited else "stop",
                    }
                ],
                "usage": self.usage(body, len(words)),
            }
        )

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs or []]
        tokens = sum(max(len(t.split()), 1) for t in texts)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": embedding(t)}
                for i, t in enumerate(texts)
            ],
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def open_stream(
        self,
        op: Operation,
        body: dict[str, Any],
        timeout_s: float,
        idle_timeout_s: float,
        *,
        encoded: bytes | None = None,
    ) -> SimulatorStream:
        self._maybe_fail()
        return SimulatorStream(self, body)
