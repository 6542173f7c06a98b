"""PostgreSQL stops under load and comes back: the records spilled meanwhile are replayed by
the running gateway, each once, and /api/requests shows every answered request again
without a restart. While the store is down, /readyz says so in one line, without data."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.support import ADMIN_KEY, APP_KEY, KEYS, GatewayFactory
from trimtab.store.tables import requests, rollups
from trimtab.testing.outage import StoppablePostgres

MARKER = "zq-outage-marker-7f3e"


async def fire(url: str, n: int, concurrency: int, tag: str) -> list[str]:
    """n chat requests, `concurrency` at a time; the request ids of the 200s."""
    sem = asyncio.Semaphore(concurrency)
    headers = {"authorization": f"Bearer {APP_KEY}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:

        async def one(i: int) -> str | None:
            body: dict[str, Any] = {
                "model": "gpt-mock",
                "messages": [{"role": "user", "content": f"{MARKER} {tag} {i}"}],
                "stream": i % 4 == 0,
            }
            async with sem:
                resp = await http.post(f"{url}/v1/chat/completions", json=body)
                await resp.aread()
            return resp.headers["x-trimtab-request-id"] if resp.status_code == 200 else None

        got = await asyncio.gather(*(one(i) for i in range(n)))
    return [rid for rid in got if rid is not None]


def listed_ids(url: str) -> set[str] | None:
    """Every request id /api/requests lists (following the cursor); None while it fails."""
    ids: set[str] = set()
    cursor: str | None = None
    with httpx.Client(timeout=10, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as http:
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            resp = http.get(f"{url}/api/requests", params=params)
            if resp.status_code != 200:
                return None
            page = resp.json()
            ids.update(row["id"] for row in page["data"])
            cursor = page["next_cursor"]
            if not cursor:
                return ids


def wait_until(check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_outage_records_are_replayed_while_running(
    gateway: GatewayFactory,
    doomed_postgres: StoppablePostgres,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spill = tmp_path / "spill.jsonl"
    gw = gateway(
        store=doomed_postgres.url,
        keys=KEYS,
        # no retries: a refused batch is spilled at once, as after the default's 0.7 s
        telemetry={"spill_path": str(spill), "flush_interval_s": 0.02, "write_retries": 0},
    )
    before = asyncio.run(fire(gw.url, 60, 8, "before"))
    assert len(before) == 60
    assert wait_until(lambda: (listed_ids(gw.url) or set()) >= set(before), 15)

    doomed_postgres.halt()
    during = asyncio.run(fire(gw.url, 300, 16, "during"))
    assert len(during) == 300, "the gateway answers while its store is down"
    assert wait_until(lambda: spill.exists() and spill.stat().st_size > 0, 15)
    ready = httpx.get(f"{gw.url}/readyz", timeout=10)
    assert ready.status_code == 503
    problems = ready.json()["problems"]
    assert any(p.startswith("store unreachable: OperationalError (") for p in problems)
    assert any(p.startswith("telemetry writes failing since ") for p in problems)
    assert all("\n" not in p for p in problems)
    assert MARKER not in ready.text

    doomed_postgres.resume()
    # polled, not slept: the writer's idle probe finds the store back within about a second
    everything = set(before) | set(during)
    assert wait_until(lambda: (listed_ids(gw.url) or set()) >= everything, 30)
    assert wait_until(lambda: not spill.exists() or spill.stat().st_size == 0, 10)

    with gw.engine.connect() as conn:
        rows = int(conn.execute(select(func.count()).select_from(requests)).scalar_one())
        counted = int(conn.execute(select(func.sum(rollups.c.count))).scalar_one())
    assert rows == len(everything)  # none twice
    assert counted == rows  # and counted once in the rollups
    # ready again once every refresher has seen the store back too
    assert wait_until(lambda: httpx.get(f"{gw.url}/readyz", timeout=10).status_code == 200, 15)
    # nothing logged while the store was down carries a body (or the SQL's parameters)
    assert caplog.records
    assert MARKER not in caplog.text  # messages and tracebacks
    assert "[parameters:" not in caplog.text
