"""Guardrails off against on through real servers, interleaved request by request: what the
default policy adds on issue 15's payload (a 2 KB prompt, a 1 KB answer), measured so that
a shared machine's noise falls on both arms alike.

    .venv/bin/python bench/guardrails_interleaved.py [--rounds 3000] [--streams 300]
        [--before-src PATH]

One mock provider (`bench/mock_upstream.py --reply-bytes 1024`) and one gateway per arm,
all started at once: `off` (no policy) and `on` (bench/run.py's `--guardrails` policy: PII
redacted both ways, injection blocked, a deny pattern each way); with `--before-src`, two
more gateways run that source tree (PYTHONPATH), `off@before` and `on@before`, so a change
is compared with the code before it in the same minutes. Every gateway is pinned to CPU 1,
the mock and this client to CPU 0 (bench/run.py's split). Each round sends one request to
every arm, in a fresh random order (seeded), one at a time over keep-alive connections;
then the same for streams, timing the first content delta. Reported per arm: p50 and p99
of the client's latency, of the gateway's own `x-trimtab-overhead-ms`, of the time to first
token; and each on - off difference of the medians with a 95 % bootstrap interval
(percentile method, 2,000 resamples of the rounds, which pairs the arms' samples).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import importlib.util
import json
import os
import random
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter_ns
from types import ModuleType
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent


def _script(name: str) -> ModuleType:
    path = BENCH_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


run = _script("run")
Sample = dict[str, list[float]]  # arm -> one value per round


class Arm:
    """One gateway and a keep-alive connection to it."""

    def __init__(self, name: str, target: Any) -> None:
        self.name = name
        self.target = target
        host, port = target.base_url.removeprefix("http://").removesuffix("/v1").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = run.headers_for(target)

    def post(self, body: bytes, stream: bool) -> tuple[float, float | None]:
        """ms to the whole answer (or to the first content delta of a stream), and the
        gateway's own overhead header."""
        t = perf_counter_ns()
        self.conn.request("POST", "/v1/chat/completions", body, self.headers)
        resp = self.conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"{self.name}: HTTP {resp.status}: {resp.read()[:300]!r}")
        overhead = resp.getheader("x-trimtab-overhead-ms")
        if not stream:
            resp.read()
            took = (perf_counter_ns() - t) / 1e6
        else:
            took = _first_delta(resp, t)
            resp.read()
        return took, float(overhead) if overhead is not None else None


def _first_delta(resp: http.client.HTTPResponse, t: int) -> float:
    """ms from the request to the first SSE event with text in its delta."""
    while True:
        line = resp.readline()
        if not line:
            raise RuntimeError("the stream ended before any text")
        if not line.startswith(b"data: {"):
            continue
        chunk = json.loads(line[6:])
        for choice in chunk.get("choices") or ():
            if (choice.get("delta") or {}).get("content"):
                return (perf_counter_ns() - t) / 1e6


def body(prompt: str, stream: bool) -> bytes:
    req: dict[str, Any] = {
        "model": run.MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 300,
        "temperature": 0,
    }
    if stream:
        req["stream"] = True
        req["stream_options"] = {"include_usage": True}
    return json.dumps(req).encode()


def rounds(
    arms: list[Arm], n: int, send: Callable[[Arm], tuple[float, float | None]], seed: int
) -> tuple[Sample, Sample]:
    """n rounds, each arm once a round in a random order: latencies and overheads."""
    rng = random.Random(seed)
    took: Sample = {a.name: [] for a in arms}
    over: Sample = {a.name: [] for a in arms}
    order = list(arms)
    for _ in range(n):
        rng.shuffle(order)
        for arm in order:
            ms, overhead = send(arm)
            took[arm.name].append(ms)
            if overhead is not None:
                over[arm.name].append(overhead)
    return took, over


