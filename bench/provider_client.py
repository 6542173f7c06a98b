"""CPU per provider call: trimtab's HttpProvider (the h1client) against aiohttp's client,
the way HttpProvider used it before, both calling the mock upstream in a subprocess.

    .venv/bin/python bench/provider_client.py [--calls 2000] [--concurrency 16] [--rounds 3]

Each round runs, for each client in turn (interleaved, so drift on a shared machine hits
both alike): N sequential calls, N calls with `concurrency` in flight, and N/4 streams
read to their end (sequential). It reports the client process's CPU time
(time.process_time) per call in µs; the mock upstream's CPU is in its own process and not
counted. The event loop is uvloop, as under `trimtab serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
import orjson
import uvloop

from trimtab.config import ProviderConfig
from trimtab.providers.openai import OpenAIProvider
from trimtab.providers.sse import parse_sse

BODY = {"model": "gpt-mock", "messages": [{"role": "user", "content": "say something short"}]}
STREAM_BODY = {**BODY, "stream": True}
KEY = "sk-bench-provider-client"


class Client(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def call(self) -> bytes: ...
    async def stream(self) -> int: ...


class AiohttpBaseline:
    """HttpProvider's call and open_stream as they were with aiohttp (one session, a
    TCPConnector bounded by max_connections, a ClientTimeout per call)."""

    def __init__(self, base_url: str) -> None:
        self._url = base_url + "/chat/completions"
        self._headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=512, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self) -> bytes:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=30)
        data = orjson.dumps(BODY)
        async with self._session.post(
            self._url, data=data, headers=self._headers, timeout=timeout
        ) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise RuntimeError(f"HTTP {resp.status}")
            return raw

    async def stream(self) -> int:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=30)
        data = orjson.dumps(STREAM_BODY)
        async with asyncio.timeout(30):
            resp = await self._session.post(
                self._url, data=data, headers=self._headers, timeout=timeout
            )
        if resp.status >= 400 or not resp.headers.get("content-type", "").startswith(
            "text/event-stream"
        ):
            raise RuntimeError(f"HTTP {resp.status}")
        n = 0
        async for _ in parse_sse(resp.content):
            n += 1
        resp.close()
        return n


class Lean:
    """trimtab's HttpProvider as the gateway uses it."""

    def __init__(self, base_url: str) -> None:
        config = ProviderConfig(kind="openai", base_url=base_url, api_key=KEY)
        self._provider = OpenAIProvider("mock", config)

    async def start(self) -> None:
        await self._provider.start()

    async def close(self) -> None:
        await self._provider.close()

    async def call(self) -> bytes:
        return await self._provider.call("chat", BODY, 30)

    async def stream(self) -> int:
        stream = await self._provider.open_stream("chat", STREAM_BODY, 30, 30)
        n = 0
        async for _ in stream.events():
            n += 1
        await stream.close()
        return n


async def _cpu_per(n: int, work: Callable[[], Awaitable[Any]], concurrency: int) -> float:
    """CPU µs per unit of `work`, run n times with `concurrency` in flight."""
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await work()

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu) / n * 1e6


async def _measure(client: Client, calls: int, concurrency: int) -> dict[str, float]:
    await client.start()
    try:
        for _ in range(50):  # warm: connections open, code paths hot
            await client.call()
        await _cpu_per(concurrency * 4, client.call, concurrency)
        return {
            "sequential": await _cpu_per(calls, client.call, 1),
            f"c={concurrency}": await _cpu_per(calls, client.call, concurrency),
            "stream": await _cpu_per(max(calls // 4, 1), client.stream, 1),
        }
    finally:
        await client.close()


def _start_mock() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trimtab.testing.mock_upstream", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "mock upstream listening on http://127.0.0.1:PORT (..."
    url = line.split(" listening on ", 1)[1].split()[0]
    return proc, url + "/v1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    proc, base_url = _start_mock()
    results: dict[str, list[dict[str, float]]] = {"aiohttp": [], "h1client": []}
    makers: dict[str, Callable[[str], Client]] = {"aiohttp": AiohttpBaseline, "h1client": Lean}
    try:
        for round_no in range(1, args.rounds + 1):
            for name, make in makers.items():
                got = uvloop.run(_measure(make(base_url), args.calls, args.concurrency))
                results[name].append(got)
                cells = "  ".join(f"{k} {v:7.1f}" for k, v in got.items())
                print(f"round {round_no}  {name:9}  CPU µs per call:  {cells}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print("\nmedian over rounds, CPU µs per call (client process only)")
    keys = list(results["aiohttp"][0])
    print(f"{'':10}" + "".join(f"{k:>12}" for k in keys))
    medians = {
        name: {k: statistics.median(r[k] for r in rows) for k in keys}
        for name, rows in results.items()
    }
    for name, row in medians.items():
        print(f"{name:10}" + "".join(f"{row[k]:12.1f}" for k in keys))
    ratio = "".join(f"{medians['h1client'][k] / medians['aiohttp'][k]:12.2f}" for k in keys)
    print(f"{'ratio':10}" + ratio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
