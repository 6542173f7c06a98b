"""The processes a run starts and watches: a target, ports, pinning, readiness over HTTP,
stopping, memory and CPU time from /proc, the CPU other processes use, a supervisor's
workers."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway_bench.settings import FOREIGN_CPU_WARN_PCT, HOST, TargetError, log


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
