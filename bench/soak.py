"""Soak test: one trimtab under sustained mixed load with failures injected all the time.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 200] [--concurrency 64]

On 127.0.0.1 only, it starts the fault-injecting mock upstream and ONE trimtab (keys on,
bodies recorded, SQLite in a temporary directory) whose models cover the failure paths:
a weighted pool with a failing deployment behind a breaker, retries on 503s, a flaky
upstream, hanging and slow-first-token upstreams behind short timeouts with fallbacks,
streams cut mid-way, the response cache and a rate-limited tenant. It then sends requests
at a fixed rate (open loop: request i is due at i / rate seconds, whatever happened to the
earlier ones; at most --concurrency in flight, and a request that has to wait for a slot
is counted as late), samples trimtab every 10 s (RSS, fds, threads, CPU, /metrics),
SIGTERMs it and checks that every request sent has a row in the store.

Results: Markdown on stdout and in bench/results/soak.md, JSON in bench/results/soak.json.
Exit status 0 when memory stayed flat, every request was recorded, every answer was one the
configuration allows and trimtab stopped cleanly; 1 otherwise; 2 when it could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TRIMTAB = Path(sys.executable).parent / "trimtab"

HOST = "127.0.0.1"
ADMIN_KEY = "tt-soak-admin-key"
APP_KEY = "tt-soak-app-key"
LIMITED_KEY = "tt-soak-limited-key"
BAD_KEY = "tt-soak-unknown-key"
LIMITED_RPM = 300
CACHE_PROMPTS = 40
CLIENT_TIMEOUT_S = 30.0
WARMUP_S = 60.0
MEMORY_GROWTH_LIMIT = 0.10
LATE_S = 0.05  # a request sent this much after it was due counts as late
FLAKY_RESET_S = 1.0

# The mock upstream, run in a subprocess. Not `python -m trimtab.testing.mock_upstream`
# itself: that keeps every request it received in a list (its memory would grow by
# hundreds of MiB over a soak) and its flaky-<k> counters never reset (the flaky model
# would fail only for its first k requests). This runs the same server and clears both
# every FLAKY_RESET_S, so the flaky upstream fails k times again every second.
MOCK_CODE = """
import signal, sys, threading
from trimtab.testing.mock_upstream import MockUpstream
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
mock = MockUpstream(sys.argv[1], int(sys.argv[2])).start()
print(f"mock upstream on {mock.url}", flush=True)
while not stop.wait(float(sys.argv[3])):
    mock.clear()
