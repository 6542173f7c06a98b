"""Before anything is measured: each target answers what the mock says, whole and
streamed, and streams as the mock sends (chunks are not held back)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from gateway_bench.payload import PAYLOAD, Payload
from gateway_bench.processes import Target, http_request
from gateway_bench.settings import SLOW_SUFFIX, SetupError, TargetError
from gateway_bench.ttft import StreamSamples, one_stream
from gateway_bench.wire import chat_body, headers_for, parse_sse


def learn_answer(direct: Target) -> None:
    """The long answer the mock gives (--reply-bytes): every target must return it."""
    status, _, body = http_request(
        "POST", direct.chat_url, chat_body(direct.model, False), headers_for(direct)
    )
    if status != 200:
        raise SetupError(f"the mock upstream answered HTTP {status}: {body[:300]!r}")
    obj = json.loads(body)
    PAYLOAD.content = obj["choices"][0]["message"]["content"]
    PAYLOAD.completion_tokens = obj["usage"]["completion_tokens"]
    PAYLOAD.max_tokens = max(PAYLOAD.max_tokens, 2 * PAYLOAD.completion_tokens)


def smoke(t: Target) -> dict[str, Any]:
    """One non-streaming and one streaming request; raise TargetError if either is wrong."""
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    status, headers, body = http_request(
        "POST", t.chat_url, chat_body(t.model, False), headers_for(t)
    )
    info["nonstream_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    t.sent += 1
    t.completed += 1
    if status != 200:
        raise TargetError(f"{t.name}: POST {t.chat_url} -> HTTP {status}: {body[:500]!r}")
    obj = json.loads(body)
    content = obj["choices"][0]["message"]["content"]
    if content != PAYLOAD.content:
        raise TargetError(f"{t.name}: unexpected content {content!r}")
    usage = obj.get("usage") or {}
    if usage.get("completion_tokens") != PAYLOAD.completion_tokens:
        raise TargetError(f"{t.name}: unexpected usage {usage!r}")
    for h in (t.required_header, t.overhead_header):
        if h and h not in headers:
            raise TargetError(f"{t.name}: response lacks header {h!r}; headers: {headers}")
    info["headers"] = {k: v for k, v in headers.items() if k.startswith("x-")}
    status, headers, body = http_request(
        "POST", t.chat_url, chat_body(t.model, True), headers_for(t)
    )
    t.sent += 1
    t.completed += 1
    if status != 200:
        raise TargetError(f"{t.name}: streaming POST -> HTTP {status}: {body[:500]!r}")
    content, usage_s, done = parse_sse(body)
    if content != PAYLOAD.content or not done:
        raise TargetError(
            f"{t.name}: bad stream (content={content!r}, done={done}): {body[:800]!r}"
        )
    if not usage_s or usage_s.get("completion_tokens") != PAYLOAD.completion_tokens:
        raise TargetError(f"{t.name}: stream lacks the usage chunk (include_usage): {usage_s!r}")
    if t.required_header and t.required_header not in headers:
        raise TargetError(f"{t.name}: streaming response lacks header {t.required_header!r}")
    info["stream_ok"] = True
    return info


async def _one_slow_stream(t: Target) -> StreamSamples:
    s = StreamSamples()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        body = chat_body(t.model + SLOW_SUFFIX, True)
        await one_stream(session, t, body, s, Payload().content)  # always the greeting
    return s


def stream_check(t: Target, gap_ms: float, held: int = 0) -> dict[str, Any]:
    """Does the target forward SSE chunks as they come? The mock spaces them ``gap_ms`` apart
    for the slow model: a streaming gateway delivers the first one long before the last.
    ``held``: chunks a gateway may hold back on purpose (a redacting stream holds each word
    until the next one shows it is whole: 1)."""
    s = asyncio.run(_one_slow_stream(t))
    if s.bad or not s.ttft_ms:
        raise TargetError(f"{t.name}: bad stream for the slow-stream model: {s.bad_sample}")
    ttft, total = s.ttft_ms[0], s.total_ms[0]
    # the mock sends 5 more chunk groups after the first, gap_ms apart
    incremental = ttft < (0.8 + held) * gap_ms and total - ttft > (4 - held) * gap_ms
    return {
        "gap_ms": gap_ms,
        "ttft_ms": round(ttft, 3),
        "total_ms": round(total, 3),
        "incremental": incremental,
    }
