"""trimtab's benchmark: added latency, throughput, TTFT, memory and recording, side by side.

One run starts a fast mock OpenAI upstream (bench/mock_upstream.py), trimtab (one process,
state in process), trimtab-w2 (`trimtab serve --workers 2`, state in a Redis the run starts)
and LiteLLM's proxy in front of the same mock, drives each with wrk (non-streaming) and an
aiohttp client (streaming TTFT), and reports, for every target at the same concurrency in the
same run, the latency that the gateway ADDS over calling the mock directly, and the CPU time
it spends per request next to the mock's.

    .venv/bin/python bench/run.py            # full run, ~10 s per measurement, ~3 minutes
    .venv/bin/python bench/run.py --quick    # smoke run, ~1 minute

Results: a Markdown table on stdout and in bench/results/latest.md, everything in
bench/results/latest.json, process logs in bench/results/logs/. See bench/README.md.

All traffic stays on 127.0.0.1. Exit status: 0 = ran (targets met or not), 1 = a hard failure
(a target errored, answered wrongly, or trimtab did not record every request), 2 = setup
problem (missing wrk or redis-server, LiteLLM install failed), 3 = --strict and a target was
missed.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import datetime as dt
import http.client
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from trimtab.testing.redis_server import RedisServer
from trimtab.testing.servers import ServerStartError, ServerUnavailable

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
LOGS = RESULTS / "logs"
MOCK_SCRIPT = BENCH_DIR / "mock_upstream.py"
WRK_SCRIPT = BENCH_DIR / "wrk_chat.lua"
LITELLM_VENV = BENCH_DIR / ".venv-litellm"
TRIMTAB_BIN = REPO / ".venv" / "bin" / "trimtab"

HOST = "127.0.0.1"
TRIMTAB_KEY = "tt-bench-key"
LITELLM_KEY = "sk-litellm-bench"  # LiteLLM wants master keys to start with "sk-"
MODEL = "bench-model"
SLOW_SUFFIX = "-slowstream"  # the mock spaces SSE chunks out for model names containing it
SHORT_PROMPT = "Say hello in five words."


@dataclass
class Payload:
    """What every request asks and every answer must be: the short prompt and the mock's
    greeting, or with --prompt-bytes/--reply-bytes a long prompt and the long answer the
    mock gives (learnt from the mock itself before any gateway is checked)."""

    prompt: str = SHORT_PROMPT
    max_tokens: int = 16
    content: str = "Hello from the mock upstream."  # bench/mock_upstream.py's greeting
    completion_tokens: int = 9


PAYLOAD = Payload()
# --prompt-bytes: a support ticket, cycled to the size asked for: sentences with order
# numbers, amounts, times and a version, and no personal data (the guardrails find nothing)
PROMPT_SENTENCES = (
    "Hello, I am writing about order 48213, which I placed on 21 November.",
    "The confirmation said it would arrive within 5 business days, but it has not come yet.",
    "The tracking page has shown the same status since Tuesday at 09:12.",
    "I paid 129.50 EUR including 7.95 EUR for express shipping, which now seems wasted.",
    "The app, version 2.4.1 on my phone, says the parcel is at the regional depot.",
    "Could you tell me whether it will be delivered this week or should be collected?",
    "If it is lost, I would prefer a replacement over a refund, size 42 in dark blue.",
    "Please also check whether the second item, the 3-pack of socks, was shipped at all.",
    "Thank you for your help, I have been a customer for about 6 years.",
)


def prompt_text(nbytes: int) -> str:
    """The short prompt, or a ticket of ``nbytes`` bytes (a word cut to fit)."""
    if nbytes <= 0:
        return SHORT_PROMPT
    text = ""
    n = 0
    while len(text) < nbytes:
        text += ("" if not text else " ") + PROMPT_SENTENCES[n % len(PROMPT_SENTENCES)]
        n += 1
    return text[:nbytes].rstrip()


CONCURRENCIES = (1, 16)
CPU_LOAD = 0  # wrk, the mock and the streaming client
CPU_TARGET = 1  # the gateway under test (one process; trimtab-w2 runs on every CPU)
W2 = "trimtab-w2"  # `trimtab serve --workers 2`, limits and budgets in Redis
W2_WORKERS = 2
TARGET_ORDER = ("direct", "trimtab", W2, "litellm")  # measured and shown in this order

# The targets the numbers are judged against: issue 11's goals (docs/benchmarks.md), for
# the one-process trimtab.
GOAL_CPU_VS_MOCK = 2.5  # gateway CPU per request / mock CPU per request, at 1 and at 16
GOAL_RPS_C16_VS_LITELLM = 35.0  # requests/s at 16 connections, x LiteLLM's in the same run
GOAL_ADDED_P50_C1_MS = 0.5
GOAL_ADDED_P99_C1_MS = 2.0
GOAL_ADDED_TTFT_MS = 0.5  # added time to first token, p50
GOAL_P99_C16_VS_LITELLM = 0.1
GOAL_RSS_MIB = 150.0

STREAM_CHECK_TRIES = 3
TTFT_BLOCK = 20  # streams per target before moving to the next target
TTFT_SETTLE_S = 0.05
FOREIGN_CPU_WARN_PCT = 10.0  # warn when other processes use more than this % of a core

LABELS = {
    "direct": "direct mock",
    "trimtab": "trimtab",
    W2: f"trimtab, {W2_WORKERS} workers",
    "litellm": "LiteLLM proxy",
}


def is_trimtab(name: str) -> bool:
    """Whether a target is one of ours (its failures are hard failures)."""
    return name in ("trimtab", W2)


class SetupError(RuntimeError):
    """The benchmark cannot run (missing tool, install failure)."""


class TargetError(RuntimeError):
    """A target failed to start or answered wrongly."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loud(msg: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!!! {msg}\n{bar}\n", flush=True)


# --------------------------------------------------------------------------- processes


@dataclass
class Target:
    name: str
    base_url: str  # e.g. http://127.0.0.1:1234/v1
    auth: str | None  # Authorization header value
    model: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    cmd: list[str] = field(default_factory=list)
    required_header: str | None = None
    overhead_header: str | None = None
    ok: bool = True
    error: str | None = None
    workdir: Path | None = None  # trimtab's: config, SQLite db, spill files
    # requests sent to this target, to cross-check trimtab's records
    sent: int = 0
    completed: int = 0

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pin_prefix(cpu: int | str | None) -> list[str]:
    """taskset for one CPU (an int) or a CPU list ("0,1"); nothing for None."""
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def tail(path: Path | None, n: int = 40) -> str:
    if path is None or not path.exists():
        return "(no log)"
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-n:])


def http_request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """One stdlib HTTP request; returns status, lower-cased headers, body."""
    assert url.startswith("http://127.0.0.1:"), url  # loopback only, by construction
    rest = url[len("http://") :]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, "/" + path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def wait_http_ok(
    url: str, proc: subprocess.Popen[bytes] | None, timeout: float, what: str
) -> float:
    """Poll until GET url answers 200; returns seconds waited."""
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise TargetError(f"{what} exited with status {proc.returncode} before it was ready")
        try:
            status, _, body = http_request("GET", url, timeout=2.0)
            if status == 200:
                return time.monotonic() - t0
            last = f"HTTP {status}: {body[:200]!r}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.1)
    raise TargetError(f"{what} not ready after {timeout:.0f} s (last: {last})")


def stop_process(proc: subprocess.Popen[bytes] | None, grace: float) -> dict[str, Any]:
    """SIGTERM the process group we created, wait, SIGKILL if needed.

    trimtab's workers run in process groups of their own (the supervisor stops them), so
    the SIGKILL fallback also kills every descendant seen before the SIGTERM."""
    if proc is None:
        return {"stopped": "not started"}
    if proc.poll() is not None:
        return {"stopped": "already exited", "returncode": proc.returncode}
    descendants = proc_tree(proc.pid)[1:]
    t0 = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
        return {
            "stopped": "SIGTERM",
            "returncode": proc.returncode,
            "stop_s": round(time.monotonic() - t0, 3),
        }
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in descendants:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return {"stopped": f"SIGKILL after {grace:.0f} s", "returncode": proc.returncode}


def proc_tree(pid: int) -> list[int]:
    """pid and all its descendants (via /proc/<pid>/task/*/children)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        task_dir = Path(f"/proc/{p}/task")
        with contextlib.suppress(OSError):
            for task in task_dir.iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


def mem_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (kB = KiB) summed over the process tree."""
    total = {"VmRSS": 0, "VmHWM": 0}
    for p in proc_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in total:
                    total[key] += int(value.split()[0])
    return total


