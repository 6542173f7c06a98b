"""trimtab sampled every few seconds while the load runs (RSS, fds, threads, CPU, /metrics)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from soak_bench.load import Load, bucket, drive
from soak_bench.metrics import metrics_digest, parse_metrics
from soak_bench.processes import CLK_TCK, loadavg, proc_sample
from soak_bench.settings import ADMIN_KEY


@dataclass
class Sampler:
    pid: int
    mock_pid: int
    base: str
    load: Load
    samples: list[dict[str, Any]] = field(default_factory=list)
    _t0: float = 0.0
    _last_t: float = 0.0
    _last_ticks: int = 0
    _seen: int = 0

    async def take(self, session: aiohttp.ClientSession, label: str | None = None) -> None:
        now = time.monotonic()
        proc = proc_sample(self.pid)
        mock = proc_sample(self.mock_pid)
        metrics: dict[str, Any] = {}
        try:
            async with session.get(
                self.base + "/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"}
            ) as resp:
                metrics = metrics_digest(parse_metrics(await resp.text()))
        except (aiohttp.ClientError, TimeoutError) as exc:
            metrics = {"error": f"{type(exc).__name__}: {exc}"}
        new = self.load.results[self._seen :]
        self._seen = len(self.load.results)
        interval = max(now - self._last_t, 1e-9) if self.samples else None
        cols: Counter[str] = Counter(bucket(r) for r in new)
        four = Counter(f"{r.status} {r.error_code}" for r in new if bucket(r) == "4xx")
        cpu = None
        if proc is not None and self.samples and interval:
            cpu = round(100 * (proc.cpu_ticks - self._last_ticks) / CLK_TCK / interval, 1)
        self.samples.append(
            {
                "t_s": round(now - self._t0, 1),
                "label": label,
                "completed": len(new),
                "rps": round(len(new) / interval, 1) if interval else None,
                "sent_total": self.load.sent,
                "in_flight": self.load.in_flight,
                "2xx": cols["2xx"],
                "4xx": cols["4xx"],
                "4xx_by_code": dict(four),
                "5xx": cols["5xx"],
                "stream_err": cols["stream_err"],
                "other": cols["other"],
                "rss_mib": round(proc.rss_kib / 1024, 1) if proc else None,
                "fds": proc.fds if proc else None,
                "threads": proc.threads if proc else None,
                "cpu_pct": cpu,
                "mock_rss_mib": round(mock.rss_kib / 1024, 1) if mock else None,
                "loadavg_1m": loadavg(),
                "metrics": metrics,
            }
        )
        self._last_t = now
        if proc is not None:
            self._last_ticks = proc.cpu_ticks

    async def run(self, every_s: float, started: asyncio.Event, done: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await started.wait()
            self._t0 = time.monotonic()
            await self.take(session, "start")
            n = 1
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), self._t0 + n * every_s - time.monotonic())
                if done.is_set():
                    break
                await self.take(session)
                n += 1
            await self.take(session, "end")


async def soak(
    base: str,
    args: argparse.Namespace,
    trimtab: subprocess.Popen[bytes],
    mock: subprocess.Popen[bytes],
) -> tuple[Load, Sampler]:
    load = Load()
    sampler = Sampler(trimtab.pid, mock.pid, base, load)
    started, done = asyncio.Event(), asyncio.Event()
    sampling = asyncio.create_task(sampler.run(args.sample_s, started, done))
    try:
        await drive(
            base, args.rate, args.minutes * 60, args.concurrency, args.seed, load, trimtab, started
        )
    finally:
        started.set()
        done.set()
        await sampling
    return load, sampler
