"""Telemetry loses nothing: N concurrent requests, SIGTERM, restart, exactly N rows."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import base_config, count_rows, start_server, stop_server
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.servers import free_port


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
