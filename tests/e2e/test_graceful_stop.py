"""Telemetry loses nothing: N concurrent requests, SIGTERM, restart, exactly N rows."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from tests.conftest import base_config
from trimtab.store.engine import make_engine
from trimtab.store.tables import requests
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.servers import free_port

TRIMTAB = str(Path(sys.executable).parent / "trimtab")


def start_server(config_path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [TRIMTAB, "serve", "--config", str(config_path), "--port", str(port)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"trimtab exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"trimtab did not become ready:\n{log.read_text()}")


def start_gateway(config: dict[str, Any], folder: Path, name: str) -> tuple[Any, str]:
    """`trimtab serve` with this config (written to folder/NAME.yaml, its log beside it)
    on a free port: the process and its URL."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    return start_server(path, port, folder / f"{name}.log"), f"http://127.0.0.1:{port}"


def stop_server(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> bool:
    """Send the signal; True when the process finished its graceful shutdown.

    uvicorn re-raises the signal once shutdown is complete, so the exit status is the
    conventional "terminated by SIGTERM" (or 0 on older versions), never a crash.
    """
    proc.send_signal(sig)
    return proc.wait(timeout=60) in (0, -sig)


async def fire(port: int, n: int, model: str) -> list[int]:
    async with httpx.AsyncClient(timeout=60) as http:

        async def one(i: int) -> int:
            body: dict[str, Any] = {
                "model": model,
                "messages": [{"role": "user", "content": f"request {i}"}],
                "stream": i % 3 == 0,
            }
            resp = await http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body)
            await resp.aread()
            return resp.status_code

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def count_rows(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(requests)).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("queue_size", [20_000, 4], ids=["queue", "spill"])
def test_sigterm_then_restart_keeps_exactly_n_rows(
    store_url: str, upstream: MockUpstream, tmp_path: Path, queue_size: int
) -> None:
    """With a roomy queue SIGTERM flushes it; with a 4-slot queue most records are spilled
    to the file and replayed by the next start. Either way: exactly N rows."""
    n = 150
    spill = tmp_path / "spill.jsonl"
    config = base_config(upstream.url, store_url, spill)
    # a slow writer (large interval) so records are still queued when SIGTERM arrives
    config["telemetry"].update({"queue_size": queue_size, "flush_interval_s": 5, "batch_size": 7})
    config_path = tmp_path / "trimtab.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log = tmp_path / "trimtab.log"

    port = free_port()
    proc = start_server(config_path, port, log)
    try:
        statuses = asyncio.run(fire(port, n, "gpt-mock"))
    finally:
        stopped = stop_server(proc)
    assert statuses == [200] * n
    assert stopped, log.read_text()
    assert "Application shutdown complete" in log.read_text()
    if queue_size == 4:
        assert spill.exists() and spill.stat().st_size > 0, "the small queue should spill"

    proc = start_server(config_path, port, log)
    try:
        assert not spill.exists(), "the spill file is replayed and removed at start"
        assert count_rows(store_url) == n
        summary = httpx.get(f"http://127.0.0.1:{port}/api/metrics/summary?window=1h").json()
        assert summary["total"]["count"] == n
    finally:
        assert stop_server(proc)
    assert count_rows(store_url) == n


def test_ctrl_c_also_flushes(upstream: MockUpstream, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    config = base_config(upstream.url, url, tmp_path / "spill.jsonl")
    config["telemetry"].update({"flush_interval_s": 5})
    path = tmp_path / "trimtab.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    proc = start_server(path, port, tmp_path / "log")
    asyncio.run(fire(port, 20, "sim-1"))
    assert stop_server(proc, signal.SIGINT)
    assert count_rows(url) == 20
    assert os.path.exists(tmp_path / "t.db")
