"""Rate limits and budgets as clients see them, in one gateway and across two on one Redis."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.policy.support import MSGS, models
from tests.support import (
    APP_KEY,
    GLOBEX_APP_KEY,
    KEYS,
    GatewayFactory,
    base_config,
    start_gateway,
    stop_server,
    stored,
    wait_for,
)
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.redis_server import RedisServer


def test_rpm_limit_per_key_in_both_wire_formats(
    gateway: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    running = gateway(keys=KEYS, limits=[{"scope": "key:*", "rpm": 3}])
    client = openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-mock", messages=MSGS)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-mock", messages=MSGS)  # type: ignore[arg-type]
    resp = info.value.response
    assert int(resp.headers["retry-after"]) >= 1
    assert resp.json()["error"]["code"] == "rate_limited"
    assert "3 requests per minute" in resp.json()["error"]["message"]
    row = stored(running, resp.headers["x-trimtab-request-id"])
    assert row["status_code"] == 429 and row["error_type"] == "rate_limited"
    ant = anthropic.Anthropic(base_url=running.url, api_key=APP_KEY, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as ainfo:
        ant.messages.create(model="gpt-mock", max_tokens=5, messages=MSGS)  # type: ignore[arg-type]
    assert ainfo.value.response.json()["error"]["type"] == "rate_limit_error"
    # another key has its own window
    other = openai.OpenAI(base_url=running.url + "/v1", api_key=GLOBEX_APP_KEY, max_retries=0)
    other.chat.completions.create(model="gpt-mock", messages=MSGS)  # type: ignore[arg-type]


def test_budget_blocks_then_the_downgrade_serves_a_cheaper_model(
    gateway: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    running = gateway(
        keys=KEYS,
        models=models(upstream, tmp_path),
        budgets=[
            {"scope": "model:pricey", "period": "day", "usd": 0.5, "on_exceed": "downgrade:sim-1"},
            {"scope": "tenant:acme", "period": "day", "usd": 2.0, "on_exceed": "block"},
        ],
    )
    client = openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)
    served = []
    for _ in range(12):
        raw = client.chat.completions.with_raw_response.create(
            model="pricey",
            messages=MSGS,  # type: ignore[arg-type]
            max_tokens=10,
        )
        row = stored(running, raw.headers["x-trimtab-request-id"])
        served.append(row["upstream_model"])
        if row["upstream_model"] == "sim-1":
            assert row["attributes"]["downgraded_from"] == "pricey"
            break
    assert served[0] == "mock-1" and served[-1] == "sim-1"
    spent = sum(
        stored(running, r["id"])["cost_usd"] or 0
        for r in httpx.get(
            running.url + "/api/requests",
            params={"model": "pricey", "limit": 100},
            headers={"authorization": f"Bearer {KEYS[0]['key']}"},
        ).json()["data"]
        if r["upstream_model"] == "mock-1"
    )
    # the model budget stopped mock-1 within one request's cost of its $0.50
    assert 0.5 <= spent < 0.5 + 0.2


def test_budget_block_is_a_429_in_the_clients_format(
    gateway: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    running = gateway(
        keys=KEYS,
        models=models(upstream, tmp_path),
        budgets=[{"scope": "tenant:acme", "period": "month", "usd": 0.3, "on_exceed": "block"}],
    )
    client = openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        for _ in range(20):
            client.chat.completions.create(model="pricey", messages=MSGS, max_tokens=10)  # type: ignore[arg-type]
    err = info.value.response.json()["error"]
    assert err["code"] == "budget_exceeded"
    assert "tenant:acme" in err["message"]
    assert int(info.value.response.headers["retry-after"]) > 0


def test_a_stream_the_client_leaves_is_charged_what_was_sent(
    gateway: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    """A client that hangs up mid-stream has had tokens generated for it: its budget is
    charged the cost recorded for the request (estimated from what was sent), as the
    cost reports count it — not nothing, which would let such calls spend without limit."""
    extra = {"pricey-drip": {**models(upstream, tmp_path)["pricey"], "model": "drip-300"}}
    running = gateway(
        keys=KEYS,
        models={**models(upstream, tmp_path), **extra},
        budgets=[{"scope": "tenant:acme", "period": "day", "usd": 100.0, "on_exceed": "block"}],
    )
    body = {"model": "pricey-drip", "messages": MSGS, "stream": True}
    headers = {"authorization": f"Bearer {APP_KEY}"}
    with httpx.stream(
        "POST", running.url + "/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as reply:
        request_id = reply.headers["x-trimtab-request-id"]
        for line in reply.iter_lines():
            if '"content"' in line:
                break  # one chunk of content in, then the client goes
    row = stored(running, request_id)
    assert row["status_code"] == 499
    assert row["cost_usd"] > 0

    def charged() -> float:
        report = httpx.get(
            running.url + "/api/budgets", headers={"authorization": f"Bearer {KEYS[0]['key']}"}
        ).json()["data"]
        (entry,) = report[0]["values"]
        assert entry["scope"] == "tenant:acme"
        return float(entry["spent_usd"]) if entry["reserved_usd"] == 0 else -1.0

    wait_for(lambda: charged() >= 0)  # settled after the response, in the background
    assert charged() == pytest.approx(row["cost_usd"], rel=1e-6)


async def _burst(urls: list[str], n: int, model: str) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(i: int) -> int:
            resp = await http.post(
                urls[i % len(urls)] + "/v1/chat/completions",
                json={"model": model, "messages": MSGS, "max_tokens": 10},
                headers={"authorization": f"Bearer {APP_KEY}"},
            )
            return resp.status_code

        return list(await asyncio.gather(*(one(i) for i in range(n))))


@pytest.fixture
def two_gateways(redis_server: RedisServer, upstream: MockUpstream, tmp_path: Path) -> Any:
    """Two trimtab processes sharing one store file and one Redis."""

    def start(**extra: Any) -> list[str]:
        urls = []
        for i in range(2):
            config = base_config(
                upstream.url, f"sqlite:///{tmp_path}/shared.db", tmp_path / f"spill{i}.jsonl"
            )
            config["models"] = models(upstream, tmp_path)
            config.update(keys=KEYS, state={"url": redis_server.url}, **extra)
            proc, url = start_gateway(config, tmp_path, f"gw{i}")
            procs.append(proc)
            urls.append(url)
        return urls

    procs: list[Any] = []
    yield start
    for proc in procs:
        stop_server(proc, signal.SIGTERM)


def test_two_gateways_enforce_one_rate_limit(two_gateways: Any, redis_server: RedisServer) -> None:
    urls = two_gateways(limits=[{"scope": "tenant:acme", "rpm": 10}])
    statuses = asyncio.run(_burst(urls, 30, "gpt-mock"))
    assert statuses.count(200) == 10
    assert statuses.count(429) == 20


def test_two_gateways_overspend_a_budget_by_at_most_one_request(
    two_gateways: Any, redis_server: RedisServer
) -> None:
    urls = two_gateways(
        budgets=[{"scope": "tenant:acme", "period": "day", "usd": 1.0, "on_exceed": "block"}]
    )
    statuses = asyncio.run(_burst(urls, 40, "pricey"))
    assert 0 < statuses.count(200) < 40
    assert set(statuses) == {200, 429}
    admin = {"authorization": f"Bearer {KEYS[0]['key']}"}
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        rows = httpx.get(urls[0] + "/api/requests", params={"limit": 100}, headers=admin).json()[
            "data"
        ]
        if len(rows) == 40:
            break
        asyncio.run(asyncio.sleep(0.05))
    costs = [r["cost_usd"] for r in rows if r["http.response.status_code"] == 200]
    assert len(rows) == 40
    assert sum(costs) <= 1.0 + max(costs)
