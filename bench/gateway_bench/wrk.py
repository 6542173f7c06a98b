"""The non-streaming load generator: wrk at a number of connections, its latencies and
the CPU each process spent per request."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from gateway_bench.payload import PAYLOAD
from gateway_bench.processes import CpuProbe, Target, pin_prefix
from gateway_bench.settings import WRK_SCRIPT, TargetError


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
