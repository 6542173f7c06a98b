"""`trimtab serve --workers N`: N gateway processes on one port, under a supervisor.

The supervisor binds the port (so a taken port fails before anything starts), migrates
the store once, hands orphaned spill files to worker 0, and starts the workers. They
share the one listening socket: the kernel gives each new connection to a worker that is
accepting, so a worker that stops (or dies) loses no connection that another could take.
A worker that dies is started again; SIGTERM or Ctrl-C stops them all, each with the
draining stop of `cli/server.py`.

What one process keeps in memory is per worker: with `state.url` unset, rate limits and
budgets would each be counted N times over, so more than one worker then needs Redis
(`worker_problem`). Breakers, the response cache and `/metrics` are per worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from trimtab.config import Config

log = logging.getLogger("trimtab.workers")
QUICK_DEATH_S = 10.0  # a worker that dies this soon after its start counts as a failed start
FAILED_STARTS = 5  # in a row: give up rather than restart a worker that cannot run
STOP_WAIT_S = 60.0  # each worker's draining stop: keep-alive drain plus the graceful 30 s


def worker_problem(cfg: Config, workers: int) -> str | None:
    """Why this configuration cannot run as `workers` processes; None when it can."""
    if workers < 1:
        return f"--workers must be at least 1, not {workers}"
    if workers == 1 or not (cfg.limits or cfg.budgets):
        return None
    if cfg.state.url is None:
        return (
            f"{workers} workers would each count the rate limits and budgets on their own "
            "(state.url is unset, so counters live in each process): set state.url to a "
            "Redis URL to share them, or run one worker"
        )
    if cfg.state.processes < workers:
        return (
            f"state.processes is {cfg.state.processes}, but {workers} workers run on this "
            "host alone: while Redis is away each process enforces 1/processes of every "
            "limit and budget, so set state.processes to the number of trimtab processes "
            "on all hosts"
        )
    return None


def spill_path(cfg: Config, index: int) -> Path:
    """Worker `index`'s spill file: the configured one with `-wINDEX` before its suffix."""
    base = Path(cfg.telemetry.spill_path)
    return base.with_name(f"{base.stem}-w{index}{base.suffix}")


def worker_config(cfg: Config, index: int) -> Config:
    """The configuration of worker `index`: its own spill file (a spill file has one
    writer); the journal directory stays the one the configuration names, shared, since
    each segment is locked by the process that writes it."""
    telemetry = cfg.telemetry.model_copy(
        update={
            "spill_path": str(spill_path(cfg, index)),
            "journal_path": cfg.telemetry.journal_dir(),
        }
    )
    return cfg.model_copy(update={"telemetry": telemetry})


def orphan_spills(cfg: Config, workers: int) -> list[Path]:
    """Spill files no worker of this run will read: the single process's, and those of
    worker indexes from a run with more workers."""
    base = Path(cfg.telemetry.spill_path)
    found = [base] if base.exists() else []
    for path in sorted(base.parent.glob(f"{base.stem}-w*{base.suffix}")):
        index = path.name[len(base.stem) + 2 : len(path.name) - len(base.suffix)]
        if index.isdigit() and int(index) >= workers:
            found.append(path)
    return found


Target = Callable[[Config, socket.socket, int, str], None]


@dataclass
class Supervisor:
    """Starts `workers` processes running `target(config, sock, index, log_level)` and
    keeps them running until told to stop."""

    cfg: Config
    sock: socket.socket
    workers: int
    log_level: str
    target: Target
    procs: dict[int, BaseProcess] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)
    failed_starts: dict[int, int] = field(default_factory=dict)
    stopping: bool = False

    def run(self) -> int:
        """Until SIGTERM/SIGINT (exit 0) or a worker that keeps failing at start (exit 3)."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for index in range(self.workers):
                self._start(index)
            while not self.stopping:
                self._reap(timeout_s=0.5)
                if any(n >= FAILED_STARTS for n in self.failed_starts.values()):
                    log.error("a worker failed %d starts in a row: stopping", FAILED_STARTS)
                    self._stop_all()
                    return 3
            self._stop_all()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _start(self, index: int) -> None:
        context = multiprocessing.get_context("spawn")
        proc = context.Process(
            target=self.target,
            args=(worker_config(self.cfg, index), self.sock, index, self.log_level),
            name=f"trimtab-worker-{index}",
            daemon=False,
        )
        proc.start()
        self.procs[index] = proc
        self.started[index] = time.monotonic()
        log.info("worker %d started, pid %s", index, proc.pid)

    def _reap(self, timeout_s: float) -> None:
        sentinels = {p.sentinel: i for i, p in self.procs.items()}
        ready = multiprocessing.connection.wait(list(sentinels), timeout=timeout_s)
        if self.stopping:
            return
        for sentinel in ready:
            if not isinstance(sentinel, int):  # only process sentinels were passed
                continue
            index = sentinels[sentinel]
            proc = self.procs[index]
            proc.join()
            quick = time.monotonic() - self.started[index] < QUICK_DEATH_S
            self.failed_starts[index] = self.failed_starts.get(index, 0) + 1 if quick else 0
            log.error("worker %d (pid %s) exited with %s", index, proc.pid, proc.exitcode)
            if quick:
                time.sleep(min(2.0, 0.2 * 2 ** self.failed_starts[index]))
            if self.failed_starts[index] < FAILED_STARTS:
                self._start(index)

    def _stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for index, proc in self.procs.items():
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.error("worker %d did not stop within %gs: killed", index, STOP_WAIT_S)
                proc.kill()
                proc.join()
