"""The key store goes away: cached keys keep working for auth.stale_ttl_s, visibly."""

from __future__ import annotations

import httpx
import pytest

from tests.auth.support import chat, create_key, message_of, wait_until
from tests.support import ADMIN_KEY, APP_KEY, KEYS, GatewayFactory, Running
from trimtab.testing.outage import StoppablePostgres

pytestmark = pytest.mark.postgres


def readyz(running: Running) -> httpx.Response:
    return httpx.get(running.url + "/readyz", timeout=10)


def metric(running: Running, name: str) -> float:
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    text = httpx.get(running.url + "/metrics", headers=admin, timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


def key_problem(response: httpx.Response) -> str | None:
    problems: list[str] = response.json()["problems"]
    return next((p for p in problems if p.startswith("key store unreachable since ")), None)


def test_cached_keys_keep_working_while_the_store_is_down(
    gateway: GatewayFactory, doomed_postgres: StoppablePostgres
) -> None:
    running = gateway(
        store=doomed_postgres.url, keys=KEYS, auth={"refresh_s": 0.2, "stale_ttl_s": 600}
    )
    made = create_key(running.url, owner="resilient-service")
    assert chat(running.url, made["key"]).status_code == 200
    assert readyz(running).status_code == 200
    assert metric(running, "trimtab_key_store_up") == 1.0
    assert metric(running, "trimtab_key_cache_age_seconds") < 5

    doomed_postgres.stop()

    answer = wait_until(lambda: readyz(running), lambda r: key_problem(r) is not None, 10)
    assert answer.status_code == 503
    problem = key_problem(answer)
    assert problem is not None and "served from a snapshot" in problem, answer.text
    assert metric(running, "trimtab_key_store_up") == 0.0
    assert metric(running, "trimtab_key_cache_age_seconds") > 0.2
    # the snapshot still authenticates: the store key and the config keys work
    assert chat(running.url, made["key"]).status_code == 200
    assert chat(running.url, APP_KEY).status_code == 200
    assert chat(running.url, "tt-never-issued-key").status_code == 401


def test_past_the_stale_ttl_store_keys_stop_and_config_keys_go_on(
    gateway: GatewayFactory, doomed_postgres: StoppablePostgres
) -> None:
    running = gateway(
        store=doomed_postgres.url, keys=KEYS, auth={"refresh_s": 0.2, "stale_ttl_s": 1.5}
    )
    made = create_key(running.url, owner="resilient-service")
    assert chat(running.url, made["key"]).status_code == 200

    doomed_postgres.stop()

    refused = wait_until(lambda: chat(running.url, made["key"]), lambda r: r.status_code != 200, 15)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "key_store_unavailable"
    assert "auth.stale_ttl_s (1.5s)" in message_of(refused)
    assert chat(running.url, APP_KEY).status_code == 200
    problem = key_problem(readyz(running))
    assert problem is not None and "refused until it answers" in problem
