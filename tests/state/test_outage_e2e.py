"""A gateway on a Redis that is killed keeps serving: a model with a breaker and a cache and a
route under rollout answer 200 while Redis is away, /metrics shows the fallbacks, and once
Redis is back the gateway's state is in Redis again."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from tests.rollouts.support import FAST_FIRST_SEEN, route_call, routes_yaml
from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    GatewayFactory,
    Running,
    base_config,
)
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.outage import RestartableRedis

GUARDED = {
    "provider": "upstream",
    "model": "mock-1",
    "pricing": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
    "breaker": {"failure_ratio": 0.5, "min_requests": 3, "window_s": 60, "cooldown_s": 1},
    "cache": {"ttl_s": 60},
}
USERS = [f"user-{i}" for i in range(20)]
HITS = 'model="guarded",result="hit"'


def operator(running: Running, path: str, **body: Any) -> None:
    resp = httpx.post(
        running.url + path, json=body, headers={"authorization": f"Bearer {OPERATOR_KEY}"}
    )
    assert resp.status_code in (200, 201), resp.text


def metric(running: Running, name: str, labels: str = "") -> float:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    text = httpx.get(running.url + "/metrics", headers=headers).text
    pattern = "^" + re.escape(name + (f"{{{labels}}}" if labels else "")) + r" (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def traffic(running: Running, n: int) -> list[int]:
    """n rounds of the guarded model (each question asked until it is a cache hit: the
    answer is cached after the response, in the background, so the ask right after it may
    still miss), then the route under rollout for every user."""
    statuses: list[int] = []
    with httpx.Client(timeout=30) as http:

        def ask(i: int) -> None:
            resp = http.post(
                running.url + "/v1/chat/completions",
                json={"model": "guarded", "messages": [{"role": "user", "content": f"q{i}"}]},
                headers={"authorization": f"Bearer {APP_KEY}"},
            )
            statuses.append(resp.status_code)

        for i in range(n):
            hits = metric(running, "trimtab_cache_total", HITS)
            ask(i)  # a miss (this phase's cache has not seen the question)
            for _ in range(50):
                ask(i)
                if metric(running, "trimtab_cache_total", HITS) > hits:
                    break
                time.sleep(0.02)
        statuses += [route_call(http, running.url, user).status_code for user in USERS]
    return statuses


def test_a_redis_outage_is_served_from_process_local_state(
    gateway: GatewayFactory,
    upstream: MockUpstream,
    tmp_path: Path,
    killable_redis: RestartableRedis,
) -> None:
    models = base_config(upstream.url, "sqlite://", tmp_path / "x")["models"]
    running = gateway(
        keys=ROUTE_KEYS,
        models={**models, "guarded": GUARDED},
        state={"url": killable_redis.url, "probe_interval_s": 0.05},
        rollouts={"check_interval_s": 3600, "plans": {"fast": FAST_FIRST_SEEN}},
    )
    operator(running, "/api/routes/apply", yaml=routes_yaml("sim-1"), message="v1")
    operator(running, "/api/routes/apply", yaml=routes_yaml("sim-1", greeting="Hi"), message="v2")
    operator(running, "/api/routes/faq/rollouts", to="v2", plan="fast", reason="try")
    assert set(traffic(running, 3)) == {200}
    assert metric(running, "trimtab_state_up") == 1.0

    killable_redis.kill()
    statuses = traffic(running, 5)
    assert statuses == [200] * len(statuses)
    assert metric(running, "trimtab_state_up") == 0.0
    for operation in ("cache_get", "cache_set", "breaker_open_until", "breaker_record", "assign"):
        assert metric(running, "trimtab_state_fallbacks_total", f'operation="{operation}"') > 0
    # the cache kept working in the process: each question's second ask was a hit
    hits = metric(running, "trimtab_cache_total", HITS)
    assert hits >= 5 + 3

    killable_redis.start()  # empty
    deadline = time.monotonic() + 10
    while metric(running, "trimtab_state_up") != 1.0:
        assert time.monotonic() < deadline, "the gateway did not see Redis come back"
        time.sleep(0.05)
    served_locally = metric(running, "trimtab_state_fallbacks_total", 'operation="cache_get"')
    assert set(traffic(running, 2)) == {200}
    # shared again: nothing more served locally, and the entries are in Redis
    assert metric(running, "trimtab_state_fallbacks_total", 'operation="cache_get"') == (
        served_locally
    )
    client = Redis.from_url(killable_redis.url)
    try:
        assert client.keys("trimtab:cache:*")
        assert client.keys("trimtab:assign:*")
        assert client.keys("trimtab:breaker:counts:*")
    finally:
        client.close()