def mem_mib(pid: int | None) -> dict[str, float] | None:
    if pid is None:
        return None
    kib = mem_kib(pid)
    return {"rss_mib": round(kib["VmRSS"] / 1024, 1), "hwm_mib": round(kib["VmHWM"] / 1024, 1)}


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int | None, tree: bool = True) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (tree), all threads."""
    if pid is None:
        return 0.0, 0.0
    user = system = 0
    for p in proc_tree(pid) if tree else [pid]:
        with contextlib.suppress(OSError, ValueError):
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            user += int(fields[11])
            system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def system_cpu() -> dict[str, float]:
    """Machine-wide CPU seconds from /proc/stat: user (incl. nice), system, steal, total."""
    vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = vals[:8]
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return {
        "user": (user + nice) / CLK_TCK,
        "system": (system + irq + softirq) / CLK_TCK,
        "steal": steal / CLK_TCK,
        "total": total / CLK_TCK,
    }


PF_KTHREAD = 0x00200000


def foreign_snapshot() -> dict[tuple[int, int], float]:
    """CPU seconds (user+system) of every user-space process outside this benchmark.

    Keyed by (pid, start time) so a recycled pid is not mistaken for the old process.
    Ours = this process and all its descendants (mock, gateways, wrk, spinners)."""
    ours = set(proc_tree(os.getpid()))
    out: dict[tuple[int, int], float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ours:
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            f = stat[stat.rindex(")") + 2 :].split()
            if int(f[6]) & PF_KTHREAD:  # kernel threads (softirq work for our traffic, ...)
                continue
            out[(int(entry), int(f[19]))] = (int(f[11]) + int(f[12])) / CLK_TCK
    return out


class CpuProbe:
    """CPU use of our processes, and of everything else, over an interval.

    ``foreign`` is the CPU used by user-space processes that are not part of the benchmark
    (e.g. a test suite running on the same machine), summed process by process from /proc.
    Processes that both start and exit inside the interval are missed, so it is a lower
    bound. (Machine-wide counters minus ours would be simpler but wrong here: at high packet
    rates the kernel charges much of our loopback work as softirq time to no process.)"""

    def __init__(self, watch: dict[str, int | None]) -> None:
        self.watch = watch
        self.t0 = time.monotonic()
        self.sys0 = system_cpu()
        self.f0 = foreign_snapshot()
        self.p0 = {k: self._times(k, pid) for k, pid in watch.items()}

    @staticmethod
    def _times(key: str, pid: int | None) -> tuple[float, float]:
        # "bench" is this process: its children (mock, gateways, wrk) are counted separately
        return cpu_times(pid, tree=key != "bench")

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        sys1 = system_cpu()
        p1 = {k: self._times(k, pid) for k, pid in self.watch.items()}
        f1 = foreign_snapshot()
        out: dict[str, float] = {}
        for k in self.watch:
            used = (p1[k][0] - self.p0[k][0]) + (p1[k][1] - self.p0[k][1])
            out[k] = round(100 * used / wall, 1)
        foreign = sum(cpu - self.f0.get(key, 0.0) for key, cpu in f1.items())
        out["foreign"] = round(max(0.0, 100 * foreign / wall), 1)
        out["steal"] = round(100 * (sys1["steal"] - self.sys0["steal"]) / wall, 1)
        return out


# --------------------------------------------------------------------------- machine facts


def pkg_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_facts(litellm_python: Path | None) -> dict[str, Any]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_total_gib = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    versions: dict[str, str | None] = {
        name: pkg_version(name)
        for name in ("trimtab", "uvicorn", "starlette", "aiohttp", "uvloop", "httptools", "orjson")
    }
    versions["litellm"] = None
    if litellm_python is not None and litellm_python.exists():
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            out = subprocess.run(
                [
                    str(litellm_python),
                    "-c",
                    "import importlib.metadata as m;"
                    "print(m.version('litellm'), m.version('uvicorn'))",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.split()
            if len(out) == 2:
                versions["litellm"] = out[0]
                versions["uvicorn (litellm venv)"] = out[1]
    wrk_version = None
    if shutil.which("wrk"):
        banner = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        wrk_version = banner.split("[")[0].replace("wrk", "").strip() or None
    redis_bin = shutil.which("redis-server")
    if redis_bin is not None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            banner = subprocess.run(
                [redis_bin, "--version"], capture_output=True, text=True, timeout=10
            ).stdout
            versions["redis-server"] = next(
                (w[2:] for w in banner.split() if w.startswith("v=")), None
            )
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "ram_gib": mem_total_gib,
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version,
        "versions": versions,
    }


# --------------------------------------------------------------------------- starting things


def start_mock(
    cpu: int | None, gap_ms: float, slow_gap_ms: float, reply_bytes: int = 0
) -> tuple[subprocess.Popen[bytes], int]:
    log_path = LOGS / "mock.log"
    cmd = [
        *pin_prefix(cpu),
        sys.executable,
        str(MOCK_SCRIPT),
        "--host",
        HOST,
        "--port",
        "0",
        "--stream-gap-ms",
        str(gap_ms),
        "--slow-gap-ms",
        str(slow_gap_ms),
        "--reply-bytes",
        str(reply_bytes),
    ]
    err = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("READY "):
        stop_process(proc, 2)
        raise SetupError(f"mock upstream did not start: {line!r}\n{tail(log_path)}")
    return proc, int(line.split()[1])


SPIN_CODE = """
import os
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
while True:
    pass
