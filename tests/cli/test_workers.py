"""`trimtab serve --workers N`: processes on one port under a supervisor, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import TRIMTAB, base_config, count_rows
from trimtab.cli.workers import orphan_spills, spill_path, worker_problem
from trimtab.config import parse_config
from trimtab.telemetry.spill import SpillFile
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.servers import free_port

LIMIT = {"limits": [{"scope": "key:*", "rpm": 100}]}


def _config(**extra: Any) -> Any:
    return parse_config({"store": {"url": "sqlite:///x.db"}, **extra})


def test_more_than_one_worker_with_limits_needs_shared_state() -> None:
    problem = worker_problem(_config(**LIMIT), 2)
    assert problem is not None
    assert "2 workers would each count the rate limits and budgets" in problem
    assert "state.url" in problem
    assert worker_problem(_config(**LIMIT), 1) is None
    redis = "redis://127.0.0.1:6379/0"
    assert worker_problem(_config(**LIMIT, state={"url": redis, "processes": 2}), 2) is None
    few = worker_problem(_config(**LIMIT, state={"url": redis, "processes": 2}), 3)
    assert few is not None
    assert "state.processes is 2, but 3 workers run on this host alone" in few
    assert worker_problem(_config(), 4) is None  # nothing counted: nothing to share
    assert worker_problem(_config(), 0) == "--workers must be at least 1, not 0"


def test_each_worker_has_its_own_spill_file_and_all_share_the_journal(tmp_path: Path) -> None:
    cfg = _config(telemetry={"spill_path": str(tmp_path / "spill.jsonl")})
    assert spill_path(cfg, 3) == tmp_path / "spill-w3.jsonl"


def test_spill_files_no_worker_reads_go_to_worker_0(tmp_path: Path) -> None:
    """The single process's spill file and those of indexes above this run's count are
    appended to worker 0's, which replays them; a torn last line stays on its own line."""
    cfg = _config(telemetry={"spill_path": str(tmp_path / "spill.jsonl")})
    (tmp_path / "spill.jsonl").write_bytes(b'{"a":1}\n{"a":2}\n')
    (tmp_path / "spill-w1.jsonl").write_bytes(b'{"b":1}\n')  # worker 1 of 2: its own
    (tmp_path / "spill-w2.jsonl").write_bytes(b'{"c":1}\n{"c":2')  # torn by a crash
    (tmp_path / "spill-w0.jsonl").write_bytes(b'{"z":0}')  # worker 0's, itself torn
    (tmp_path / "spill-wx.jsonl").write_bytes(b"not a worker's")
    orphans = orphan_spills(cfg, 2)
    assert orphans == [tmp_path / "spill.jsonl", tmp_path / "spill-w2.jsonl"]
    SpillFile(spill_path(cfg, 0)).adopt(orphans)
    assert (tmp_path / "spill-w0.jsonl").read_bytes().split(b"\n") == [
        b'{"z":0}',
        b'{"a":1}',
        b'{"a":2}',
        b'{"c":1}',
        b'{"c":2',
        b"",
    ]
    assert not (tmp_path / "spill.jsonl").exists()
    assert not (tmp_path / "spill-w2.jsonl").exists()
    assert (tmp_path / "spill-w1.jsonl").read_bytes() == b'{"b":1}\n'


def test_serve_refuses_workers_that_would_count_limits_apart(tmp_path: Path) -> None:
    path = tmp_path / "trimtab.yaml"
    path.write_text(yaml.safe_dump({"store": {"url": f"sqlite:///{tmp_path}/t.db"}, **LIMIT}))
    result = subprocess.run(
        [TRIMTAB, "serve", "--config", str(path), "--workers", "2", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 2, result.stderr
    assert "2 workers would each count the rate limits and budgets" in result.stderr
    assert not (tmp_path / "t.db").exists()


def _children(pid: int) -> set[int]:
    """The processes `pid` started (multiprocessing's resource tracker among them)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def _workers(pid: int) -> set[int]:
    found = set()
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            found.add(child)
    return found


def _wait(condition: Any, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def supervised(tmp_path: Path, upstream: MockUpstream) -> Any:
    store = f"sqlite:///{tmp_path}/trimtab.db"
    path = tmp_path / "trimtab.yaml"
    path.write_text(yaml.safe_dump(base_config(upstream.url, store, tmp_path / "spill.jsonl")))
    port = free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [TRIMTAB, "serve", "--config", str(path), "--port", str(port), "--workers", "2"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: proc.poll() is None and len(_workers(proc.pid)) == 2, log.read_text())
        _wait(lambda: _ready(url), f"not ready:\n{log.read_text()}")
        yield proc, url, store, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _ask(url: str, text: str) -> str:
    # a fresh connection per request, so the kernel picks a worker each time
    reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "gpt-mock", "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["choices"][0]["message"]["content"])


def test_two_workers_serve_one_port_survive_a_killed_worker_and_stop_together(
    supervised: Any,
) -> None:
    proc, url, store, log = supervised
    before = _workers(proc.pid)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: _ask(url, f"q{i}"), range(40)))
    assert answers == [f"mock reply to: q{i}" for i in range(40)]

    # a worker killed outright is started again; what it journaled is replayed once
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    _wait(lambda: victim not in _workers(proc.pid) and len(_workers(proc.pid)) == 2, "no restart")
    _wait(lambda: _ready(url), "not ready after the restart")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: _ask(url, f"r{i}"), range(40)))
    assert answers == [f"mock reply to: r{i}" for i in range(40)]

    workers = _workers(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=90) == 0, log.read_text()
    for pid in workers:  # every worker is gone with the supervisor
        assert (
            not Path(f"/proc/{pid}").exists()
            or b"zombie" in Path(f"/proc/{pid}/status").read_bytes().lower()
        )
    assert count_rows(store) == 80  # every request recorded once
    assert "exited with -9" in log.read_text()
