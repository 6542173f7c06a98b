"""Two trimtab processes on one PostgreSQL and one Redis: one assignment per user, and a
rollback made through one process serving in the other within a second."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.rollouts.support import FAST_FIRST_SEEN, route_call, routes_yaml
from tests.support import (
    OPERATOR_KEY,
    ROUTE_KEYS,
    base_config,
    new_database,
    start_gateway,
    stop_server,
    wait_for,
)
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.postgres_server import PostgresServer
from trimtab.testing.redis_server import RedisServer

USERS = [f"user-{i}" for i in range(40)]


@pytest.fixture
def two_gateways(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    upstream: MockUpstream,
    tmp_path: Path,
) -> Iterator[list[str]]:
    store = new_database(postgres_server)
    procs = []
    urls = []
    for i in range(2):
        config = base_config(upstream.url, store, tmp_path / f"spill{i}.jsonl")
        config.update(
            keys=ROUTE_KEYS,
            state={"url": redis_server.url},
            # the controller must not end the rollout while the test looks at it
            # each user keeps the version first given, remembered in Redis by both
            rollouts={"check_interval_s": 3600, "plans": {"fast": FAST_FIRST_SEEN}},
        )
        proc, url = start_gateway(config, tmp_path, f"gw{i}")
        procs.append(proc)
        urls.append(url)
    yield urls
    for proc in procs:
        stop_server(proc, signal.SIGTERM)


def version(http: httpx.Client, url: str, user: str) -> str | None:
    """The version that served `user`'s request; None while the route is unknown there."""
    resp = route_call(http, url, user)
    if resp.status_code == 404 and "route_not_found" in resp.text:
        return None
    assert resp.status_code == 200, resp.text
    return str(resp.headers["x-trimtab-version"])


def operator(http: httpx.Client, url: str, path: str, **body: Any) -> dict[str, Any]:
    resp = http.post(url + path, json=body, headers={"authorization": f"Bearer {OPERATOR_KEY}"})
    assert resp.status_code in (200, 201), resp.text
    data: dict[str, Any] = resp.json()
    return data


def test_a_rollback_through_one_process_serves_in_the_other_within_a_second(
    two_gateways: list[str],
) -> None:
    a, b = two_gateways
    with httpx.Client(timeout=30) as http:
        for text in (routes_yaml("sim-1"), routes_yaml("sim-1", greeting="Hi")):
            operator(http, a, "/api/routes/apply", yaml=text, message="change")
        wait_for(lambda: version(http, b, "probe") == "v1", 10.0)
        operator(http, a, "/api/routes/faq/rollouts", to="v2", plan="fast", reason="try")
        wait_for(lambda: {version(http, b, u) for u in USERS} == {"v1", "v2"}, 10.0)
        # both processes give each user the same version, whichever sees the user first
        first = {u: version(http, a if i % 2 else b, u) for i, u in enumerate(USERS)}
        assert first == {u: version(http, b if i % 2 else a, u) for i, u in enumerate(USERS)}
        on_candidate = [u for u, v in first.items() if v == "v2"]
        assert on_candidate

        operator(http, a, "/api/routes/faq/rollback", reason="on-call says so")
        rolled_back_at = time.monotonic()
        # the process that took the rollback serves stable on the very next request
        assert {version(http, a, u) for u in on_candidate} == {"v1"}
        # the other one within a second (it re-reads the store every rollouts.refresh_s)
        while version(http, b, on_candidate[0]) != "v1":
            assert time.monotonic() - rolled_back_at < 1.0, "still served by v2 after 1 s"
        assert {version(http, b, u) for u in USERS} == {"v1"}