mock.stop()
"""

Wire = Literal["openai", "anthropic"]
OK = frozenset({"200 ok", "200 stream ok"})


@dataclass(frozen=True)
class Kind:
    """One class of traffic: which model, through which endpoint, what answers are allowed."""

    name: str
    share: float  # of all requests
    model: str
    what: str  # for the report
    wire: Wire = "openai"
    stream_share: float = 0.5
    key: str = APP_KEY
    body: Literal["ok", "bad"] = "ok"
    cached: bool = False
    expect: frozenset[str] = OK


KINDS: tuple[Kind, ...] = (
    Kind("healthy", 0.33, "ok", "healthy OpenAI-wire upstream"),
    Kind("claude", 0.05, "claude-ok", "healthy Anthropic upstream, OpenAI client (translated)"),
    Kind("messages", 0.05, "ok", "/v1/messages on the OpenAI upstream (translated)", "anthropic"),
    Kind("pool", 0.12, "pool", "pool: fail-500 (w1) + healthy (w3), breaker, retries 1"),
    Kind("retry503", 0.06, "retry503", "fail-503, retries 2, fallback to ok"),
    Kind("flaky", 0.06, "flaky", "flaky-3 (reset every 1 s), retries 2, fallback to ok"),
    Kind("hang", 0.02, "hang", "hang, timeout_s 1, ttft_timeout_s 0.5, fallback to ok"),
    Kind("slowfirst", 0.02, "slowfirst", "slow-first-3000, timeout_s 1, ttft 0.5, fallback"),
    Kind(
        "cut",
        0.05,
        "cut",
        "cut-stream (non-streamed: reset), no fallback",
        stream_share=0.8,
        expect=frozenset(
            {"502 upstream_connection_lost", "200 stream error upstream_connection_lost"}
        ),
    ),
    Kind("cached", 0.12, "cached", f"cache ttl 30 s, {CACHE_PROMPTS} prompts", cached=True),
    Kind(
        "limited",
        0.07,
        "ok",
        f"tenant 'limited' with rpm {LIMITED_RPM} (sent at ~840 rpm)",
        key=LIMITED_KEY,
        expect=OK | {"429 rate_limited"},
    ),
    Kind(
        "unknown",
        0.02,
        "no-such-model",
        "a model not configured",
        stream_share=0.0,
        expect=frozenset({"404 model_not_found"}),
    ),
    Kind(
        "badbody",
        0.02,
        "ok",
        "'messages' is not a list",
        stream_share=0.0,
        body="bad",
        expect=frozenset({"400 invalid_request"}),
    ),
    Kind(
        "badkey",
        0.01,
        "ok",
        "an unknown API key",
        stream_share=0.0,
        key=BAD_KEY,
        expect=frozenset({"401 invalid_api_key"}),
    ),
)

STREAM_ERROR_STATUS = {
    "upstream_connection_lost": 502,
    "upstream_error": 502,
    "upstream_invalid_response": 502,
    "upstream_unreachable": 502,
    "upstream_timeout": 504,
    "upstream_unavailable": 503,
}


def trimtab_config(tmp: Path, port: int, mock_port: int) -> dict[str, Any]:
    """The configuration under test."""
    price = {"input_per_mtok": 0.15, "output_per_mtok": 0.6}
    short = {"timeout_s": 1, "ttft_timeout_s": 0.5, "fallbacks": ["ok"], "pricing": price}
    return {
        "store": {"url": f"sqlite:///{tmp / 'soak.db'}"},
        "server": {"host": HOST, "port": port},
        "telemetry": {"spill_path": str(tmp / "spill.jsonl"), "record_bodies": True},
        "state": {"url": None},
        "providers": {
            "mock": {
                "kind": "openai",
                "base_url": f"http://{HOST}:{mock_port}/v1",
                "api_key": "sk-mock",
            },
            "mock-anthropic": {
                "kind": "anthropic",
                "base_url": f"http://{HOST}:{mock_port}",
                "api_key": "sk-ant-mock",
            },
        },
        "models": {
            "ok": {"provider": "mock", "model": "mock-gpt", "pricing": price},
            "claude-ok": {
                "provider": "mock-anthropic",
                "model": "mock-claude",
                "pricing": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
            },
            "pool": {
                "deployments": [
                    {"provider": "mock", "model": "fail-500", "weight": 1},
                    {"provider": "mock", "model": "mock-gpt-pool", "weight": 3},
                ],
                "retries": 1,
                "breaker": {
                    "failure_ratio": 0.5,
                    "min_requests": 10,
                    "window_s": 10,
                    "cooldown_s": 5,
                },
                "pricing": price,
            },
            "retry503": {
                "provider": "mock",
                "model": "fail-503",
                "retries": 2,
                "fallbacks": ["ok"],
                "pricing": price,
            },
            "flaky": {
                "provider": "mock",
                "model": "flaky-3",
                "retries": 2,
                "fallbacks": ["ok"],
                "pricing": price,
            },
            "hang": {"provider": "mock", "model": "hang", **short},
            "slowfirst": {"provider": "mock", "model": "slow-first-3000", **short},
            "cut": {"provider": "mock", "model": "cut-stream", "pricing": price},
            "cached": {
                "provider": "mock",
                "model": "mock-gpt-cached",
                "cache": {"ttl_s": 30},
                "pricing": price,
            },
        },
        "keys": [
            {"key": ADMIN_KEY, "tenant": "ops", "role": "admin", "owner": "soak"},
            {"key": APP_KEY, "tenant": "soak", "role": "app", "owner": "soak-client"},
            {"key": LIMITED_KEY, "tenant": "limited", "role": "app", "owner": "soak-client"},
        ],
        "limits": [{"scope": "tenant:limited", "rpm": LIMITED_RPM}],
        # never reached: every request of tenant soak reserves and settles against it
        "budgets": [{"scope": "tenant:soak", "period": "day", "usd": 10000, "on_exceed": "block"}],
    }


# -- processes and /proc ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"process {proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
            return
        time.sleep(0.1)
    raise SetupError(f"nothing listens on port {port} after {timeout_s:g} s")


class SetupError(RuntimeError):
    """The soak could not start."""


@dataclass
class ProcSample:
    rss_kib: int
    threads: int
    fds: int
    cpu_ticks: int


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_sample(pid: int) -> ProcSample | None:
    """VmRSS, threads, open fds and CPU ticks of a process; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields.get("VmRSS", "0 kB").split()[0])
    threads = int(fields.get("Threads", "0").strip())
    after = stat.rsplit(")", 1)[1].split()
    ticks = int(after[11]) + int(after[12])  # utime, stime (fields 14 and 15)
    return ProcSample(rss, threads, fds, ticks)


def loadavg() -> float:
    """The system's one-minute load average (other work on the machine shows here)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def machine_facts() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    total = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    return {
        "cpu_model": models[0].strip() if models else platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "mem_total_gib": round(int(total.group(1)) / 1024**2, 1) if total else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def trimtab_version() -> str:
    out = subprocess.run([str(TRIMTAB), "version"], capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or "unknown"


# -- /metrics --------------------------------------------------------------------------------

_PROM_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """metric name -> {label string: value} from the Prometheus text format."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _PROM_LINE.match(line)
        if m is None:
            continue
        with contextlib.suppress(ValueError):
            out.setdefault(m.group(1), {})[m.group(2) or ""] = float(m.group(3))
    return out


