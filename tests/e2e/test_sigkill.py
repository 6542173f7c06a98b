"""SIGKILL loses no answered request: every request that got a 200 before the kill has
exactly one row after a restart (the journal is replayed at start)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.support import base_config, start_gateway, stop_server
from trimtab.store.engine import make_engine
from trimtab.store.tables import requests, rollups
from trimtab.testing.mock_upstream import MockUpstream

N = 600
CONCURRENCY = 48
KILL_AFTER = 400  # answered requests before the SIGKILL; the rest are in flight or unsent


async def fire_until_killed(url: str, proc: subprocess.Popen[bytes]) -> list[str]:
    """N requests, CONCURRENCY at a time; SIGKILL once KILL_AFTER have been answered.
    The request ids of the 200 responses the client received in full."""
    answered: list[str] = []
    killed = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(N):
        queue.put_nowait(i)

    async def worker(http: httpx.AsyncClient) -> None:
        while not killed.is_set():
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body: dict[str, Any] = {
                "model": "gpt-mock",
                "messages": [{"role": "user", "content": f"request {i}"}],
                "stream": i % 3 == 0,
            }
            try:
                resp = await http.post(f"{url}/v1/chat/completions", json=body)
                await resp.aread()
            except httpx.HTTPError:
                continue  # the process is gone: this one was never answered
            if resp.status_code == 200 and not killed.is_set():
                answered.append(resp.headers["x-trimtab-request-id"])
                if len(answered) >= KILL_AFTER:
                    proc.send_signal(signal.SIGKILL)
                    killed.set()

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))
    return answered


def stored(url: str) -> tuple[list[str], int]:
    """The request rows' ids and the rollups' total count."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ids = list(conn.scalars(select(requests.c.id)))
            total = conn.execute(select(func.coalesce(func.sum(rollups.c.count), 0))).scalar_one()
    finally:
        engine.dispose()
    return ids, int(total)


@pytest.mark.parametrize("fsync_ms", [200.0, 5000.0])
def test_sigkill_then_restart_keeps_every_answered_request(
    upstream: MockUpstream, tmp_path: Path, fsync_ms: float
) -> None:
    """A slow writer (flush every 2 s) keeps records queued when the kill comes, as a busy
    one does; the fsync interval does not matter for a process kill (the OS keeps what
    was written), so a long one loses nothing either."""
    db = f"sqlite:///{tmp_path}/trimtab.db"
    config = base_config(upstream.url, db, tmp_path / "spill.jsonl")
    config["telemetry"].update({"flush_interval_s": 2, "journal_fsync_ms": fsync_ms})
    proc, url = start_gateway(config, tmp_path, "first")
    try:
        answered = asyncio.run(fire_until_killed(url, proc))
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(answered) >= KILL_AFTER
    assert len(set(answered)) == len(answered)

    proc, url = start_gateway(config, tmp_path, "second")
    try:
        ids, rollup_count = stored(db)
        missing = set(answered) - set(ids)
        assert not missing, f"{len(missing)} of {len(answered)} answered requests have no row"
        assert len(ids) == len(set(ids))  # the primary key says so too
        assert rollup_count == len(ids)  # every row counted once in the rollups
        # the dead process's segments are deleted once replayed; the new process's stays
        assert len(list((tmp_path / "spill.journal").glob("journal-*.jsonl"))) == 1
    finally:
        assert stop_server(proc)
    # a graceful stop commits everything and leaves no journal behind
    assert not list((tmp_path / "spill.journal").glob("*.jsonl"))
    ids_after, count_after = stored(db)
    assert sorted(ids_after) == sorted(ids)
    assert count_after == len(ids)
