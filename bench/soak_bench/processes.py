"""The processes a soak starts and watches: the mock upstream, ports, readiness, samples
from /proc, the machine, stopping trimtab and the mock."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soak_bench.settings import HOST, TRIMTAB, SetupError

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
