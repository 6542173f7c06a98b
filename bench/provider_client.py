"""CPU per provider call: trimtab's HttpProvider (the h1client) against aiohttp's client,
the way HttpProvider used it before, both calling the mock upstream in a subprocess.

    .venv/bin/python bench/provider_client.py [--calls 2000] [--concurrency 16] [--rounds 3]
        [--tls]

Each round runs, for each client in turn (interleaved, so drift on a shared machine hits
both alike): N sequential calls, N calls with `concurrency` in flight, and N/4 streams
read to their end (sequential). It reports the client process's CPU time
(time.process_time) per call in µs; the mock upstream's CPU is in its own process and not
counted. The event loop is uvloop, as under `trimtab serve`. `--tls` puts a TLS proxy (a
third process, self-signed certificate from the openssl CLI, trusted by both clients) in
front of the mock and calls it over https.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
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
        # aiohttp made its default context at import; this one trusts SSL_CERT_FILE too
        tls = ssl.create_default_context() if self._url.startswith("https") else True
        connector = aiohttp.TCPConnector(limit=512, ttl_dns_cache=300, ssl=tls)
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


async def _proxy(port_file: str, target: str, cert: str, key: str) -> None:
    """Terminate TLS and pipe each connection to `target` (host:port)."""
    host, _, port = target.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))  # noqa: ASYNC240 - once
    await server.serve_forever()


def _start_tls_proxy(
    stack: contextlib.ExitStack, base_url: str
) -> tuple[subprocess.Popen[str], str]:
    where = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    cert, key, port_file = where / "cert.pem", where / "key.pem", where / "port"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    os.environ["SSL_CERT_FILE"] = str(cert)  # both clients' default contexts trust it
    target = base_url.removeprefix("http://").removesuffix("/v1")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--proxy", str(port_file), target, str(cert), str(key)],
        text=True,
    )
    for _ in range(100):
        if port_file.exists() and port_file.read_text():
            return proc, f"https://127.0.0.1:{port_file.read_text()}/v1"
        time.sleep(0.05)
    raise RuntimeError("the TLS proxy did not start")


def main() -> int:
    if sys.argv[1:2] == ["--proxy"]:
        uvloop.run(_proxy(*sys.argv[2:6]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tls", action="store_true", help="call the mock over https")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        return _bench(args, stack)


def _bench(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    proc, base_url = _start_mock()
    stack.callback(_stop, proc)
    if args.tls:
        proxy, base_url = _start_tls_proxy(stack, base_url)
        stack.callback(_stop, proxy)
    print(f"calling {base_url}", flush=True)
    results: dict[str, list[dict[str, float]]] = {"aiohttp": [], "h1client": []}
    makers: dict[str, Callable[[str], Client]] = {"aiohttp": AiohttpBaseline, "h1client": Lean}
    for round_no in range(1, args.rounds + 1):
        for name, make in makers.items():
            got = uvloop.run(_measure(make(base_url), args.calls, args.concurrency))
            results[name].append(got)
            cells = "  ".join(f"{k} {v:7.1f}" for k, v in got.items())
            print(f"round {round_no}  {name:9}  CPU µs per call:  {cells}", flush=True)
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


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
