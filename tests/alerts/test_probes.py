"""The server's own conditions as alerts: a real breaker tripping and closing, a readiness
problem coming and going, through the non-blocking SignalQueue into the store."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import Engine

from tests.alerts.support import T0, signal
from trimtab.alerts.probes import EXPIRY_ROUNDS, Probes, Watch, breaker_probe, problem_probe
from trimtab.alerts.queue import SignalQueue
from trimtab.alerts.service import AlertService
from trimtab.config import AlertsConfig, BreakerConfig
from trimtab.gateway.breakers import Breakers
from trimtab.state.memory import MemoryState
from trimtab.store.engine import make_engine, migrate
from trimtab.telemetry.metrics import GatewayMetrics, LabelValues
from trimtab.testing.outage import StoppablePostgres


async def test_a_breaker_trip_and_a_problem_open_and_resolve_alerts(
    sqlite_engine: Engine,
) -> None:
    now = [T0.timestamp()]
    breakers = Breakers(MemoryState(), GatewayMetrics(LabelValues()), clock=lambda: now[0])
    cfg = BreakerConfig(min_requests=2, failure_ratio=0.5, cooldown_s=30)
    breakers.watch("openai/gpt-big", cfg)
    problem: list[str | None] = [None]
    service = AlertService(sqlite_engine, AlertsConfig(), clock=lambda: T0)
    queue = SignalQueue(service)
    queue.start()
    watch = Watch(interval_s=5)
    probes = Probes(
        [
            breaker_probe(watch, lambda: breakers.known, breakers.status),
            problem_probe(watch, "telemetry_spill", "ticket", lambda: problem[0], where="n1"),
        ],
        queue.submit,
        interval_s=5,
        clock=lambda: T0,
    )
    assert await probes.round() == 2  # the first round says "clear" once, for restarts
    assert await probes.round() == 0  # still clear: nothing to say
    for _ in range(2):
        await breakers.record("openai/gpt-big", cfg, ok=False)
    problem[0] = "telemetry writes failing since 06:00:00: refused"
    assert await probes.round() == 2
    assert await probes.round() == 2  # repeated while it holds, pushing the expiry ahead
    await queue.flush()
    alerts = {a.dedup_key: a for a in service.alerts()}
    assert set(alerts) == {"breaker/openai/gpt-big", "telemetry_spill/n1"}
    breaker = alerts["breaker/openai/gpt-big"]
    assert (breaker.source, breaker.state, breaker.count) == ("breaker", "firing", 2)
    assert breaker.labels == {"deployment": "openai/gpt-big"}
    assert "is open" in breaker.summary
    spill = alerts["telemetry_spill/n1"]
    assert spill.summary == problem[0] and spill.labels == {"node": "n1"}
    assert spill.expires_at == T0 + timedelta(seconds=5 * EXPIRY_ROUNDS)

    now[0] += 31  # past the cooldown: a probe request closes it
    await breakers.record("openai/gpt-big", cfg, ok=True)
    problem[0] = None
    assert await probes.round() == 2
    await queue.flush()
    assert {a.dedup_key: a.state for a in service.alerts()} == {
        "breaker/openai/gpt-big": "resolved",
        "telemetry_spill/n1": "resolved",
    }
    await queue.close()


async def test_a_probe_that_raises_spares_the_others(sqlite_engine: Engine) -> None:
    watch = Watch(interval_s=5)
    got: list[str] = []

    async def broken(_at: object) -> list[object]:
        raise ConnectionError("redis down")

    probes = Probes(
        [broken, problem_probe(watch, "keystore", "page", lambda: "key store down", where="n")],  # type: ignore[list-item]
        lambda s: got.append(s.dedup_key),
        interval_s=5,
        clock=lambda: T0,
    )
    assert await probes.round() == 1
    assert got == ["keystore/n"]


async def test_a_bad_signal_does_not_hold_the_others(sqlite_engine: Engine) -> None:
    service = AlertService(sqlite_engine, AlertsConfig(), clock=lambda: T0)
    seen: list[str] = []
    queue = SignalQueue(service, on_changes=lambda cs: seen.extend(c.change for c in cs))
    queue.start()
    queue.submit(signal("bad"))
    await queue.flush()
    queue.submit(signal("good-1"))
    queue.submit(signal("bad", severity="urgent"))  # type: ignore[arg-type]
    queue.submit(signal("good-2"))
    await queue.flush()
    await queue.close()
    assert sorted(a.dedup_key for a in service.alerts()) == ["bad", "good-1", "good-2"]
    assert seen == ["opened", "opened", "opened"]


async def test_signals_wait_while_the_store_is_down(doomed_postgres: StoppablePostgres) -> None:
    """Raised while PostgreSQL is stopped, a signal is kept and recorded once it is back."""
    engine = make_engine(doomed_postgres.url)
    migrate(engine)
    service = AlertService(engine, AlertsConfig(), clock=lambda: T0)
    queue = SignalQueue(service, retry_s=0.05, max_retry_s=0.1)
    queue.start()
    doomed_postgres.halt()
    queue.submit(signal("during-the-outage"))
    await asyncio.sleep(0.3)  # a few refused attempts (the count is not asserted)
    await asyncio.to_thread(doomed_postgres.resume)
    await asyncio.wait_for(queue.flush(), 30)
    await queue.close()
    (alert,) = service.alerts()
    assert (alert.dedup_key, alert.count) == ("during-the-outage", 1)
    engine.dispose()