"""


def start_spinners(cpus: Sequence[int]) -> list[subprocess.Popen[bytes]]:
    """One SCHED_IDLE busy loop per CPU, so idle vCPUs never halt.

    On a VM whose idle vCPUs halt (cpuidle haltpoll with polling off, as here), waking a
    halted vCPU costs the hypervisor a reschedule: tens of microseconds, sometimes
    milliseconds. A SCHED_IDLE task yields to any normal task at once, so it keeps the vCPU
    running without taking CPU from the benchmark."""
    return [
        subprocess.Popen(
            ["taskset", "-c", str(cpu), sys.executable, "-c", SPIN_CODE],
            start_new_session=True,
        )
        for cpu in cpus
    ]


# --guardrails: the gateway's policy for every request, as docs/guardrails.md shows it: PII
# redacted both ways (streams too, one word late), injection blocked, a deny pattern each way
GUARDRAILS = (
    "guardrails:\n"
    "  mode: enforce\n"
    "  input:\n"
    "    pii: {action: redact}\n"
    "    injection: {action: block}\n"
    '    deny: ["(?i)ignore (all|previous) instructions"]\n'
    "  output:\n"
    "    pii: {action: redact}\n"
    '    deny: ["(?i)as an ai language model"]\n'
)


def trimtab_config(
    tmpdir: Path,
    mock_port: int,
    journal: bool = True,
    state_url: str | None = None,
    processes: int = 1,
    guardrails: bool = False,
) -> str:
    """The gateway's configuration; with ``state_url`` rate limits and budgets live in that
    Redis, shared by ``processes`` processes (as `serve --workers N` requires), else in the
    process."""
    state = (
        ""
        if state_url is None
        else "# limits and budgets shared by the workers\n"
        f'state: {{url: "{state_url}", processes: {processes}}}\n'
    )
    return (
        f'store: {{url: "sqlite:///{tmpdir}/bench.db"}}\n'
        "providers:\n"
        f'  mock: {{kind: openai, base_url: "http://{HOST}:{mock_port}/v1", api_key: sk-bench}}\n'
        "models:\n"
        f"  {MODEL}: {{provider: mock, model: mock-1, "
        "pricing: {input_per_mtok: 0.15, output_per_mtok: 0.6}}\n"
        "  # only for the one-off check that streams are forwarded chunk by chunk\n"
        f"  {MODEL}{SLOW_SUFFIX}: {{provider: mock, model: mock-1{SLOW_SUFFIX}}}\n"
        "keys:\n"
        f"  - {{key: {TRIMTAB_KEY}, tenant: bench, role: admin}}\n"
        "# one rate limit and one budget, as users run it: checked on every request, never hit\n"
        'limits: [{scope: "key:*", rpm: 100000000}]\n'
        'budgets: [{scope: "tenant:bench", period: day, usd: 1000000, on_exceed: block}]\n'
        "# full request logging: bodies recorded; the spill file only fills if the store lags\n"
        f'telemetry: {{record_bodies: true, spill_path: "{tmpdir}/spill.jsonl", '
        f"journal: {'true' if journal else 'false'}}}\n"
        f"{state}"
        f"{GUARDRAILS if guardrails else ''}"
    )


def start_trimtab(
    exe: str,
    tmpdir: Path,
    mock_port: int,
    cpu: int | str | None,
    journal: bool = True,
    *,
    name: str = "trimtab",
    workers: int = 1,
    state_url: str | None = None,
    guardrails: bool = False,
) -> Target:
    """Start `trimtab serve` (with ``workers`` > 1: a supervisor and its workers) in a
    directory of its own under ``tmpdir``: its config, SQLite db and spill files."""
    port = free_port()
    workdir = tmpdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "trimtab.yaml"
    cfg.write_text(trimtab_config(workdir, mock_port, journal, state_url, workers, guardrails))
    log_path = LOGS / f"{name}.log"
    cmd = [
        *pin_prefix(cpu),
        exe,
        "serve",
        "--config",
        str(cfg),
        "--host",
        HOST,
        "--port",
        str(port),
        *(["--workers", str(workers)] if workers > 1 else []),
    ]
    t = Target(
        name=name,
        base_url=f"http://{HOST}:{port}/v1",
        auth=f"Bearer {TRIMTAB_KEY}",
        model=MODEL,
        log_path=log_path,
        cmd=cmd,
        required_header="x-trimtab-request-id",
        overhead_header="x-trimtab-overhead-ms",
        workdir=workdir,
    )
    out = log_path.open("wb")
    env = dict(os.environ)
    t.proc = subprocess.Popen(
        cmd,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        env=env,
        start_new_session=True,
    )
    return t


def ensure_litellm(spec: str) -> Path:
    """Create bench/.venv-litellm with LiteLLM's proxy if it is not there yet."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    log(f"installing {spec!r} into {LITELLM_VENV} (one time, ~1 minute) ...")
    py = shutil.which("python3") or sys.executable
    install_log = LOGS / "litellm-install.log"
    with install_log.open("wb") as out:
        steps = [
            [py, "-m", "venv", str(LITELLM_VENV)],
            [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", spec],
        ]
        for step in steps:
            rc = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode
            if rc != 0:
                raise SetupError(
                    f"LiteLLM install failed ({shlex.join(step)} -> {rc}); see {install_log}\n"
                    f"{tail(install_log, 20)}"
                )
    if not exe.exists():
        raise SetupError(f"LiteLLM installed but {exe} is missing")
    return exe


def litellm_config(mock_port: int) -> str:
    return (
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        "      model: openai/mock-1\n"
        f"      api_base: http://{HOST}:{mock_port}/v1\n"
        "      api_key: sk-bench\n"
        f"  - model_name: {MODEL}{SLOW_SUFFIX}\n"
        "    litellm_params:\n"
        f"      model: openai/mock-1{SLOW_SUFFIX}\n"
        f"      api_base: http://{HOST}:{mock_port}/v1\n"
        "      api_key: sk-bench\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  set_verbose: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )


def start_litellm(exe: Path, tmpdir: Path, mock_port: int, cpu: int | None) -> Target:
    port = free_port()
    cfg = tmpdir / "litellm.yaml"
    cfg.write_text(litellm_config(mock_port))
    log_path = LOGS / "litellm.log"
    cmd = [
        *pin_prefix(cpu),
        str(exe),
        "--config",
        str(cfg),
        "--host",
        HOST,
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.update(
        {
            # keep LiteLLM off the network: use the bundled cost map, no telemetry
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "ERROR",
            "NO_PROXY": "*",
            "DATABASE_URL": "",
        }
    )
    env.pop("DATABASE_URL")
    t = Target(
        name="litellm",
        base_url=f"http://{HOST}:{port}/v1",
        auth=f"Bearer {LITELLM_KEY}",
        model=MODEL,
        log_path=log_path,
        cmd=cmd,
    )
    out = log_path.open("wb")
    t.proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmpdir, env=env, start_new_session=True
    )
    return t


# --------------------------------------------------------------------------- smoke checks


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


# --------------------------------------------------------------------------- wrk


def per_request_us(cpu_pct: float | None, rps: float) -> float | None:
    """CPU microseconds per request from a share of a core (%) at a rate (requests/s)."""
    if cpu_pct is None or rps <= 0:
        return None
    return round(cpu_pct / 100 / rps * 1e6, 1)


@dataclass
class WrkRun:
    target: str
    connections: int
    duration_s: float
    data: dict[str, Any]
    cpu: dict[str, float]

    @property
    def rps(self) -> float:
        return float(self.data["requests"]) / (float(self.data["duration_us"]) / 1e6)

    @property
    def raw(self) -> bool:
        """Whether wrk_chat.lua could undo wrk's coordinated-omission correction."""
        return self.data.get("raw_latency_us") is not None

    def pct_ms(self, p: str) -> float:
        """Per-request latency percentile (raw when available, else wrk's corrected one)."""
        src = self.data["raw_latency_us"] if self.raw else self.data["latency_us"]
        return float(src["percentiles"][p]) / 1000.0

    def corrected_pct_ms(self, p: str) -> float:
        return float(self.data["latency_us"]["percentiles"][p]) / 1000.0

    @property
    def errors(self) -> int:
        e = self.data["errors"]
        return int(sum(e.values())) + int(self.data["bad"])


def wrk_cmd(t: Target, conns: int, duration: float, cpu: int | None) -> list[str]:
    return [
        *pin_prefix(cpu),
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        t.chat_url,
    ]


def run_wrk(
    t: Target,
    conns: int,
    duration: float,
    cpu: int | None,
    watch: dict[str, int | None],
) -> WrkRun:
    env = dict(os.environ)
    env["BENCH_MODEL"] = t.model
    env["BENCH_EXPECT"] = PAYLOAD.content
    env["BENCH_PROMPT"] = PAYLOAD.prompt
    env["BENCH_MAX_TOKENS"] = str(PAYLOAD.max_tokens)
    env["BENCH_AUTH"] = t.auth or ""
    env["BENCH_HEADER"] = t.required_header or ""
    env["BENCH_OVERHEAD_HEADER"] = t.overhead_header or ""
    env["BENCH_CONNECTIONS"] = str(conns)
    cmd = wrk_cmd(t, conns, duration, cpu)
    probe = CpuProbe(watch)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
        # wait4 gives the CPU time wrk itself used (user + system).
        _, wstatus, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(wstatus)
        err.seek(0)
        err_text = err.read().decode(errors="replace")
    wall = time.monotonic() - probe.t0
    cpu_pct = probe.stop()
    cpu_pct["wrk"] = round(100 * (usage.ru_utime + usage.ru_stime) / wall, 1)
    text = out.decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise TargetError(
            f"wrk failed on {t.name} (rc={proc.returncode}): {shlex.join(cmd)}\n{text}\n{err_text}"
        )
    data = json.loads(line[len("WRKJSON ") :])
    run_s = data["duration_us"] / 1e6
    t.sent += int(data["sent"])
    t.completed += int(data["requests"])
    return WrkRun(t.name, conns, run_s, data, cpu_pct)


# --------------------------------------------------------------------------- streaming TTFT


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
    content: list[str] = []
    usage = None
    done = False
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
                    if first is None:
                        first = time.perf_counter()
                    content.append(piece)
            if obj.get("usage"):
                usage = obj["usage"]
    end = time.perf_counter()
    t.completed += 1
    text = "".join(content)
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


# --------------------------------------------------------------------------- recording check


def find_counts(obj: Any, path: str = "") -> list[tuple[str, int]]:
    """All integer fields that look like request counts, with their JSON path."""
    out: list[tuple[str, int]] = []
    names = {"count", "requests", "request_count", "n", "total", "total_requests", "calls"}
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(v, int) and not isinstance(v, bool) and str(k).lower() in names:
                out.append((p, v))
            else:
                out.extend(find_counts(v, p))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(find_counts(v, f"{path}[{i}]"))
    return out


def api_summary(t: Target) -> dict[str, Any]:
    url = f"{t.base_url.removesuffix('/v1')}/api/metrics/summary?window=1h&group_by=model"
    try:
        status, _, body = http_request("GET", url, headers=headers_for(t), timeout=30)
    except OSError as e:
        return {"url": url, "error": repr(e)}
    res: dict[str, Any] = {"url": url, "status": status}
    if status != 200:
        res["body"] = body[:500].decode(errors="replace")
        return res
    try:
        obj = json.loads(body)
    except ValueError:
        res["body"] = body[:500].decode(errors="replace")
        return res
    counts = find_counts(obj)
    res["count_fields"] = dict(counts)
    res["raw"] = obj if len(body) < 4000 else body[:4000].decode(errors="replace")
    return res


def sqlite_count(db: Path) -> dict[str, Any]:
    if not db.exists():
        return {"db": str(db), "error": "database file does not exist"}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            (n,) = con.execute("SELECT count(*) FROM requests").fetchone()
            cols = [r[1] for r in con.execute("PRAGMA table_info(requests)")]
        finally:
            con.close()
    except sqlite3.Error as e:
        return {"db": str(db), "error": repr(e)}
    return {"db": str(db), "rows": int(n), "columns": cols}


# --------------------------------------------------------------------------- report


def fmt(x: float | None, unit: str = "") -> str:
    if x is None or x != x:  # None or NaN
        return "—"
    if abs(x) >= 100:
        s = f"{x:,.0f}"
    elif abs(x) >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.3f}"
    return f"{s}{unit}"


def fmt_pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) else None


