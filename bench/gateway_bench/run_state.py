"""What the phases of one run share, and the processes it stops whatever happens."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway_bench.processes import Target, stop_process, worker_pids
from gateway_bench.settings import FOREIGN_CPU_WARN_PCT, W2, loud
from trimtab.testing.redis_server import RedisServer


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

    @property
    def logs(self) -> Path:
        """Where the processes it starts log: OUT/logs (--out)."""
        return Path(self.args.out) / "logs"

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