def pctl(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def diff_ci(a: list[float], b: list[float], seed: int, resamples: int = 2000) -> str:
    """median(b) - median(a) and its 95 % bootstrap interval over the paired rounds."""
    n = min(len(a), len(b))
    x, y = np.asarray(a[:n]), np.asarray(b[:n])
    point = float(np.median(y) - np.median(x))
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    draws = np.median(y[idx], axis=1) - np.median(x[idx], axis=1)
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return f"{point:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def report(title: str, samples: Sample, pairs: list[tuple[str, str]], seed: int) -> list[str]:
    lines = [f"**{title}** (ms)", "", "| arm | n | p50 | p99 |", "|---|---:|---:|---:|"]
    for name, values in samples.items():
        if values:
            lines.append(
                f"| {name} | {len(values)} | {statistics.median(values):.3f} | "
                f"{pctl(values, 0.99):.3f} |"
            )
    for off, on in pairs:
        if samples.get(off) and samples.get(on):
            lines.append(
                f"\n{on} - {off}, p50 [95 % CI]: {diff_ci(samples[off], samples[on], seed)}"
            )
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=3000, help="whole requests per arm")
    p.add_argument("--streams", type=int, default=300, help="streamed requests per arm")
    p.add_argument("--warmup", type=int, default=200, help="rounds of each kind not counted")
    p.add_argument("--prompt-bytes", type=int, default=2048)
    p.add_argument("--reply-bytes", type=int, default=1024)
    p.add_argument("--stream-gap-ms", type=float, default=0.0, help="the mock's, between chunks")
    p.add_argument("--before-src", type=Path, help="a source tree to run as the @before arms")
    p.add_argument("--seed", type=int, default=15)
    args = p.parse_args(argv)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    load = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="guardrails-interleaved-"))
    vars(run)["LOGS"] = tmp / "logs"  # the processes' logs, with the rest of this run's files
    (tmp / "logs").mkdir()
    mock, mock_port = run.start_mock(run.CPU_LOAD, args.stream_gap_ms, 50.0, args.reply_bytes)
    procs = [mock]
    os.sched_setaffinity(0, {run.CPU_LOAD})
    specs = [("off", False, None), ("on", True, None)]
    if args.before_src is not None:
        specs += [("off@before", False, args.before_src), ("on@before", True, args.before_src)]
    arms: list[Arm] = []
    try:
        for name, on, src in specs:
            saved = os.environ.get("PYTHONPATH")
            if src is not None:
                os.environ["PYTHONPATH"] = str(src.resolve())
            try:
                target = run.start_trimtab(
                    str(run.TRIMTAB_BIN), tmp, mock_port, run.CPU_TARGET, name=name, guardrails=on
                )
            finally:
                if saved is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = saved
            procs.append(target.proc)
            root = target.base_url.removesuffix("/v1")
            run.wait_http_ok(root + "/healthz", target.proc, 60, name)
            arms.append(Arm(name, target))
        prompt = run.prompt_text(args.prompt_bytes)
        whole, streamed = body(prompt, False), body(prompt, True)
        rounds(arms, args.warmup, lambda a: a.post(whole, False), args.seed)
        took, over = rounds(arms, args.rounds, lambda a: a.post(whole, False), args.seed)
        rounds(arms, args.warmup // 4, lambda a: a.post(streamed, True), args.seed)
        ttft, _ = rounds(arms, args.streams, lambda a: a.post(streamed, True), args.seed)
    finally:
        for proc in reversed(procs):
            run.stop_process(proc, 10)
        shutil.rmtree(tmp, ignore_errors=True)  # the gateways' configs, databases and logs
    end = os.getloadavg()
    pairs = [("off", "on"), ("off@before", "on@before"), ("on@before", "on")]
    command = shlex.join(
        ["bench/guardrails_interleaved.py", *(sys.argv[1:] if argv is None else argv)]
    )
    out = [
        f"Guardrails interleaved, {started}: `{command}`; load average {load[0]:.2f} at the "
        f"start, {end[0]:.2f} at the end; {len(arms)} gateways on CPU {run.CPU_TARGET}",
        "",
        *report("whole answers, client latency", took, pairs, args.seed),
        *report("whole answers, the gateway's x-trimtab-overhead-ms", over, pairs, args.seed),
        *report("streams, time to the first text delta", ttft, pairs, args.seed),
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
