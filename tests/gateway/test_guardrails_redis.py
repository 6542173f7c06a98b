"""Session ceilings hold across gateway processes: two `trimtab serve` sharing one Redis."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import APP_KEY, KEYS, base_config, start_gateway, stop_server
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.redis_server import RedisServer


@pytest.fixture
def gateways(
    redis_server: RedisServer, upstream: MockUpstream, tmp_path: Path
) -> Iterator[list[str]]:
    policy = {"session": {"max_requests": 6}}
    procs, urls = [], []
    for i in range(2):
        config = base_config(
            upstream.url, f"sqlite:///{tmp_path}/shared.db", tmp_path / f"spill{i}.jsonl"
        )
        config.update(keys=KEYS, state={"url": redis_server.url}, guardrails=policy)
        proc, url = start_gateway(config, tmp_path, f"gw{i}")
        procs.append(proc)
        urls.append(url)
    yield urls
    for proc in procs:
        stop_server(proc, signal.SIGTERM)


async def _burst(urls: list[str], n: int, session: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(i: int) -> httpx.Response:
            return await client.post(
                urls[i % len(urls)] + "/v1/chat/completions",
                json={"model": "gpt-mock", "messages": [{"role": "user", "content": f"step {i}"}]},
                headers={"authorization": f"Bearer {APP_KEY}", "x-trimtab-session": session},
            )

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def test_two_processes_enforce_one_session_ceiling(gateways: list[str]) -> None:
    session = f"agent-{uuid.uuid4().hex}"
    responses = asyncio.run(_burst(gateways, 20, session))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 6 and statuses.count(429) == 14
    refused = next(r for r in responses if r.status_code == 429).json()["error"]
    assert refused["code"] == "session_limit_exceeded"
    assert (
        f"session '{session}' reached its max_requests ceiling of 6 requests" in refused["message"]
    )
    # another session has its own count, on either process
    again = asyncio.run(_burst(gateways, 2, f"agent-{uuid.uuid4().hex}"))
    assert [r.status_code for r in again] == [200, 200]
