"""The streaming load generator: time to first token over aiohttp, stream by stream."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from gateway_bench.payload import PAYLOAD
from gateway_bench.processes import Target
from gateway_bench.settings import TTFT_BLOCK, TTFT_SETTLE_S
from gateway_bench.wire import ChatStream, chat_body, headers_for


@dataclass
class StreamSamples:
    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    overhead_ms: list[float] = field(default_factory=list)
    bad: int = 0
    bad_sample: str = ""


async def one_stream(
    session: aiohttp.ClientSession,
    t: Target,
    body: bytes,
    s: StreamSamples,
    expect: str | None = None,
) -> None:
    """One stream, timed into ``s``: its content must be ``expect`` (default: the answer
    every request gets)."""
    t0 = time.perf_counter()
    first: float | None = None
    stream = ChatStream()
    t.sent += 1
    async with session.post(t.chat_url, data=body, headers=headers_for(t)) as resp:
        if resp.status != 200:
            s.bad += 1
            s.bad_sample = s.bad_sample or f"HTTP {resp.status}: {(await resp.read())[:300]!r}"
            return
        if t.overhead_header:
            with contextlib.suppress(TypeError, ValueError):
                s.overhead_ms.append(float(resp.headers.get(t.overhead_header, "")))
        async for raw in resp.content:
            if stream.feed(raw) and first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    t.completed += 1
    text, usage, done = stream.text, stream.usage, stream.done
    if first is None or text != (expect or PAYLOAD.content) or not done or not usage:
        s.bad += 1
        s.bad_sample = s.bad_sample or f"content={text!r} done={done} usage={usage!r}"
        return
    s.ttft_ms.append((first - t0) * 1000)
    s.total_ms.append((end - t0) * 1000)


async def ttft_phase(
    targets: Sequence[Target], duration: float, warmup: int
) -> dict[str, StreamSamples]:
    """One streaming request at a time, in blocks of TTFT_BLOCK per target, round-robin over
    the targets for ``duration`` seconds.

    Interleaving means slow drift on the machine hits every target equally."""
    sessions = {
        t.name: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1, force_close=False),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        for t in targets
    }
    bodies = {t.name: chat_body(t.model, True) for t in targets}
    samples = {t.name: StreamSamples() for t in targets}
    untimed = {t.name: StreamSamples() for t in targets}  # still checked for correctness
    try:
        for _ in range(warmup):
            for t in targets:
                await one_stream(sessions[t.name], t, bodies[t.name], untimed[t.name])
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            for t in targets:
                # the first stream after the pause pays for waking idle vCPUs: not timed
                await one_stream(sessions[t.name], t, bodies[t.name], untimed[t.name])
                for _ in range(TTFT_BLOCK):
                    await one_stream(sessions[t.name], t, bodies[t.name], samples[t.name])
                # let the gateway finish any after-the-stream work (logging, callbacks) before
                # the next one, which may share its CPU, is timed
                await asyncio.sleep(TTFT_SETTLE_S)
    finally:
        for sess in sessions.values():
            await sess.close()
    for name, u in untimed.items():
        samples[name].bad += u.bad
        samples[name].bad_sample = samples[name].bad_sample or u.bad_sample
    return samples


def pctl(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]
