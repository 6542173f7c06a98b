"""Budget alerts delivered to a real local HTTP server (aiohttp.web on a free port)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import Engine

from tests.policy.support import PolicyFactory, pricing
from trimtab.alerts.events import BudgetEvent, insert_event, list_events
from trimtab.alerts.webhooks import backoff_s, deliver, safe_url
from trimtab.config import WebhookConfig
from trimtab.policy.service import Ask, Policy
from trimtab.testing.servers import free_port

NOV_30 = datetime(2026, 11, 30, tzinfo=UTC).timestamp()


@dataclass
class Receiver:
    """A webhook endpoint answering a scripted sequence of statuses (then 200)."""

    url: str
    script: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # ends every delay early

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.json()))
        if self.delay_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), self.delay_s)
        status = self.script.pop(0) if self.script else 200
        return web.Response(status=status, text="ok" if status == 200 else "no")

    def payloads(self) -> list[dict[str, Any]]:
        return [body for _, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    rec = Receiver(f"http://127.0.0.1:{port}/hooks/secret-token")
    app = web.Application()
    app.router.add_post("/hooks/secret-token", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield rec
    rec.release.set()
    await runner.cleanup()


PAYLOAD = {"type": "budget.threshold_crossed", "scope": "tenant:acme"}


def hook(url: str, **kw: Any) -> WebhookConfig:
    return WebhookConfig(url=url, **kw)


async def test_retries_after_a_500_then_delivers(receiver: Receiver) -> None:
    receiver.script = [500, 503]
    async with aiohttp.ClientSession() as session:
        ok = await deliver(
            session,
            hook(receiver.url, retries=3, headers={"x-token": "abc"}),
            PAYLOAD,
            base_backoff_s=0.01,
        )
    assert ok
    assert len(receiver.received) == 3
    headers, body = receiver.received[-1]
    assert body == PAYLOAD
    assert headers["x-token"] == "abc"
    assert headers["Content-Type"] == "application/json"


async def test_gives_up_after_its_retries(receiver: Receiver) -> None:
    receiver.script = [500] * 10
    async with aiohttp.ClientSession() as session:
        ok = await deliver(session, hook(receiver.url, retries=2), PAYLOAD, base_backoff_s=0.01)
    assert not ok
    assert len(receiver.received) == 3


async def test_a_client_error_is_not_retried(receiver: Receiver) -> None:
    receiver.script = [404]
    async with aiohttp.ClientSession() as session:
        ok = await deliver(session, hook(receiver.url, retries=5), PAYLOAD, base_backoff_s=0.01)
    assert not ok
    assert len(receiver.received) == 1


async def test_a_slow_answer_times_out_and_is_retried(receiver: Receiver) -> None:
    receiver.delay_s = 1.0
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(
            deliver(
                session, hook(receiver.url, retries=1, timeout_s=0.2), PAYLOAD, base_backoff_s=0.01
            )
        )
        await asyncio.sleep(0.1)
        receiver.delay_s = 0.0  # the retry is answered at once
        assert await task
    assert len(receiver.received) == 2


async def test_an_unreachable_webhook_fails() -> None:
    url = f"http://127.0.0.1:{free_port()}/nobody"
    async with aiohttp.ClientSession() as session:
        assert not await deliver(session, hook(url, retries=1), PAYLOAD, base_backoff_s=0.01)


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff_s(n, 0.5, 3.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_logs_show_no_webhook_path() -> None:
    assert (
        safe_url("https://hooks.example.com/services/T0/B0/SECRET") == "https://hooks.example.com"
    )
    assert safe_url("http://127.0.0.1:8123/x?token=1") == "http://127.0.0.1:8123"


# -- through the Policy ----------------------------------------------------------------------


def ask() -> Ask:
    return Ask("acme", None, "gpt-big", None, None, 100, 100)


async def spend(policy: Policy, usd: float) -> None:
    admission = await policy.admit(ask(), pricing)
    started = time.perf_counter()
    await policy.settle(admission, ask(), usd, 100, 100)
    assert time.perf_counter() - started < 0.5  # delivery never waits on the request path


def alerting(url: str, *more: str, retries: int = 3) -> dict[str, Any]:
    return {
        "alerts": {
            "webhooks": [{"url": u, "retries": retries, "timeout_s": 2} for u in (url, *more)]
        },
        "budgets": [{"scope": "tenant:acme", "period": "month", "usd": 10, "on_exceed": "block"}],
    }


async def test_crossings_are_posted_with_retries(
    new_policy: PolicyFactory, receiver: Receiver, sqlite_engine: Engine
) -> None:
    receiver.script = [500]  # the first POST fails
    policy = await new_policy(
        **alerting(receiver.url),
        clock=lambda: NOV_30,
        webhook_backoff_s=0.01,
    )
    await spend(policy, 7.0)
    await spend(policy, 1.5)  # 8.5: crosses 80 %
    await spend(policy, 3.0)  # 11.5: crosses 100 % and 110 %
    await policy.close()
    delivered = {p["threshold"]: p for p in receiver.payloads()}
    assert sorted(delivered) == [0.8, 1.0, 1.1]
    assert len(receiver.received) == 4  # one retry after the 500
    first = delivered[0.8]
    assert first == {
        "type": "budget.threshold_crossed",
        "id": "tenant:acme/month/2026-11-01T00:00:00+00:00/0.8",
        "at": "2026-11-30T00:00:00+00:00",
        "scope": "tenant:acme",
        "period": "month",
        "period_start": "2026-11-01T00:00:00+00:00",
        "period_end": "2026-12-01T00:00:00+00:00",
        "threshold": 0.8,
        "spent_usd": 8.5,
        "limit_usd": 10.0,
        "on_exceed": "block",
        "text": "trimtab: budget tenant:acme (month, $10.00) crossed 80%: $8.50 spent",
    }
    assert len(list_events(sqlite_engine, None, None, 10)) == 3
    assert policy.registry.get_sample_value("trimtab_webhook_deliveries_total") == 3
    assert policy.registry.get_sample_value("trimtab_webhook_failures_total") == 0


async def test_failed_deliveries_are_counted(new_policy: PolicyFactory, receiver: Receiver) -> None:
    dead = f"http://127.0.0.1:{free_port()}/dead"
    policy = await new_policy(
        **alerting(receiver.url, dead, retries=1), clock=lambda: NOV_30, webhook_backoff_s=0.01
    )
    await spend(policy, 9.0)
    await policy.close()
    assert [p["threshold"] for p in receiver.payloads()] == [0.8]
    assert policy.registry.get_sample_value("trimtab_webhook_deliveries_total") == 1
    assert policy.registry.get_sample_value("trimtab_webhook_failures_total") == 1


async def test_close_waits_a_bounded_time(new_policy: PolicyFactory, receiver: Receiver) -> None:
    receiver.delay_s = 30.0
    policy = await new_policy(**alerting(receiver.url), clock=lambda: NOV_30, close_timeout_s=0.3)
    await spend(policy, 9.0)
    await asyncio.sleep(0.1)
    started = time.perf_counter()
    await policy.close()
    assert time.perf_counter() - started < 2.0
    assert policy.registry.get_sample_value("trimtab_webhook_failures_total") == 1


async def test_a_crossing_already_stored_is_not_posted_again(
    new_policy: PolicyFactory, receiver: Receiver, sqlite_engine: Engine
) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    insert_event(
        sqlite_engine,
        BudgetEvent(datetime.now(UTC), "tenant:acme", "month", start, 0.8, 8.0, 10.0, "block"),
    )
    policy = await new_policy(**alerting(receiver.url), clock=lambda: NOV_30)
    await spend(policy, 10.5)  # crosses 80 % (already stored) and 100 %
    await policy.close()
    assert [p["threshold"] for p in receiver.payloads()] == [1.0]