def metric_sum(metrics: dict[str, dict[str, float]], name: str) -> float | None:
    values = metrics.get(name)
    return sum(values.values()) if values else None


def metrics_digest(metrics: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The /metrics values the report shows."""

    def by_label(name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in metrics.get(name, {}).items():
            m = re.search(label + r'="([^"]*)"', labels)
            key = m.group(1) if m else labels
            out[key] = out.get(key, 0.0) + value
        return out

    return {
        "queue_depth": metric_sum(metrics, "trimtab_telemetry_queue_depth"),
        "recorded": metric_sum(metrics, "trimtab_telemetry_recorded_total"),
        "spilled": metric_sum(metrics, "trimtab_telemetry_spilled_total"),
        "write_errors": metric_sum(metrics, "trimtab_telemetry_write_errors_total"),
        "store_up": metric_sum(metrics, "trimtab_store_up"),
        "breaker_open": by_label("trimtab_breaker_open", "deployment"),
        "breaker_trips": by_label("trimtab_breaker_trips_total", "deployment"),
        "fallbacks": metric_sum(metrics, "trimtab_fallbacks_total"),
        "attempts": by_label("trimtab_upstream_attempts_total", "outcome"),
        "cache": by_label("trimtab_cache_total", "result"),
        "policy_refusals": by_label("trimtab_policy_refusals_total", "code"),
        "policy_state_errors": metric_sum(metrics, "trimtab_policy_state_errors_total"),
    }


# -- the load --------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    kind: str
    stream: bool
    outcome: str  # "200 ok", "200 stream ok", "200 stream error CODE", "429 rate_limited", ...
    status: int  # 0: no HTTP answer
    latency_s: float
    request_id: str | None
    error_code: str | None  # the code the client saw (stream or status error)


@dataclass
class Load:
    """Counters shared by the sender, the requests and the sampler."""

    sent: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    late: int = 0
    max_late_s: float = 0.0
    not_sent: int = 0
    results: list[Result] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    stopped_early: str | None = None


def bucket(res: Result) -> str:
    """The sample-table column an outcome belongs to."""
    if res.status == 0 or res.outcome.endswith("stream truncated") or "bad body" in res.outcome:
        return "other"
    if " stream error " in res.outcome:
        return "stream_err"
    if 200 <= res.status < 300:
        return "2xx"
    if 400 <= res.status < 500:
        return "4xx"
    return "5xx"


def request_for(
    kind: Kind, i: int, stream: bool, rng: random.Random
) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of request number i."""
    if kind.cached:
        prompt = f"soak cached question {rng.randrange(CACHE_PROMPTS)}"
    else:
        prompt = f"soak request {i} of kind {kind.name}: say something short"
    messages = [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"model": kind.model, "messages": messages, "max_tokens": 64}
    headers = {"content-type": "application/json", "x-trimtab-feature": f"soak-{kind.name}"}
    if kind.wire == "openai":
        path = "/v1/chat/completions"
        headers["authorization"] = f"Bearer {kind.key}"
        body["user"] = f"user-{i % 50}"
        if stream:
            body["stream"] = True
            if i % 2:
                body["stream_options"] = {"include_usage": True}
    else:
        path = "/v1/messages"
        headers["x-api-key"] = kind.key
        headers["anthropic-version"] = "2023-06-01"
        body["metadata"] = {"user_id": f"user-{i % 50}"}
        if stream:
            body["stream"] = True
    if kind.body == "bad":
        body["messages"] = "not a list"
    return path, json.dumps(body).encode(), headers


def error_code(raw: bytes, wire: Wire) -> str:
    """trimtab's error code from an error body (Anthropic bodies carry only the type)."""
    try:
        data = json.loads(raw)
        err = data["error"]
        if wire == "openai":
            return str(err.get("code") or err.get("type"))
        return "anthropic:" + str(err.get("type"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return "unparseable"


def _openai_token(data: bytes) -> bool:
    """Whether an OpenAI stream chunk carries content."""
    try:
        delta = json.loads(data)["choices"][0]["delta"]
    except (ValueError, KeyError, TypeError, IndexError):
        return False
    return isinstance(delta, dict) and bool(delta.get("content") or delta.get("tool_calls"))


def classify_stream(raw: bytes, wire: Wire) -> tuple[str, str | None]:
    """(outcome suffix, error code) of a streamed 200 answer."""
    events: list[tuple[str | None, bytes]] = []
    for block in raw.split(b"\n\n"):
        name: str | None = None
        data = b""
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data = line[5:].strip()
        if data:
            events.append((name, data))
    for name, data in events:
        is_error = name == "error" if wire == "anthropic" else data.startswith(b'{"error"')
        if is_error:
            code = error_code(data, wire)
            return f"stream error {code}", code
    if wire == "openai":
        done = bool(events) and events[-1][1] == b"[DONE]"
        tokens = any(_openai_token(d) for _, d in events)
    else:
        done = bool(events) and events[-1][0] == "message_stop"
        tokens = any(n == "content_block_delta" for n, _ in events)
    if not done:
        return "stream truncated", None
    return ("stream ok", None) if tokens else ("stream empty", None)


def classify_body(raw: bytes, wire: Wire) -> str:
    try:
        data = json.loads(raw)
        if wire == "openai":
            ok = isinstance(data["choices"][0]["message"], dict)
        else:
            ok = data["type"] == "message" and isinstance(data["content"], list)
    except (ValueError, KeyError, TypeError, IndexError):
        ok = False
    return "ok" if ok else "bad body"


async def one_request(
    session: aiohttp.ClientSession,
    base: str,
    kind: Kind,
    i: int,
    stream: bool,
    rng: random.Random,
    load: Load,
    slots: asyncio.Semaphore,
) -> None:
    path, body, headers = request_for(kind, i, stream, rng)
    t = time.monotonic()
    status = 0
    rid: str | None = None
    code: str | None = None
    try:
        async with session.post(base + path, data=body, headers=headers) as resp:
            status = resp.status
            rid = resp.headers.get("x-trimtab-request-id")
            raw = await resp.read()
        if status == 200 and stream:
            suffix, code = classify_stream(raw, kind.wire)
        elif status == 200:
            suffix = classify_body(raw, kind.wire)
        else:
            code = error_code(raw, kind.wire)
            suffix = code
        outcome = f"{status} {suffix}"
    except TimeoutError:
        outcome = f"{status or 'no answer'}: client timeout after {CLIENT_TIMEOUT_S:g} s"
    except aiohttp.ClientError as exc:
        outcome = f"{status or 'no answer'}: {type(exc).__name__}"
    finally:
        load.in_flight -= 1
        slots.release()
    res = Result(kind.name, stream, outcome, status, time.monotonic() - t, rid, code)
    load.results.append(res)
    load.outcomes[outcome] += 1


async def drive(
    base: str,
    rate: float,
    duration_s: float,
    concurrency: int,
    seed: int,
    load: Load,
    trimtab: subprocess.Popen[bytes],
    started: asyncio.Event,
) -> None:
    """Send rate * duration_s requests on a fixed schedule; stop by itself."""
    rng = random.Random(seed)
    total = int(rate * duration_s)
    weights = [k.share for k in KINDS]
    slots = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        started.set()
        hard_stop = t0 + duration_s + 60.0  # never run on long after the schedule
        for i in range(total):
            due = t0 + i / rate
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            if trimtab.poll() is not None:
                load.stopped_early = f"trimtab exited with {trimtab.returncode} during the load"
                load.not_sent = total - i
                break
            if loop.time() > hard_stop:
                load.stopped_early = "fell more than 60 s behind the schedule"
                load.not_sent = total - i
                break
            await slots.acquire()
            late = loop.time() - due
            if late > LATE_S:
                load.late += 1
            load.max_late_s = max(load.max_late_s, late)
            kind = rng.choices(KINDS, weights)[0]
            stream = rng.random() < kind.stream_share
            load.sent += 1
            load.in_flight += 1
            load.peak_in_flight = max(load.peak_in_flight, load.in_flight)
            task = loop.create_task(one_request(session, base, kind, i, stream, rng, load, slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=CLIENT_TIMEOUT_S + 10)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)


# -- sampling --------------------------------------------------------------------------------


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


# -- after the load --------------------------------------------------------------------------


def stop_trimtab(proc: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    if proc.poll() is not None:
        return {"stopped": "had exited", "returncode": proc.returncode}
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return {"stopped": f"SIGKILL (no exit {timeout_s:g} s after SIGTERM)", "returncode": None}
    return {
        "stopped": "SIGTERM",
        "returncode": proc.returncode,
        "exit_s": round(time.monotonic() - t, 2),
    }


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def check_rows(db: Path, spill: Path, load: Load) -> dict[str, Any]:
    """Rows in the store against requests sent, and each answer's id and status."""
    out: dict[str, Any] = {"sent": load.sent, "db_bytes": db.stat().st_size if db.exists() else 0}
    for suffix in ("-wal", "-shm"):
        extra = Path(str(db) + suffix)
        if extra.exists():
            out[f"db{suffix}_bytes"] = extra.stat().st_size
    out["spill_lines"] = len(spill.read_bytes().splitlines()) if spill.exists() else 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT id, status_code, error_type FROM requests").fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["ok"] = False
        return out
    by_id = {str(r[0]): (int(r[1]), r[2]) for r in rows}
    out["rows"] = len(rows)
    out["db_status"] = dict(Counter(f"{s} {e or ''}".strip() for s, e in by_id.values()))
    missing: list[str] = []
    mismatched: list[dict[str, Any]] = []
    no_id = 0
    for res in load.results:
        if res.request_id is None:
            no_id += 1
            continue
        row = by_id.get(res.request_id)
        if row is None:
            missing.append(res.request_id)
            continue
        if " stream error " in res.outcome:
            want = (STREAM_ERROR_STATUS.get(res.error_code or "", 502), res.error_code)
            good = row[0] == want[0] and row[1] == want[1]
        else:
            good = row[0] == res.status
        if not good:
            mismatched.append({"id": res.request_id, "client": res.outcome, "row": list(row)})
    out["answers_without_id"] = no_id
    out["ids_missing"] = len(missing)
    out["ids_missing_sample"] = missing[:10]
    out["status_mismatches"] = len(mismatched)
    out["status_mismatch_sample"] = mismatched[:10]
    out["ok"] = len(rows) == load.sent and not missing and not mismatched and not out["spill_lines"]
    return out


def log_findings(log: Path) -> dict[str, Any]:
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = text.splitlines()
    levels = Counter(m.group(1) for line in lines if (m := re.match(r"^([A-Z]+):? ", line)))
    noteworthy: Counter[str] = Counter()
    for line in lines:
        if re.match(r"^(WARNING|ERROR|CRITICAL):? ", line) or line.startswith("Traceback"):
            noteworthy[re.sub(r"\d+(\.\d+)?", "N", line)[:200]] += 1
    return {
        "lines": len(lines),
        "levels": dict(levels),
        "tracebacks": sum(1 for line in lines if line.startswith("Traceback")),
        "noteworthy": noteworthy.most_common(15),
        "tail": lines[-15:],
        # uvicorn's last words after a graceful stop (the lifespan shutdown flushed the queue)
        "shutdown_complete": "Application shutdown complete." in text,
    }


def pctl(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def memory_verdict(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    """RSS at the end of warm-up against the end, and a least-squares slope after warm-up."""
    points = [(s["t_s"], s["rss_mib"]) for s in samples if s["rss_mib"] is not None]
    out: dict[str, Any] = {"warmup_s": warmup_s, "limit_pct": MEMORY_GROWTH_LIMIT * 100}
    if not points:
        return {**out, "pass": False, "verdict": "**FAIL**: no RSS samples"}
    out["start_mib"] = points[0][1]
    out["max_mib"] = max(v for _, v in points)
    after = [(t, v) for t, v in points if t >= warmup_s - 1]
    out["end_mib"] = points[-1][1]
    if len(after) < 3:
        out["pass"] = None
        out["verdict"] = f"n/a: fewer than 3 samples after the {warmup_s:g} s warm-up"
        return out
    t1, v1 = after[0]
    out["at_warmup_t_s"] = t1
    out["at_warmup_mib"] = v1
    growth = (points[-1][1] - v1) / v1
    n = len(after)
    mt = statistics.fmean(t for t, _ in after)
    mv = statistics.fmean(v for _, v in after)
    sxx = sum((t - mt) ** 2 for t, _ in after)
    slope = sum((t - mt) * (v - mv) for t, v in after) / sxx if sxx else 0.0
    out["samples_after_warmup"] = n
    out["growth_pct"] = round(100 * growth, 2)
    out["slope_mib_per_10min"] = round(slope * 600, 2)
    out["pass"] = growth < MEMORY_GROWTH_LIMIT
    word = "PASS" if out["pass"] else "**FAIL**"
    out["verdict"] = (
        f"{word}: RSS {v1:.1f} MiB at {t1:g} s, {points[-1][1]:.1f} MiB at the end "
        f"({out['growth_pct']:+.2f} %, limit +{MEMORY_GROWTH_LIMIT * 100:g} %); "
        f"slope {out['slope_mib_per_10min']:+.2f} MiB per 10 min over {n} samples"
    )
    return out


def outcome_table(load: Load) -> list[dict[str, Any]]:
    """Per traffic class: counts of each outcome, which ones the configuration allows."""
    rows: list[dict[str, Any]] = []
    for kind in KINDS:
        mine = [r for r in load.results if r.kind == kind.name]
        counts = Counter(r.outcome for r in mine)
        lat = [r.latency_s * 1000 for r in mine if r.status]
        unexpected = {o: c for o, c in counts.items() if o not in kind.expect}
        rows.append(
            {
                "kind": kind.name,
                "model": kind.model,
                "what": kind.what,
                "n": len(mine),
                "streamed": sum(1 for r in mine if r.stream),
                "outcomes": dict(counts.most_common()),
                "unexpected": unexpected,
                "p50_ms": round(pctl(lat, 50) or 0, 1),
                "p99_ms": round(pctl(lat, 99) or 0, 1),
                "max_ms": round(max(lat), 1) if lat else None,
            }
        )
    return rows


# -- report ----------------------------------------------------------------------------------


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return out


def minute_rows(samples: list[dict[str, Any]], every_s: float) -> Iterator[dict[str, Any]]:
    """Samples at each whole minute, the first and the last; counts summed over the minute."""
    acc: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    span = 0.0
    prev_t = 0.0
    for i, s in enumerate(samples):
        for col in ("completed", "2xx", "4xx", "5xx", "stream_err", "other"):
            acc[col] += s[col]
        codes.update(s["4xx_by_code"])
        span += s["t_s"] - prev_t
        prev_t = s["t_s"]
        last = i == len(samples) - 1
        minute = round(s["t_s"] / every_s) * every_s % 60 == 0
        if i == 0 or minute or last:
            yield {**s, "sum": dict(acc), "codes": dict(codes), "span": span}
            acc.clear()
            codes.clear()
            span = 0.0


def render(res: dict[str, Any]) -> str:
    meta, load = res["meta"], res["load"]
    mem, rows = res["memory"], res["recording"]
    lines = [
        "# trimtab soak test",
        "",
        f"{meta['started']}; `{meta['command']}`; {meta['elapsed_s']:g} s in all.",
        "",
        f"Machine: {res['machine']['cpu_model']}, {res['machine']['logical_cpus']} logical CPUs "
        f"({res['machine']['cpus_usable']} usable), {res['machine']['mem_total_gib']} GiB RAM, "
        f"Linux {res['machine']['kernel']}, Python {res['machine']['python']}, "
        f"trimtab {meta['trimtab_version']}. Load average at start "
        f"{' '.join(res['machine']['loadavg_at_start'])}.",
        "",
        f"Load: {meta['rate']:g} req/s for {meta['minutes']:g} min (open loop, at most "
        f"{meta['concurrency']} in flight, client timeout {CLIENT_TIMEOUT_S:g} s), "
        f"samples every {meta['sample_s']:g} s. Everything on {HOST}: the mock upstream, "
        "one trimtab (keys on, bodies recorded, SQLite, in-process state), the client.",
        "",
        "## Verdicts",
        "",
    ]
    for name, verdict in res["verdicts"].items():
        lines.append(f"- **{name}**: {verdict}")
    lines += ["", "## Samples (each minute; counts are over the minute before)", ""]
    table = []
    for s in minute_rows(res["samples"], meta["sample_s"]):
        m = s["metrics"] if isinstance(s["metrics"], dict) else {}
        sm = s["sum"]
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(s["codes"].items())) or "-"
        rps = sm["completed"] / s["span"] if s["span"] else None
        table.append(
            [
                f"{s['t_s']:g}",
                sm["completed"],
                round(rps, 1) if rps is not None else None,
                sm["2xx"],
                codes,
                sm["5xx"],
                sm["stream_err"],
                sm["other"],
                s["in_flight"],
                s["rss_mib"],
                s["fds"],
                s["threads"],
                s["cpu_pct"],
                m.get("queue_depth"),
                m.get("recorded"),
                m.get("spilled"),
                s["loadavg_1m"],
            ]
        )
    lines += md_table(
        [
            "t (s)", "done", "req/s", "2xx", "4xx by code", "5xx", "stream err", "other",
            "in flight", "RSS MiB", "fds", "threads", "CPU %", "queue", "recorded", "spilled",
            "load avg",
        ],
        table,
    )  # fmt: skip
    lines += [
        "",
        "(`stream err`: a 200 stream that ended with an explicit error event; `other`: no "
        "HTTP answer, a truncated stream or an unparseable body; `recorded`/`spilled`: "
        "trimtab's /metrics counters; `CPU %`: trimtab's, of one core; `load avg`: the "
        "machine's one-minute load average.) All samples are in soak.json.",
        "",
        "## Totals",
        "",
        f"- sent {load['sent']:,} of {load['scheduled']:,} scheduled, {load['completed']:,} "
        f"answered; achieved {load['achieved_rps']:.1f} req/s over the schedule",
        f"- sent late (> {LATE_S * 1000:g} ms after due, waiting for a free slot): "
        f"{load['late']:,}; worst {load['max_late_ms']:.1f} ms; peak in flight "
        f"{load['peak_in_flight']}",
    ]
    if load["stopped_early"]:
        lines.append(f"- **stopped early**: {load['stopped_early']}")
    lines += ["", "### Outcomes by traffic class", ""]
    table = []
    for row in res["classes"]:
        outs = "; ".join(f"{o}: {c:,}" for o, c in row["outcomes"].items())
        bad = "; ".join(f"**{o}: {c}**" for o, c in row["unexpected"].items()) or "none"
        table.append(
            [row["kind"], row["what"], row["n"], row["streamed"], outs, bad,
             row["p50_ms"], row["p99_ms"]]
        )  # fmt: skip
    lines += md_table(
        ["class", "model / fault", "n", "streamed", "outcomes", "unexpected", "p50 ms", "p99 ms"],
        table,
    )
    lines += ["", "### Errors by class (everything not a plain success)", ""]
    errs = [(o, c) for o, c in load["outcomes"].items() if o not in OK]
    lines += md_table(["outcome (status code / stream event)", "count"], sorted(errs))
    m = res["final_metrics"]
    lines += [
        "",
        "### What trimtab did (its /metrics at the end)",
        "",
        f"- upstream attempts by outcome: {m.get('attempts')}",
        f"- fallbacks: {fmt(m.get('fallbacks'))}; breaker trips: {m.get('breaker_trips')}; "
        f"breakers open now: {m.get('breaker_open')}",
        f"- cache: {m.get('cache')}; policy refusals: {m.get('policy_refusals')}; "
        f"policy state errors: {fmt(m.get('policy_state_errors'))}",
        f"- telemetry: recorded {fmt(m.get('recorded'))}, spilled {fmt(m.get('spilled'))}, "
        f"write errors {fmt(m.get('write_errors'))}, queue depth {fmt(m.get('queue_depth'))}",
        "",
        "## Memory",
        "",
        f"- RSS at start {fmt(mem.get('start_mib'))} MiB, after warm-up "
        f"({fmt(mem.get('at_warmup_t_s'))} s) {fmt(mem.get('at_warmup_mib'))} MiB, at the end "
        f"{fmt(mem.get('end_mib'))} MiB, max {fmt(mem.get('max_mib'))} MiB",
        f"- growth after warm-up: {fmt(mem.get('growth_pct'))} % (limit "
        f"{mem['limit_pct']:g} %); least-squares slope over the samples after warm-up: "
        f"{fmt(mem.get('slope_mib_per_10min'))} MiB per 10 min",
        f"- open fds {res['fds']['first']} -> {res['fds']['last']} (max {res['fds']['max']}); "
        f"threads {res['threads']['first']} -> {res['threads']['last']}",
        f"- mock upstream RSS {fmt(res['mock_rss']['first'])} -> "
        f"{fmt(res['mock_rss']['last'])} MiB",
        "",
        "## Rows vs requests sent",
        "",
        f"- stop: {res['stop']}",
        f"- rows in the store {fmt(rows.get('rows'))} for {rows['sent']:,} requests sent; "
        f"spill file lines {rows['spill_lines']}",
        f"- answers whose `x-trimtab-request-id` has no row: {fmt(rows.get('ids_missing'))}; "
        f"rows whose status disagrees with what the client saw: "
        f"{fmt(rows.get('status_mismatches'))}; answers without an id (no HTTP answer): "
        f"{fmt(rows.get('answers_without_id'))}",
        f"- store size {rows['db_bytes'] / 1024**2:.1f} MiB (+ WAL "
        f"{rows.get('db-wal_bytes', 0) / 1024**2:.1f} MiB)",
    ]
    if rows.get("error"):
        lines.append(f"- **could not read the store**: {rows['error']}")
    if rows.get("ids_missing_sample"):
        lines.append(f"- missing ids, first: {rows['ids_missing_sample']}")
    if rows.get("status_mismatch_sample"):
        lines.append(f"- status mismatches, first: {rows['status_mismatch_sample']}")
    logs = res["log"]
    lines += [
        "",
        "## trimtab's log",
        "",
        f"{logs['lines']:,} lines; by level {logs['levels']}; tracebacks {logs['tracebacks']}.",
    ]
    if logs["noteworthy"]:
        lines += ["", "Warnings and errors (digits replaced by N), most frequent first:", "", "```"]
        lines += [f"{c:>7}  {line}" for line, c in logs["noteworthy"]]
        lines.append("```")
    if res["problems"]:
        lines += ["", "## Problems", ""]
        lines += [f"- {p}" for p in res["problems"]]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the load (10)")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second (200)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="most requests in flight (64: the mix's 1 s timeouts keep 10-16 in flight at "
        "200 req/s, so 16 would make the open loop wait)",
    )
    p.add_argument("--sample-s", type=float, default=10.0, help="sampling interval (10)")
    p.add_argument("--seed", type=int, default=1, help="traffic mix seed (1)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.concurrency < 1 or args.sample_s <= 0:
        p.error("--minutes, --rate, --sample-s must be positive and --concurrency at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not TRIMTAB.exists():
        print(f"{TRIMTAB} is missing: install the project first (make run)", file=sys.stderr)
        return 2
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="trimtab-soak-"))
    port, mock_port = free_port(), free_port()
    cfg_path = tmp / "trimtab.yaml"
    cfg_path.write_text(yaml.safe_dump(trimtab_config(tmp, port, mock_port), sort_keys=False))
    log_path = tmp / "trimtab.log"
    problems: list[str] = []
    res: dict[str, Any] = {
        "meta": {
            "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": shlex.join(["bench/soak.py", *(sys.argv[1:] if argv is None else argv)]),
            "minutes": args.minutes,
            "rate": args.rate,
            "concurrency": args.concurrency,
            "sample_s": args.sample_s,
            "seed": args.seed,
            "tmpdir": str(tmp),
            "trimtab_version": trimtab_version(),
        },
        "machine": machine_facts(),
        "config": trimtab_config(tmp, port, mock_port),
        "mix": [
            {
                "kind": k.name,
                "share": k.share,
                "model": k.model,
                "what": k.what,
                "wire": k.wire,
                "stream_share": k.stream_share,
                "expect": sorted(k.expect),
            }
            for k in KINDS
        ],
    }
    print(f"soak: temporary directory {tmp}", file=sys.stderr)
    mock = subprocess.Popen(
        [sys.executable, "-c", MOCK_CODE, HOST, str(mock_port), str(FLAKY_RESET_S)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "mock.log").open("wb"),
        cwd=tmp,
    )
    with log_path.open("wb") as log_file:
        trimtab = subprocess.Popen(
            [str(TRIMTAB), "serve", "--config", str(cfg_path), "--log-level", "info"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    base = f"http://{HOST}:{port}"
    try:
        try:
            wait_port(mock_port, mock, 30)
            wait_port(port, trimtab, 60)
            ready(base, 30)
        except SetupError as exc:
            print(f"soak: could not start: {exc}", file=sys.stderr)
            print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
            return 2
        print(
            f"soak: trimtab pid {trimtab.pid} on {base}, mock pid {mock.pid}; "
            f"{args.rate:g} req/s for {args.minutes:g} min",
            file=sys.stderr,
        )
        load, sampler = asyncio.run(soak(base, args, trimtab, mock))
        alive = trimtab.poll() is None
        res["stop"] = stop_trimtab(trimtab, 90)
    finally:
        stop_process(trimtab)
        stop_process(mock)
    samples = sampler.samples
    res["samples"] = samples
    scheduled = int(args.rate * args.minutes * 60)
    res["load"] = {
        "scheduled": scheduled,
        "sent": load.sent,
        "completed": len(load.results),
        "not_sent": load.not_sent,
        "achieved_rps": load.sent / (args.minutes * 60),
        "late": load.late,
        "max_late_ms": round(load.max_late_s * 1000, 1),
        "peak_in_flight": load.peak_in_flight,
        "stopped_early": load.stopped_early,
        "outcomes": dict(load.outcomes.most_common()),
    }
    res["classes"] = outcome_table(load)
    last_metrics = [s["metrics"] for s in samples if "error" not in s["metrics"]]
    res["final_metrics"] = last_metrics[-1] if last_metrics else {}
    res["memory"] = memory_verdict(samples, WARMUP_S)

    def series(key: str) -> dict[str, Any]:
        vals = [s[key] for s in samples if s[key] is not None]
        if not vals:
            return {"first": None, "last": None, "max": None}
        return {"first": vals[0], "last": vals[-1], "max": max(vals)}

    res["fds"], res["threads"], res["mock_rss"] = (
        series("fds"),
        series("threads"),
        series("mock_rss_mib"),
    )
    res["recording"] = check_rows(tmp / "soak.db", tmp / "spill.jsonl", load)
    res["log"] = log_findings(log_path)

    if not alive or load.stopped_early:
        problems.append(f"trimtab did not survive the load: {load.stopped_early or res['stop']}")
    # uvicorn re-raises the signal after its graceful shutdown: -SIGTERM is a clean exit
    clean_stop = (
        res["stop"].get("stopped") == "SIGTERM"
        and res["stop"].get("returncode") in (0, -signal.SIGTERM)
        and res["log"]["shutdown_complete"]
    )
    if not clean_stop:
        problems.append(f"trimtab did not stop cleanly on SIGTERM: {res['stop']}")
    unexpected = sum(sum(r["unexpected"].values()) for r in res["classes"])
    if unexpected:
        problems.append(f"{unexpected} answers the configuration does not allow (see the table)")
    if res["log"]["tracebacks"]:
        problems.append(f"{res['log']['tracebacks']} tracebacks in trimtab's log")
    if load.late > 0.01 * max(load.sent, 1):
        problems.append(
            f"{load.late} requests were sent late (a full --concurrency): not an open loop"
        )
    rec = res["recording"]
    rec_word = "PASS" if rec["ok"] else "**FAIL**"
    res["verdicts"] = {
        "memory": res["memory"]["verdict"],
        "recording": (
            f"{rec_word}: {fmt(rec.get('rows'))} rows for {rec['sent']:,} requests sent, "
            f"{fmt(rec.get('ids_missing'))} answered ids without a row, "
            f"{fmt(rec.get('status_mismatches'))} status mismatches, "
            f"{rec['spill_lines']} records left in the spill file"
        ),
        "answers": (
            "PASS: every answer is one the configuration allows"
            if not unexpected
            else f"**FAIL**: {unexpected} unexpected answers"
        ),
        "lifecycle": (
            f"{'PASS' if alive and clean_stop else '**FAIL**'}: alive through the load: "
            f"{alive}; stop: {res['stop']}; lifespan shutdown completed: "
            f"{res['log']['shutdown_complete']}"
        ),
    }
    res["problems"] = problems
    res["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    md = render(res)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.md").write_text(md + "\n")
    (args.out / "soak.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(md)
    ok = (
        res["memory"]["pass"] is not False and rec["ok"] and not unexpected and alive and clean_stop
    )
    if args.keep or not ok:
        print(f"\n(kept {tmp}: trimtab.log, trimtab.yaml, soak.db)", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


def ready(base: str, timeout_s: float) -> None:
    """Wait for /readyz to answer 200."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise SetupError(f"/readyz did not answer 200 within {timeout_s:g} s ({last})")


if __name__ == "__main__":
    sys.exit(main())
