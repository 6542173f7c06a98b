"""The alert outbox delivering to real HTTP receivers on loopback: retries after a 500, a
hanging sink timed out and retried without holding the others, a pending row delivered
after a restart, leases, and two processes draining one outbox without sending twice.

Time in the outbox is a clock of the test's own: a retry comes due when the test moves the
clock past it, never by waiting."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from tests.alerts.support import T0, receiving, signal
from trimtab.alerts import outbox_store
from trimtab.alerts.outbox import Outbox, OutboxMetrics
from trimtab.alerts.service import AlertService
from trimtab.config import AlertsConfig
from trimtab.store.engine import make_engine, migrate
from trimtab.testing.servers import free_port


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def skip(self, seconds: float = 3600) -> None:
        self.at += timedelta(seconds=seconds)


def config(*urls: str, timeout_s: float = 5.0, **outbox: Any) -> AlertsConfig:
    """A webhook sink per url (`s0`, `s1`, ...)."""
    return AlertsConfig.model_validate(
        {
            "sinks": {
                f"s{i}": {"kind": "webhook", "url": u, "timeout_s": timeout_s}
                for i, u in enumerate(urls)
            },
            "outbox": {"base_backoff_s": 1, "max_backoff_s": 60, **outbox},
        }
    )


def rows(engine: Engine) -> list[tuple[str, str, int]]:
    return [(r["sink"], r["status"], r["attempts"]) for r in outbox_store.outbox_rows(engine)]


async def drain(outbox: Outbox) -> None:
    await outbox.drain_once()
    await outbox.idle()


async def test_a_500_is_retried_and_the_alert_delivered_once(engine: Engine) -> None:
    async with receiving() as rec:
        clock = Clock()
        cfg = config(rec.url + "/hook")
        AlertService(engine, cfg, clock=clock).observe([signal()])
        registry = CollectorRegistry()
        outbox = Outbox(engine, cfg, OutboxMetrics(registry), clock=clock)
        rec.script = [500]
        await drain(outbox)
        assert rows(engine) == [("s0", "pending", 1)]
        await drain(outbox)  # not due yet: nothing is sent
        assert len(rec.received) == 1
        clock.skip()
        await drain(outbox)
        await drain(outbox)  # delivered: never sent again
        await outbox.stop()
    assert rows(engine) == [("s0", "delivered", 2)]
    assert len(rec.received) == 2
    assert rec.bodies()[0] == rec.bodies()[1]
    assert rec.bodies()[0]["type"] == "alert.trigger"
    sample = registry.get_sample_value
    assert sample("trimtab_alert_notifications_total", {"sink": "s0", "outcome": "retried"}) == 1
    assert sample("trimtab_alert_notifications_total", {"sink": "s0", "outcome": "delivered"}) == 1


async def test_a_hanging_sink_times_out_is_retried_and_holds_no_other(engine: Engine) -> None:
    async with receiving() as slow, receiving() as fast:
        clock = Clock()
        cfg = config(slow.url, fast.url, timeout_s=0.3)
        AlertService(engine, cfg, clock=clock).observe([signal()])
        outbox = Outbox(engine, cfg, clock=clock)
        slow.hang = True
        await outbox.drain_once()
        for _ in range(200):  # the fast sink is answered while the slow one hangs
            if ("s1", "delivered", 1) in rows(engine):
                break
            await asyncio.sleep(0.01)
        assert ("s1", "delivered", 1) in rows(engine)
        assert ("s0", "pending", 1) in rows(engine)
        await outbox.idle()  # the slow one gives up at its timeout
        assert sorted(rows(engine)) == [("s0", "pending", 1), ("s1", "delivered", 1)]
        (error,) = [r["last_error"] for r in outbox_store.outbox_rows(engine) if r["sink"] == "s0"]
        assert "Timeout" in error
        slow.hang = False
        clock.skip()
        await drain(outbox)
        await outbox.stop()
    assert sorted(rows(engine)) == [("s0", "delivered", 2), ("s1", "delivered", 1)]
    assert len(slow.received) == 2 and len(fast.received) == 1


async def test_a_pending_row_is_delivered_after_a_restart(store_url: str) -> None:
    """The sink is down while the alert fires; the process stops; a new one (a new engine
    and outbox, as after a restart) delivers the row once the sink is back."""
    port = free_port()
    clock = Clock()
    cfg = config(f"http://127.0.0.1:{port}/hook")
    first = make_engine(store_url)
    migrate(first)
    AlertService(first, cfg, clock=clock).observe([signal()])
    before = Outbox(first, cfg, clock=clock)
    await drain(before)  # connection refused: pending, to retry
    await before.stop()
    first.dispose()
    assert rows_of(store_url) == [("s0", "pending", 1)]
    async with receiving(port) as rec:
        clock.skip()
        second = make_engine(store_url)
        after = Outbox(second, cfg, clock=clock)
        await drain(after)
        await after.stop()
        assert rows(second) == [("s0", "delivered", 2)]
        second.dispose()
    assert [b["alert"]["dedup_key"] for b in rec.bodies()] == ["slo_burn/support-latency/page"]


def rows_of(url: str) -> list[tuple[str, str, int]]:
    eng = make_engine(url)
    try:
        return rows(eng)
    finally:
        eng.dispose()


async def test_a_claimed_row_is_anothers_only_after_its_lease(engine: Engine) -> None:
    clock = Clock()
    cfg = config("http://127.0.0.1:9/x", lease_s=60)
    AlertService(engine, cfg, clock=clock).observe([signal()])
    (taken,) = outbox_store.claim(engine, "dead-process", clock(), 60, 10)
    assert outbox_store.claim(engine, "other", clock(), 60, 10) == []
    clock.skip(61)
    (again,) = outbox_store.claim(engine, "other", clock(), 60, 10)
    assert again.id == taken.id and again.attempts == 2
    # the first holder lost it: it cannot settle the row any more
    assert not outbox_store.finish(engine, taken.id, "dead-process", clock(), delivered=True)
    assert outbox_store.finish(engine, taken.id, "other", clock(), delivered=True)


async def test_a_sink_hears_of_the_resolve_after_the_trigger(engine: Engine) -> None:
    clock = Clock()
    cfg = config("http://127.0.0.1:9/x")
    alerts = AlertService(engine, cfg, clock=clock)
    alerts.observe([signal()])
    alerts.observe([signal(firing=False)])
    # the trigger is still pending: the resolve waits behind it
    (first,) = outbox_store.claim(engine, "w", clock(), 60, 10)
    assert first.event == "trigger"
    outbox_store.finish(engine, first.id, "w", clock(), delivered=False, retry_at=clock())
    (again,) = outbox_store.claim(engine, "w", clock(), 60, 10)
    assert again.event == "trigger"
    outbox_store.finish(engine, again.id, "w", clock(), delivered=True)
    (then,) = outbox_store.claim(engine, "w", clock(), 60, 10)
    assert then.event == "resolve"


async def test_a_refused_request_is_not_retried(engine: Engine) -> None:
    async with receiving() as rec:
        clock = Clock()
        cfg = config(rec.url)
        AlertService(engine, cfg, clock=clock).observe([signal()])
        outbox = Outbox(engine, cfg, clock=clock)
        rec.script = [400]
        await drain(outbox)
        clock.skip()
        await drain(outbox)
        await outbox.stop()
    assert rows(engine) == [("s0", "dead", 1)]
    assert len(rec.received) == 1


async def test_a_row_too_old_is_given_up(engine: Engine) -> None:
    clock = Clock()
    cfg = config(f"http://127.0.0.1:{free_port()}/x", give_up_after_s=600)
    AlertService(engine, cfg, clock=clock).observe([signal()])
    outbox = Outbox(engine, cfg, clock=clock)
    await drain(outbox)
    assert rows(engine) == [("s0", "pending", 1)]
    clock.skip(601)
    await drain(outbox)
    await outbox.stop()
    assert rows(engine) == [("s0", "dead", 2)]


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_two_processes_deliver_each_row_once(engine: Engine, store_url: str) -> None:
    async with receiving() as rec:
        clock = Clock()
        cfg = config(rec.url + "/a", rec.url + "/b")
        alerts = AlertService(engine, cfg, clock=clock)
        alerts.observe([signal(f"k{i}") for i in range(10)])
        engines = [make_engine(store_url) for _ in range(3)]
        outboxes = [Outbox(e, cfg, clock=clock) for e in engines]
        for _ in range(3):
            await asyncio.gather(*(o.drain_once() for o in outboxes))
            await asyncio.gather(*(o.idle() for o in outboxes))
        for o in outboxes:
            await o.stop()
        for e in engines:
            e.dispose()
    assert len(rec.received) == 20
    sent = sorted((p, b["alert"]["dedup_key"]) for p, _, b in rec.received)
    assert len(set(sent)) == 20
    assert {s for _, s, _ in rows(engine)} == {"delivered"}