def render_markdown(res: dict[str, Any]) -> str:
    names = [n for n in TARGET_ORDER if n in res["targets"]]
    tg = res["targets"]
    added = res["added"]

    def load(n: str, c: int, key: str) -> float | None:
        r = tg[n].get("load", {}).get(f"c{c}")
        return None if r is None else _num(r.get(key))

    def add(n: str, key: str) -> float | None:
        return _num(added.get(n, {}).get(key))

    rows: list[tuple[str, list[str]]] = []
    for c in CONCURRENCIES:
        rows.append((f"p50 latency @{c} (ms)", [fmt(load(n, c, "p50_ms")) for n in names]))
        rows.append((f"p99 latency @{c} (ms)", [fmt(load(n, c, "p99_ms")) for n in names]))
        rows.append(
            (
                f"**added p50 @{c}** (ms)",
                ["—" if n == "direct" else fmt(add(n, f"c{c}_p50_ms")) for n in names],
            )
        )
        rows.append(
            (
                f"**added p99 @{c}** (ms)",
                ["—" if n == "direct" else fmt(add(n, f"c{c}_p99_ms")) for n in names],
            )
        )

    def sub(n: str, c: int, group: str, key: str) -> float | None:
        r = tg[n].get("load", {}).get(f"c{c}") or {}
        return _num((r.get(group) or {}).get(key))

    for c in CONCURRENCIES:
        rows.append(
            (
                f"p99 @{c}, wrk's CO-corrected (ms)",
                [fmt(sub(n, c, "wrk_corrected", "p99_ms")) for n in names],
            )
        )
    rows.append(("**requests/s @16**", [fmt(load(n, 16, "rps")) for n in names]))
    for c in CONCURRENCIES:
        rows.append(
            (
                f"gateway CPU @{c} (% of a core)",
                ["—" if n == "direct" else fmt_pct(load(n, c, "cpu_target_pct")) for n in names],
            )
        )
    rows.append(
        (
            "mock / wrk CPU @16 (% of a core)",
            [
                f"{fmt_pct(load(n, 16, 'cpu_mock_pct'))} / {fmt_pct(load(n, 16, 'cpu_wrk_pct'))}"
                for n in names
            ],
        )
    )
    if W2 in names:
        for c in CONCURRENCIES:
            rows.append(
                (
                    f"{W2}: CPU per worker @{c} (% of a core); Redis's",
                    [
                        " / ".join(fmt_pct(x) for x in (tg[n]["load"][f"c{c}"]["cpu_workers_pct"]))
                        + f"; {fmt_pct(load(n, c, 'cpu_redis_pct'))}"
                        if n == W2 and f"c{c}" in tg[n].get("load", {})
                        else "—"
                        for n in names
                    ],
                )
            )

    def gw_us(n: str, c: int) -> float | None:
        """The gateway's CPU per request; trimtab-w2's includes its Redis."""
        v = load(n, c, "cpu_gateway_us_per_request")
        return load(n, c, "cpu_target_us_per_request") if v is None else v

    for c in CONCURRENCIES:
        rows.append(
            (
                f"**CPU per request @{c}**, gateway / mock (µs)",
                [
                    "—"
                    if n == "direct"
                    else f"{fmt(gw_us(n, c))} / {fmt(load(n, c, 'cpu_mock_us_per_request'))}"
                    for n in names
                ],
            )
        )
        if W2 in names:
            rows.append(
                (
                    f"of which Redis @{c} (µs)",
                    [
                        fmt(load(n, c, "cpu_redis_us_per_request")) if n == W2 else "—"
                        for n in names
                    ],
                )
            )

    def ratio(n: str, c: int) -> str:
        gw, mock = gw_us(n, c), load(n, c, "cpu_mock_us_per_request")
        return "—" if n == "direct" or not gw or not mock else f"{gw / mock:.1f}x"

    for c in CONCURRENCIES:
        rows.append((f"**gateway CPU / mock CPU per request @{c}**", [ratio(n, c) for n in names]))
    rows.append(("steal @16 (% of a core)", [fmt_pct(load(n, 16, "steal_pct")) for n in names]))
    for c in CONCURRENCIES:
        if any(is_trimtab(n) for n in names):
            rows.append(
                (
                    f"x-trimtab-overhead-ms mean @{c}",
                    [
                        fmt(sub(n, c, "self_reported_overhead_ms", "mean"))
                        if is_trimtab(n)
                        else "—"
                        for n in names
                    ],
                )
            )
    rows.append(
        (
            "errors / bad responses (all load runs)",
            [str(tg[n].get("load_errors", "—")) for n in names],
        )
    )

    def ttft(n: str, key: str) -> float | None:
        return _num(tg[n].get("ttft", {}).get(key))

    rows.append(("TTFT p50 (ms)", [fmt(ttft(n, "p50_ms")) for n in names]))
    rows.append(("TTFT p99 (ms)", [fmt(ttft(n, "p99_ms")) for n in names]))
    rows.append(
        (
            "**added TTFT p50** (ms)",
            ["—" if n == "direct" else fmt(add(n, "ttft_p50_ms")) for n in names],
        )
    )
    rows.append(
        (
            "**added TTFT p99** (ms)",
            ["—" if n == "direct" else fmt(add(n, "ttft_p99_ms")) for n in names],
        )
    )
    rows.append(
        (
            "streams measured (bad)",
            [
                f"{tg[n].get('ttft', {}).get('n', '—')} ({tg[n].get('ttft', {}).get('bad', '—')})"
                for n in names
            ],
        )
    )

    def rss(n: str, key: str) -> float | None:
        m = tg[n].get("memory", {}).get(key)
        return None if m is None else m.get("rss_mib")

    rows.append(("RSS idle after start (MiB)", [fmt(rss(n, "idle")) for n in names]))
    rows.append(("RSS after the run (MiB)", [fmt(rss(n, "after")) for n in names]))
    rows.append(
        (
            "peak RSS, VmHWM (MiB)",
            [fmt((tg[n].get("memory", {}).get("after") or {}).get("hwm_mib")) for n in names],
        )
    )

    lines = [
        f"## Results — {res['meta']['started']}",
        "",
        f"Command: `{res['meta']['command']}`  ",
        f"Per measurement: {res['meta']['duration_s']} s after "
        f"{res['meta']['warmup_s']} s warm-up; "
        f"TTFT phase {res['meta']['ttft_duration_s']} s; pinning: {res['meta']['pinning']}",
        "",
        "| | " + " | ".join(LABELS[n] for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    lines += [
        "",
        f"Mock upstream capacity (direct, 16 connections, sharing its core with wrk): "
        f"{fmt(res.get('mock', {}).get('capacity_rps'))} requests/s.",
        "",
    ]
    if res["meta"].get("setup"):
        lines += [f"- {note}" for note in res["meta"]["setup"]] + [""]
    recs = [(n, res[k]) for n, k in RECORDING_KEYS.items() if res.get(k)]
    if recs:
        lines += [
            "### Every request recorded? (trimtab)",
            "",
            "| target | requests sent | requests completed "
            "| rows in `requests` (SQLite, after SIGTERM) | API summary count | verdict |",
            "|---|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {LABELS[n]} | {rec.get('sent')} | {rec.get('completed')} | "
            f"{rec.get('db_rows', '—')} | {rec.get('api_count', '—')} | {rec.get('verdict')} |"
            for n, rec in recs
        ]
        lines.append("")
    crit = res.get("criteria") or []
    if crit:
        lines += [
            "### Against the targets",
            "",
            "| criterion | goal | measured | |",
            "|---|---|---|---|",
        ]
        for c in crit:
            mark = {True: "PASS", False: "**FAIL**", None: "n/a"}[c["pass"]]
            lines.append(f"| {c['name']} | {c['goal']} | {c['measured']} | {mark} |")
        lines.append("")
    if res.get("problems"):
        lines += ["### Problems", ""] + [f"- {p}" for p in res["problems"]] + [""]
    m = res["machine"]
    v = m["versions"]
    lines += [
        "### Machine",
        "",
        f"- CPU: {m['cpu_model']}, {m['cores']} cores; RAM {m['ram_gib']} GiB; {m['os']}, "
        f"kernel {m['kernel']}",
        f"- Python {m['python']}; wrk {m['wrk']}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "",
    ]
    return "\n".join(lines)


def cpu_ratio(row: dict[str, Any] | None) -> float | None:
    """A load row's gateway CPU per request over the mock's, over the same requests
    (trimtab-w2's gateway figure includes its Redis)."""
    if not row:
        return None
    gw = _num(row.get("cpu_gateway_us_per_request"))
    if gw is None:
        gw = _num(row.get("cpu_target_us_per_request"))
    mock = _num(row.get("cpu_mock_us_per_request"))
    return None if gw is None or not mock else gw / mock


def evaluate(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The one-process trimtab against issue 11's goals (and the RSS and p99 @16 goals kept
    from before); trimtab-w2's figures as informative rows."""
    a = res["added"].get("trimtab")
    tg = res["targets"]
    crit: list[dict[str, Any]] = []

    def add(name: str, goal: str, measured: float | None, ok: bool | None, unit: str) -> None:
        crit.append(
            {
                "name": name,
                "goal": goal,
                "measured": fmt(measured, unit),
                "pass": ok,
                "value": measured,
            }
        )

    lite_rps = _num((tg.get("litellm", {}).get("load", {}).get("c16") or {}).get("rps"))
    rps = _num((tg.get("trimtab", {}).get("load", {}).get("c16") or {}).get("rps"))
    if a is not None:
        _goals_of_one_process(res, a, rps, lite_rps, add)
    w2 = tg.get(W2, {}).get("load", {})
    if w2:
        w2_rps = _num((w2.get("c16") or {}).get("rps"))
        rec_w2 = res.get("recording_w2") or {}
        vs = [
            f"{w2_rps / base:.2f} x {what}"
            for base, what in ((rps, "one process"), (lite_rps, "LiteLLM's"))
            if w2_rps is not None and base
        ]
        add(
            f"{W2}: requests/s @16, every request recorded (informative)",
            "every request recorded",
            w2_rps,
            bool(rec_w2.get("ok")),
            " rps"
            + (f" ({'; '.join(vs)})" if vs else "")
            + ("" if rec_w2.get("ok") else " (recording check failed)"),
        )
    return crit


def _goals_of_one_process(
    res: dict[str, Any],
    a: dict[str, Any],
    rps: float | None,
    lite_rps: float | None,
    add: Callable[[str, str, float | None, bool | None, str], None],
) -> None:
    """The one-process trimtab's rows of evaluate()."""
    tg = res["targets"]
    load = tg["trimtab"].get("load", {})
    for c in CONCURRENCIES:
        v = cpu_ratio(load.get(f"c{c}"))
        add(
            f"gateway CPU / mock CPU per request @{c}",
            f"<= {GOAL_CPU_VS_MOCK:g} x",
            v,
            None if v is None else v <= GOAL_CPU_VS_MOCK,
            " x",
        )
    rps_x = None if rps is None or not lite_rps else rps / lite_rps
    rec_ok = bool((res.get("recording") or {}).get("ok"))
    add(
        "requests/s @16 vs LiteLLM's, every request recorded",
        f">= {GOAL_RPS_C16_VS_LITELLM:g} x LiteLLM's"
        + ("" if lite_rps is None else f" ({fmt(lite_rps * GOAL_RPS_C16_VS_LITELLM)} rps)")
        + " and all recorded",
        rps,
        False if not rec_ok else None if rps_x is None else rps_x >= GOAL_RPS_C16_VS_LITELLM,
        " rps"
        + ("" if rps_x is None else f" ({rps_x:.1f} x)")
        + ("" if rec_ok else " (recording check failed)"),
    )
    v = a.get("c1_p50_ms")
    add(
        "added p50 @1",
        f"<= {GOAL_ADDED_P50_C1_MS} ms",
        v,
        None if v is None else v <= GOAL_ADDED_P50_C1_MS,
        " ms",
    )
    v = a.get("c1_p99_ms")
    add(
        "added p99 @1",
        f"<= {GOAL_ADDED_P99_C1_MS} ms",
        v,
        None if v is None else v <= GOAL_ADDED_P99_C1_MS,
        " ms",
    )
    v = a.get("ttft_p50_ms")
    add(
        "added TTFT p50",
        f"<= {GOAL_ADDED_TTFT_MS} ms",
        v,
        None if v is None else v <= GOAL_ADDED_TTFT_MS,
        " ms",
    )
    v = a.get("c16_p99_ms")
    lite = res["added"].get("litellm", {}).get("c16_p99_ms")
    ratio = None if v is None or not lite else v / lite
    add(
        "added p99 @16 vs LiteLLM's",
        f"< {GOAL_P99_C16_VS_LITELLM:g} x LiteLLM's"
        + ("" if lite is None else f" ({fmt(lite * GOAL_P99_C16_VS_LITELLM)} ms)"),
        v,
        None if ratio is None else ratio < GOAL_P99_C16_VS_LITELLM,
        " ms" + ("" if ratio is None else f" ({ratio:.3f} x)"),
    )
    mem = tg["trimtab"].get("memory", {})
    worst = max([m["rss_mib"] for m in (mem.get("idle"), mem.get("after")) if m] or [float("nan")])
    add(
        "RSS (idle and after the run)",
        f"< {GOAL_RSS_MIB:g} MiB",
        worst,
        None if worst != worst else worst < GOAL_RSS_MIB,
        " MiB",
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="trimtab vs direct mock vs LiteLLM: added latency, rps, TTFT, RSS, recording.",
    )
    p.add_argument("--quick", action="store_true", help="short smoke run (~1 minute)")
    p.add_argument("--duration", type=float, default=None, help="seconds per measurement (10)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds per measurement (2)")
    p.add_argument(
        "--ttft-duration",
        type=float,
        default=None,
        help="seconds of round-robin streaming requests for TTFT (default 2 x --duration)",
    )
    p.add_argument(
        "--targets",
        default=",".join(TARGET_ORDER),
        help=f"comma-separated subset of {','.join(TARGET_ORDER)} (default: all; direct is "
        f"always measured; {W2} is `trimtab serve --workers {W2_WORKERS}` on every CPU, its "
        "limits and budgets in a redis-server the run starts)",
    )
    p.add_argument(
        "--pin",
        choices=("split", "none"),
        default="split",
        help="split: wrk+mock+client on CPU 0, the gateway on CPU 1 (default); none: no taskset",
    )
    p.add_argument(
        "--spin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run a SCHED_IDLE busy loop on each CPU so idle vCPUs do not halt (default: off;"
        " on this VM it costs throughput)",
    )
    p.add_argument(
        "--stream-gap-ms",
        type=float,
        default=0.0,
        help="mock's delay between SSE chunks in the TTFT phase (0: whole stream at once)",
    )
    p.add_argument(
        "--slow-gap-ms",
        type=float,
        default=50.0,
        help="mock's delay between SSE chunks for the chunk-by-chunk streaming check",
    )
    p.add_argument(
        "--retry-budget",
        type=float,
        default=90.0,
        help="seconds after which disturbed measurements are no longer redone (90)",
    )
    p.add_argument("--litellm-spec", default="litellm[proxy]", help="pip spec for LiteLLM")
    p.add_argument("--startup-timeout", type=float, default=120.0)
    p.add_argument(
        "--trimtab-bin", default=str(TRIMTAB_BIN), help="the trimtab executable to benchmark"
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="redo a measurement up to N times if other processes disturbed it (2)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="wait up to S seconds for other processes to go idle before starting (0 = no)",
    )
    p.add_argument(
        "--no-journal",
        action="store_true",
        help="run trimtab with telemetry.journal: false, to measure what the journal costs",
    )
    p.add_argument(
        "--guardrails",
        action="store_true",
        help="run the trimtab targets with a gateway guardrail policy (PII redaction both "
        "ways, injection block, deny patterns), to measure what guardrails cost",
    )
    p.add_argument(
        "--prompt-bytes",
        type=int,
        default=0,
        help="send a prompt of this many bytes (a support ticket: sentences with a few "
        "figures, no personal data) instead of the 24-byte one",
    )
    p.add_argument(
        "--reply-bytes",
        type=int,
        default=0,
        help="have the mock answer with this many bytes of prose (one word a stream "
        "chunk) instead of its 5-word greeting",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (configs, SQLite db)")
    p.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 2.0
    if args.ttft_duration is None:
        args.ttft_duration = 2 * args.duration
    args.targets = [s.strip() for s in args.targets.split(",") if s.strip()]
    bad = set(args.targets) - set(TARGET_ORDER)
    if bad:
        p.error(f"unknown targets: {sorted(bad)}")
    if "direct" not in args.targets:
        args.targets.insert(0, "direct")
    return args


def setup_notes(
    targets: Sequence[str], all_cpus: str | None, guardrails: bool = False
) -> list[str]:
    """What differs between the trimtab targets, for the report."""
    notes: list[str] = []
    if guardrails:
        notes.append(
            "--guardrails: every trimtab target runs the gateway guardrail policy (PII "
            "redacted in and out, streams included; injection blocked; a deny pattern each way)"
        )
    if "trimtab" in targets:
        notes.append("trimtab: one process; rate limits and budgets in the process (no Redis)")
    if W2 in targets:
        where = f"on CPUs {all_cpus}" if all_cpus else "unpinned"
        notes.append(
            f"{W2}: `trimtab serve --workers {W2_WORKERS}` (a supervisor and {W2_WORKERS} "
            f"workers on one port), {where}, sharing them with wrk and the mock; the same "
            f"configuration plus `state: {{url: redis://127.0.0.1:PORT/0, processes: "
            f"{W2_WORKERS}}}`, a redis-server the run starts ({where}), as --workers needs "
            "with limits and budgets; its CPU per request is the supervisor's, the workers' "
            "and Redis's; its own SQLite db"
        )
    return notes


@contextlib.contextmanager
def managed(procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Stop every process we started, whatever happens."""
    old = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        for p in procs:
            stop_process(p, 10)
        signal.signal(signal.SIGTERM, old)


@dataclass
class Run:
    """State shared by the phases of one benchmark run."""

    args: argparse.Namespace
    res: dict[str, Any]
    tmpdir: Path
    cpu_load: int | None
    cpu_target: int | None
    mock_proc: subprocess.Popen[bytes] | None = None
    targets: list[Target] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    hard_fail: bool = False
    spinners: list[int] = field(default_factory=list)
    retry_deadline: float = 0.0  # time.monotonic() after which nothing is redone
    all_cpus: str | None = None  # taskset list for what runs on every CPU ("0,1")
    redis: RedisServer | None = None  # trimtab-w2's shared state

    def may_retry(self) -> bool:
        return time.monotonic() < self.retry_deadline

    def problem(self, msg: str, hard: bool) -> None:
        self.problems.append(msg)
        self.hard_fail = self.hard_fail or hard
        loud(msg)

    @property
    def live(self) -> list[Target]:
        return [t for t in self.targets if t.ok]

    def watch(self, active: Target | None) -> dict[str, int | None]:
        """Our processes, for CPU accounting: the active target, the idle ones, mock, us."""
        w: dict[str, int | None] = {"target": active.pid if active else None}
        w["mock"] = self.mock_proc.pid if self.mock_proc else None
        w["bench"] = os.getpid()
        if self.redis is not None and self.redis.running:
            w["redis"] = self.redis.pid
        if active is not None and active.name == W2 and active.pid is not None:
            for i, pid in enumerate(worker_pids(active.pid)):
                w[f"worker{i}"] = pid  # each also counted in "target" (the whole tree)
        for i, pid in enumerate(self.spinners):
            w[f"spinner{i}"] = pid
        for o in self.targets:
            if o is not active and o.pid is not None and o.proc and o.proc.poll() is None:
                w[o.name if active is None else f"idle_{o.name}"] = o.pid
        return w

    def check_quiet(self, what: str, cpu: dict[str, float]) -> None:
        if cpu.get("foreign", 0) > FOREIGN_CPU_WARN_PCT:
            self.problem(
                f"machine not quiet during {what}: other processes used {cpu['foreign']}% of a "
                "core; these numbers are disturbed",
                hard=False,
            )


def worker_pids(supervisor: int) -> list[int]:
    """The gateway workers among a `serve --workers` supervisor's children (not
    multiprocessing's resource tracker)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{supervisor}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                for child in (task / "children").read_text().split():
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                    if b"resource_tracker" not in cmdline:
                        found.append(int(child))
    return sorted(found)


def wait_quiet(max_wait: float, watch: dict[str, int | None]) -> float:
    """Wait (up to max_wait s) until processes outside ``watch`` use < 10 % of a core."""
    t0 = time.monotonic()
    while True:
        probe = CpuProbe(watch)
        time.sleep(1.0)
        busy = probe.stop()["foreign"]
        if busy < FOREIGN_CPU_WARN_PCT or time.monotonic() - t0 >= max_wait:
            return busy
        log(f"machine busy ({busy:.0f}% of a core used by other processes); waiting ...")
        time.sleep(2.0)


def phase_start(run: Run, litellm_exe: Path | None, procs: list[subprocess.Popen[bytes]]) -> None:
    """Start the mock, LiteLLM and trimtab; wait for readiness; smoke-test each target."""
    if run.args.spin:
        spinners = start_spinners(range(os.cpu_count() or 1))
        procs.extend(spinners)
        run.spinners = [p.pid for p in spinners]
        log(f"SCHED_IDLE spinners on every CPU (pids {run.spinners})")
    mock_proc, mock_port = start_mock(
        run.cpu_load, run.args.stream_gap_ms, run.args.slow_gap_ms, run.args.reply_bytes
    )
    procs.append(mock_proc)
    run.mock_proc = mock_proc
    log(f"mock upstream on :{mock_port} (pid {mock_proc.pid})")
    direct = Target("direct", f"http://{HOST}:{mock_port}/v1", None, "mock-1")
    run.targets.append(direct)
    if run.args.reply_bytes > 0:
        learn_answer(direct)
    if litellm_exe is not None:  # start first: it is the slow one to boot
        lt = start_litellm(litellm_exe, run.tmpdir, mock_port, run.cpu_target)
        assert lt.proc is not None
        procs.append(lt.proc)
        run.targets.append(lt)
        log(f"LiteLLM starting (pid {lt.proc.pid}): {shlex.join(lt.cmd)}")
    if "trimtab" in run.args.targets:
        tt = start_trimtab(
            run.args.trimtab_bin,
            run.tmpdir,
            mock_port,
            run.cpu_target,
            not run.args.no_journal,
            guardrails=run.args.guardrails,
        )
        assert tt.proc is not None
        procs.append(tt.proc)
        run.targets.append(tt)
        log(f"trimtab starting (pid {tt.proc.pid}): {shlex.join(tt.cmd)}")
    if W2 in run.args.targets:
        run.redis = start_redis(run.all_cpus)
        run.res["redis"] = {"url": run.redis.url, "pid": run.redis.pid, "cpus": run.all_cpus}
        log(f"redis-server on :{run.redis.port} (pid {run.redis.pid}) for {W2}'s state")
        w2 = start_trimtab(
            run.args.trimtab_bin,
            run.tmpdir,
            mock_port,
            run.all_cpus,
            not run.args.no_journal,
            name=W2,
            workers=W2_WORKERS,
            state_url=run.redis.url,
            guardrails=run.args.guardrails,
        )
        assert w2.proc is not None
        procs.append(w2.proc)
        run.targets.append(w2)
        log(f"{W2} starting (supervisor pid {w2.proc.pid}): {shlex.join(w2.cmd)}")
    run.targets.sort(key=lambda t: TARGET_ORDER.index(t.name))

    ready_paths = {"trimtab": "/healthz", W2: "/healthz", "litellm": "/health/liveliness"}
    for t in run.targets:
        entry: dict[str, Any] = {"label": LABELS[t.name], "cmd": shlex.join(t.cmd)}
        run.res["targets"][t.name] = entry
        try:
            if t.name in ready_paths:
                root = t.base_url.removesuffix("/v1")
                waited = wait_http_ok(
                    root + ready_paths[t.name], t.proc, run.args.startup_timeout, LABELS[t.name]
                )
                entry["ready_s"] = round(waited, 2)
                entry["memory"] = {"idle": mem_mib(t.pid)}  # before any request
            entry["smoke"] = smoke(t)
            # a stream that lands on a worker no request has warmed yet, or on a busy
            # machine, can start late once: up to three tries (a buffering gateway fails all)
            for attempt in range(1, STREAM_CHECK_TRIES + 1):
                held = 1 if run.args.guardrails and is_trimtab(t.name) else 0
                chk = stream_check(t, run.args.slow_gap_ms, held)
                chk["attempts"] = attempt
                if chk["incremental"]:
                    break
            entry["stream_check"] = chk
            log(
                f"{t.name}: ready and answering correctly; chunk-by-chunk streaming: "
                f"{'yes' if chk['incremental'] else 'NO'} (first chunk after "
                f"{chk['ttft_ms']:.1f} ms, stream done after {chk['total_ms']:.1f} ms)"
            )
            if not chk["incremental"]:
                run.problem(
                    f"{t.name} does not forward SSE chunks as they arrive: first content after "
                    f"{chk['ttft_ms']:.1f} ms, last after {chk['total_ms']:.1f} ms, with the "
                    f"upstream sending one every {run.args.slow_gap_ms:g} ms",
                    hard=is_trimtab(t.name),
                )
        except (TargetError, OSError, ValueError, KeyError) as e:
            t.ok = False
            t.error = str(e)
            entry["error"] = t.error
            entry["log_tail"] = tail(t.log_path)
            print(f"--- {t.name} log tail ({t.log_path}) ---\n{entry['log_tail']}\n---")
            run.problem(f"{t.name} failed its start/smoke check: {e}", hard=True)
        if t.name == W2 and t.ok and t.pid is not None:
            entry["workers"] = worker_pids(t.pid)
            if len(entry["workers"]) != W2_WORKERS:
                run.problem(
                    f"{W2}: {len(entry['workers'])} worker processes under the supervisor, "
                    f"not {W2_WORKERS}",
                    hard=True,
                )
    if not run.targets[0].ok:
        raise SetupError("the mock upstream itself answered wrongly; giving up")


def start_redis(cpus: str | None) -> RedisServer:
    """A throwaway redis-server (no persistence) on a free loopback port, on ``cpus``."""
    try:
        server = RedisServer().start()
    except (ServerUnavailable, ServerStartError) as e:
        raise SetupError(f"{W2} needs redis-server for its shared state: {e}") from e
    if cpus is not None:  # not on this process's CPU alone, which it inherited
        for task in Path(f"/proc/{server.pid}/task").iterdir():  # every thread
            with contextlib.suppress(OSError, ValueError):
                os.sched_setaffinity(int(task.name), {int(c) for c in cpus.split(",")})
    return server


def report_errors(run: Run, t: Target, conns: int, r: WrkRun, what: str) -> None:
    if r.errors:
        run.problem(
            f"{t.name} @{conns} ({what}): socket/status errors {r.data['errors']}, "
            f"{r.data['bad']} wrong responses; first: {r.data['bad_sample']!r}",
            hard=is_trimtab(t.name),
        )


def measure(run: Run, t: Target, conns: int) -> tuple[WrkRun, int, int]:
    """Warm up, then measure; if other processes disturbed it, wait for quiet and redo.

    Returns the least disturbed attempt, the number of attempts and the error count over
    all of them (warm-ups included)."""
    args = run.args
    best: WrkRun | None = None
    errors = 0
    attempts = 0
    for attempt in range(1 + args.retries):
        if attempt and not run.may_retry():
            log("    (retry budget spent: keeping the disturbed measurement)")
            break
        if attempt:
            log(f"    disturbed by other processes; waiting for quiet, then again ({attempt + 1})")
            wait_quiet(30, run.watch(None))
        watch = run.watch(t)
        if args.warmup > 0:
            w = run_wrk(t, conns, args.warmup, run.cpu_load, watch)
            errors += w.errors
            report_errors(run, t, conns, w, "warm-up")
        log(f"wrk: {t.name} @{conns} for {args.duration:g} s")
        r = run_wrk(t, conns, args.duration, run.cpu_load, watch)
        attempts += 1
        errors += r.errors
        report_errors(run, t, conns, r, "measurement")
        log(
            f"    {r.rps:,.0f} rps, p50 {r.pct_ms('50'):.3f} ms, p99 {r.pct_ms('99'):.3f} ms; "
            f"CPU% target {r.cpu.get('target')}, mock {r.cpu.get('mock')}, "
            f"wrk {r.cpu.get('wrk')}, other processes {r.cpu.get('foreign')}"
            + (
                f"; workers {[v for k, v in sorted(r.cpu.items()) if k.startswith('worker')]}, "
                f"redis {r.cpu.get('redis')}"
                if t.name == W2
                else ""
            )
        )
        if best is None or r.cpu["foreign"] < best.cpu["foreign"]:
            best = r
        if r.cpu["foreign"] <= FOREIGN_CPU_WARN_PCT or r.errors:
            break
    assert best is not None
    return best, attempts, errors


def phase_load(run: Run) -> None:
    """wrk at each concurrency over every live target, direct first."""
    assert run.mock_proc is not None
    args = run.args
    for conns in CONCURRENCIES:
        for t in run.live:
            try:
                r, attempts, errors = measure(run, t, conns)
            except TargetError as e:
                t.ok = False
                run.problem(f"{t.name}: wrk failed @{conns}: {e}", hard=True)
                continue
            entry = run.res["targets"][t.name]
            ov = r.data["overhead_header"]
            entry.setdefault("load", {})[f"c{conns}"] = {
                "connections": conns,
                "rps": round(r.rps, 1),
                "p50_ms": r.pct_ms("50"),
                "p75_ms": r.pct_ms("75"),
                "p90_ms": r.pct_ms("90"),
                "p99_ms": r.pct_ms("99"),
                "p999_ms": r.pct_ms("99.9"),
                "max_ms": r.data["latency_us"]["max"] / 1000,
                "mean_ms": round(
                    (r.data["raw_latency_us"] or r.data["latency_us"])["mean"] / 1000, 4
                ),
                "latency_kind": "raw" if r.raw else "wrk-corrected",
                "wrk_corrected": {
                    "p50_ms": r.corrected_pct_ms("50"),
                    "p99_ms": r.corrected_pct_ms("99"),
                    "p999_ms": r.corrected_pct_ms("99.9"),
                    "mean_ms": round(r.data["latency_us"]["mean"] / 1000, 4),
                    "interval_us": (r.data["raw_latency_us"] or {}).get("interval_us"),
                },
                "requests": r.data["requests"],
                "sent": r.data["sent"],
                "errors": r.data["errors"],
                "bad_responses": r.data["bad"],
                "bad_sample": r.data["bad_sample"],
                "cpu_target_pct": r.cpu.get("target") if t.pid else None,
                "cpu_mock_pct": r.cpu.get("mock"),
                "cpu_wrk_pct": r.cpu.get("wrk"),
                "cpu_pct": r.cpu,
                # CPU time per request, over the same requests: the mock answers every
                # request the gateway forwards, so the ratio is the gateway's cost in units
                # of the upstream's (issue 11's first goal)
                "cpu_target_us_per_request": per_request_us(r.cpu.get("target"), r.rps)
                if t.pid
                else None,
                "cpu_mock_us_per_request": per_request_us(r.cpu.get("mock"), r.rps),
                "steal_pct": r.cpu.get("steal"),
                "self_reported_overhead_ms": (
                    {"mean": round(ov["sum_ms"] / ov["n"], 4), "max": ov["max_ms"], "n": ov["n"]}
                    if ov["n"]
                    else None
                ),
                "wrk": shlex.join(wrk_cmd(t, conns, args.duration, run.cpu_load)),
            }
            row = entry["load"][f"c{conns}"]
            row["attempts"] = attempts
            row["cpu_gateway_us_per_request"] = row["cpu_target_us_per_request"]
            if t.name == W2:  # its state's cost is the gateway's: Redis counts too
                redis_pct = r.cpu.get("redis")
                row["cpu_redis_pct"] = redis_pct
                row["cpu_redis_us_per_request"] = per_request_us(redis_pct, r.rps)
                row["cpu_gateway_us_per_request"] = per_request_us(
                    (r.cpu.get("target") or 0.0) + (redis_pct or 0.0), r.rps
                )
                row["cpu_workers_pct"] = [
                    v for k, v in sorted(r.cpu.items()) if k.startswith("worker")
                ]
            entry["load_errors"] = entry.get("load_errors", 0) + errors
            run.check_quiet(f"{t.name} @{conns}", r.cpu)
            if not r.raw:
                run.problem(
                    f"{t.name} @{conns}: raw latencies unavailable ({r.data['raw_note']}); "
                    "reporting wrk's coordinated-omission-corrected percentiles instead",
                    hard=False,
                )
            time.sleep(0.5)
    mock_c16 = run.res["targets"]["direct"].get("load", {}).get("c16")
    run.res["mock"] = {"capacity_rps": mock_c16["rps"] if mock_c16 else None}


def phase_ttft(run: Run) -> None:
    live = run.live
    log(
        f"TTFT: {len(live)} targets round-robin, one stream at a time, {run.args.ttft_duration:g} s"
    )
    best: tuple[dict[str, StreamSamples], dict[str, float]] | None = None
    for attempt in range(1 + run.args.retries):
        if attempt and not run.may_retry():
            log("    (retry budget spent: keeping the disturbed measurement)")
            break
        if attempt:
            log(f"    disturbed by other processes; waiting for quiet, then again ({attempt + 1})")
            wait_quiet(30, run.watch(None))
        probe = CpuProbe(run.watch(None))
        got = asyncio.run(ttft_phase(live, run.args.ttft_duration, warmup=5))
        cpu = probe.stop()
        if any(s.bad for s in got.values()):  # never hide a wrong answer behind a retry
            best = (got, cpu)
            break
        if best is None or cpu["foreign"] < best[1]["foreign"]:
            best = (got, cpu)
        if cpu["foreign"] <= FOREIGN_CPU_WARN_PCT:
            break
    assert best is not None
    samples, cpu = best
    run.res["ttft_cpu_pct"] = cpu
    run.check_quiet("the TTFT phase", cpu)
    for t in live:
        s = samples[t.name]
        run.res["targets"][t.name]["ttft"] = {
            "n": len(s.ttft_ms),
            "bad": s.bad,
            "bad_sample": s.bad_sample,
            "p50_ms": round(pctl(s.ttft_ms, 50), 4),
            "p90_ms": round(pctl(s.ttft_ms, 90), 4),
            "p99_ms": round(pctl(s.ttft_ms, 99), 4),
            "max_ms": round(max(s.ttft_ms), 4) if s.ttft_ms else None,
            "mean_ms": round(statistics.fmean(s.ttft_ms), 4) if s.ttft_ms else None,
            "total_p50_ms": round(pctl(s.total_ms, 50), 4),
            "self_reported_overhead_p50_ms": (
                round(pctl(s.overhead_ms, 50), 4) if s.overhead_ms else None
            ),
            "samples_ms": [round(x, 4) for x in s.ttft_ms],
        }
        log(
            f"    {t.name}: TTFT p50 {pctl(s.ttft_ms, 50):.3f} ms, p99 {pctl(s.ttft_ms, 99):.3f} "
            f"ms over {len(s.ttft_ms)} streams"
        )
        if s.bad:
            run.problem(
                f"{t.name}: {s.bad} bad streams; first: {s.bad_sample}", hard=is_trimtab(t.name)
            )


def compute_added(run: Run) -> None:
    """Added latency = target minus direct, same concurrency, same run."""
    d = run.res["targets"]["direct"]
    for t in run.targets:
        if t.name == "direct":
            continue
        e = run.res["targets"][t.name]
        a: dict[str, float] = {}
        for c in CONCURRENCIES:
            tl, dl = e.get("load", {}).get(f"c{c}"), d.get("load", {}).get(f"c{c}")
            if tl and dl:
                a[f"c{c}_p50_ms"] = round(tl["p50_ms"] - dl["p50_ms"], 4)
                a[f"c{c}_p99_ms"] = round(tl["p99_ms"] - dl["p99_ms"], 4)
        if "ttft" in e and "ttft" in d:
            a["ttft_p50_ms"] = round(e["ttft"]["p50_ms"] - d["ttft"]["p50_ms"], 4)
            a["ttft_p99_ms"] = round(e["ttft"]["p99_ms"] - d["ttft"]["p99_ms"], 4)
        if a:
            run.res["added"][t.name] = a


RECORDING_KEYS = {"trimtab": "recording", W2: "recording_w2"}  # where each goes in the json
STOP_GRACE_S = {"trimtab": 30.0, W2: 90.0}  # the supervisor stops its workers one by one


def recording_verdict(sent: int, completed: int, rows: int | None, error: str | None) -> str:
    """The recording check's verdict ("PASS: ..." or "**FAIL**: ...") from the requests sent
    to a gateway, those that completed, and the rows its store holds after its stop.

    A request wrk had written when its run ended, but whose answer it did not wait for, may
    or may not have been served: rows between completed and sent pass."""
    if rows is None:
        return f"**FAIL**: could not count rows ({error})"
    if rows == sent:
        return "PASS: every request sent was recorded"
    if completed <= rows <= sent:
        return (
            f"PASS: every completed request recorded ({sent - rows} that wrk cut off "
            "at the end of a run were not)"
        )
    return f"**FAIL**: {rows} rows for {completed} completed / {sent} sent"


def spill_files(workdir: Path) -> list[Path]:
    """A gateway's spill files: the single process's and each worker's (spill-wN.jsonl)."""
    return sorted(p for p in workdir.glob("spill*.jsonl") if p.is_file())


def phase_recording(run: Run) -> None:
    """Stop each trimtab target gracefully and compare its recorded rows with what we sent."""
    for tt in run.targets:
        if is_trimtab(tt.name):
            run.res[RECORDING_KEYS[tt.name]] = check_recording(run, tt)


def check_recording(run: Run, tt: Target) -> dict[str, Any]:
    """SIGTERM (the supervisor, for trimtab-w2: it stops each worker with its draining
    stop), then count the rows in the target's own SQLite db."""
    assert tt.workdir is not None
    rec: dict[str, Any] = {"target": tt.name, "sent": tt.sent, "completed": tt.completed}
    if tt.proc is not None and tt.proc.poll() is None:
        time.sleep(1.0)
        rec["api"] = api_summary(tt)
        counts = rec["api"].get("count_fields") or {}
        if "total.count" in counts:
            rec["api_count"] = counts["total.count"]
        elif counts:
            rec["api_count"] = max(counts.values())
        grace = STOP_GRACE_S[tt.name]
        rec["stop"] = stop_process(tt.proc, grace)
        log(f"{tt.name} stopped: {rec['stop']}")
        if rec["stop"].get("stopped") != "SIGTERM":
            run.problem(
                f"{tt.name} did not stop on SIGTERM within {grace:g} s: {rec['stop']}", hard=True
            )
        elif rec["stop"].get("returncode") not in (0, -signal.SIGTERM):
            run.problem(
                f"{tt.name} exited with status {rec['stop']['returncode']} on SIGTERM", hard=False
            )
    else:
        rec["stop"] = {"stopped": "had exited", "returncode": tt.proc and tt.proc.returncode}
        run.problem(f"{tt.name} exited during the run: {rec['stop']}", hard=True)
    rec["sqlite"] = sqlite_count(tt.workdir / "bench.db")
    rec["spill_lines"] = sum(len(f.read_bytes().splitlines()) for f in spill_files(tt.workdir))
    if rec["spill_lines"]:
        run.problem(
            f"{tt.name} left {rec['spill_lines']} records in its spill files after stopping",
            hard=False,
        )
    rows = rec["sqlite"].get("rows")
    rec["db_rows"] = rows
    rec["verdict"] = recording_verdict(tt.sent, tt.completed, rows, rec["sqlite"].get("error"))
    rec["ok"] = rec["verdict"].startswith("PASS")
    log(
        f"{tt.name} recording: sent {tt.sent}, completed {tt.completed}, rows {rows} -> "
        f"{rec['verdict']}"
    )
    if not rec["ok"]:
        run.problem(f"{tt.name} RECORDING MISMATCH: {rec['verdict']}", hard=True)
    return rec


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    PAYLOAD.prompt = prompt_text(args.prompt_bytes)
    global RESULTS, LOGS
    RESULTS = args.out
    LOGS = RESULTS / "logs"
    LOGS.mkdir(parents=True, exist_ok=True)

    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. On Debian/Ubuntu: sudo apt-get install -y wrk\n"
            "(then re-run: make bench)",
            file=sys.stderr,
        )
        return 2
    if any(is_trimtab(n) for n in args.targets) and not Path(args.trimtab_bin).exists():
        loud(f"{args.trimtab_bin} is missing: install the project first (pip install -e .)")
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    split = args.pin == "split" and len(cpus) >= 2 and shutil.which("taskset")
    cpu_load = CPU_LOAD if split else None
    cpu_target = CPU_TARGET if split else None
    all_cpus = ",".join(map(str, cpus)) if split else None
    pinning = (
        f"taskset: wrk, mock upstream and the TTFT client on CPU {CPU_LOAD}; "
        f"the gateway under test on CPU {CPU_TARGET}"
        + (
            f", except {W2} (supervisor and workers) and its redis-server, on CPUs {all_cpus}"
            if W2 in args.targets
            else ""
        )
        if split
        else "none (the kernel schedules everything on both cores)"
    )
    setup = setup_notes(args.targets, all_cpus, args.guardrails)
    if split:
        os.sched_setaffinity(0, {CPU_LOAD})  # this process runs the streaming client

    litellm_exe: Path | None = None
    if "litellm" in args.targets:
        try:
            litellm_exe = ensure_litellm(args.litellm_spec)
        except SetupError as e:
            loud(str(e))
            return 2

    if args.wait_quiet > 0:
        busy = wait_quiet(args.wait_quiet, {"bench": os.getpid()})
        if busy >= FOREIGN_CPU_WARN_PCT:
            loud(f"the machine is busy ({busy:.0f}% of a core in use); results will be disturbed")
    t_start = time.monotonic()
    t_wall = time.time()
    tmpdir = Path(tempfile.mkdtemp(prefix="trimtab-bench-"))
    if not args.keep:  # also on Ctrl-C or an unexpected error
        atexit.register(shutil.rmtree, tmpdir, True)
    res: dict[str, Any] = {
        "meta": {
            "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": shlex.join(["bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "ttft_duration_s": args.ttft_duration,
            "concurrencies": list(CONCURRENCIES),
            "pinning": pinning,
            "stream_gap_ms": args.stream_gap_ms,
            "slow_gap_ms": args.slow_gap_ms,
            "prompt_bytes": len(PAYLOAD.prompt.encode()),
            "reply_bytes": args.reply_bytes,
            "guardrails": args.guardrails,
            "spin": args.spin,
            "tmpdir": str(tmpdir),
            "setup": setup,
        },
        "machine": machine_facts(LITELLM_VENV / "bin" / "python" if litellm_exe else None),
        "targets": {},
        "added": {},
    }
    run = Run(args, res, tmpdir, cpu_load, cpu_target, all_cpus=all_cpus)
    run.retry_deadline = time.monotonic() + args.retry_budget
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with managed(procs):
            phase_start(run, litellm_exe, procs)
            phase_load(run)
            phase_ttft(run)
            for t in run.live:
                if t.pid is not None:
                    res["targets"][t.name].setdefault("memory", {})["after"] = mem_mib(t.pid)
            compute_added(run)
            phase_recording(run)
    except SetupError as e:
        loud(str(e))
        return 2
    finally:  # after the gateways: a worker's stop may still release budget reservations
        if run.redis is not None:
            run.redis.stop()
    if run.mock_proc is not None and run.mock_proc.stdout is not None:
        with contextlib.suppress(ValueError, IndexError, OSError):
            last = run.mock_proc.stdout.read().decode().strip().splitlines()[-1]
            res.setdefault("mock", {})["final_stats"] = json.loads(last)

    res["criteria"] = evaluate(res)
    res["problems"] = run.problems
    res["meta"]["elapsed_s"] = round(time.monotonic() - t_start, 1)
    md = render_markdown(res)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(md + "\n")
    (args.out / "latest.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    # every run also kept under its UTC start time, so runs can be compared later
    dated = args.out / "runs" / time.strftime("%Y-%m-%dT%H%MZ", time.gmtime(t_wall))
    dated.parent.mkdir(exist_ok=True)
    dated.with_suffix(".md").write_text(md + "\n")
    dated.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    print()
    print(md)
    print(
        f"(written {args.out / 'latest.md'}, latest.json and {dated}.md/.json; "
        f"{res['meta']['elapsed_s']} s)"
    )
    if args.keep:
        print(f"(kept {tmpdir})")
    if run.hard_fail:
        loud("BENCHMARK HAD HARD FAILURES: see 'Problems' above")
        return 1
    if args.strict and any(c["pass"] is False for c in res["criteria"]):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
