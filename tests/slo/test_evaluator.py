"""The SLO evaluator over real stores: its signals (keys, severities, labels, evidence),
the minimum of events on a quiet route and a slow burning one, and its lease — only the
holder reads and emits, two processes on one PostgreSQL page once, a holder that stops
renewing is taken over, one that stops gives the lease up. Cycles run with an explicit
`now`; records go through the real TelemetryStore."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.registry.support import routes_file
from tests.slo.support import NOW, every, guardrails, request
from tests.support import GatewayFactory, new_database, wait_for
from trimtab.alerts.service import AlertService
from trimtab.alerts.signal import Signal
from trimtab.config import AlertsConfig
from trimtab.registry.scope import Applier
from trimtab.registry.store import RouteStore
from trimtab.slo.evaluator import LEASE, SloEvaluator, read_statuses
from trimtab.slo.spec import load_slos
from trimtab.slo.status import read_status
from trimtab.slo.store import SloStore
from trimtab.store.engine import make_engine, migrate
from trimtab.store.leases import Leases
from trimtab.telemetry.store import TelemetryStore
from trimtab.testing.postgres_server import PostgresServer

ADMIN = Applier("ops@acme", "", admin=True)

SLOS = """
slos:
  support-availability:
    route: support
    sli: {kind: availability}
    objective: 0.999
  support-availability-eager:
    route: support
    sli: {kind: availability}
    objective: 0.999
    alerting: {min_events: 1}
"""


class Collected:
    """An `emit` that keeps what it is given."""

    def __init__(self) -> None:
        self.batches: list[list[Signal]] = []

    def __call__(self, signals: Sequence[Signal]) -> None:
        self.batches.append(list(signals))

    @property
    def signals(self) -> list[Signal]:
        return [s for batch in self.batches for s in batch]


def _nothing(signals: Sequence[Signal]) -> None:
    return None


def setup(engine: Engine, slos: str = SLOS) -> None:
    SloStore(engine).apply(load_slos(slos), scope="", actor="ops@acme")
    RouteStore(engine).apply(
        routes_file(route="support", owner="support-ml@acme.example"),
        applier=ADMIN,
        message="v1",
    )


def evaluator(engine: Engine, holder: str = "a") -> SloEvaluator[Any]:
    return SloEvaluator(engine, _nothing, holder=holder, interval_s=30)


def by_key(signals: Sequence[Signal]) -> dict[str, Signal]:
    return {s.dedup_key: s for s in signals}


def quiet_route(engine: Engine) -> None:
    """One request every 10 minutes for three days; the newest one failed."""
    times = list(every(600, 3 * 86400))
    records = [request(i, t) for i, t in enumerate(times)]
    records[-1] = request(len(times) - 1, times[-1], status_code=502)
    TelemetryStore(engine).write(records)


def test_every_rule_of_every_slo_is_a_signal_with_its_evidence(engine: Engine) -> None:
    setup(engine)
    quiet_route(engine)
    cycle = evaluator(engine).cycle(NOW)
    assert cycle.held and cycle.slos == 2 and cycle.rollbacks == []
    signals = by_key(cycle.signals)
    assert sorted(signals) == sorted(
        f"slo_burn/{slo}/{rule}"
        for slo in ("support-availability", "support-availability-eager")
        for rule in ("page-1h-5m", "page-6h-30m", "ticket-3d-6h")
    )
    s = signals["slo_burn/support-availability-eager/page-1h-5m"]
    assert (s.source, s.severity, s.firing, s.at) == ("slo_burn", "page", True, NOW)
    assert s.labels == {
        "slo": "support-availability-eager",
        "route": "support",
        "owner": "support-ml@acme.example",
    }
    d = s.details
    assert (d["rule"], d["state"], d["min_events"], d["factor"]) == (
        "page-1h-5m",
        "firing",
        1,
        14.4,
    )
    assert "Wilson" in str(d["method"]) and d["confidence"] == 0.95
    long, short = d["long_window"], d["short_window"]
    assert isinstance(long, dict) and isinstance(short, dict)
    # 6 requests in the hour, one bad: 1/6 / 0.001; the 5 minutes hold the bad one alone
    assert (long["window"], long["valid"], long["bad"]) == ("1h", 6, 1)
    assert long["burn"] == pytest.approx(1 / 6 / 0.001)
    assert long["low"] < long["burn"] < long["high"]
    assert (short["window"], short["valid"], short["bad"]) == ("5m", 1, 1)
    assert short["burn"] == pytest.approx(1000.0)
    assert d["objective"] == 0.999 and d["sli"] == pytest.approx(431 / 432)
    assert "burning its error budget 166.7x over 1h and 1,000.0x over 5m" in s.summary


def test_a_single_error_on_a_quiet_route_does_not_page(engine: Engine) -> None:
    setup(engine)
    quiet_route(engine)
    signals = by_key(evaluator(engine).cycle(NOW).signals)
    default = [s for k, s in signals.items() if k.startswith("slo_burn/support-availability/")]
    assert len(default) == 3 and not any(s.firing for s in default)
    page = signals["slo_burn/support-availability/page-1h-5m"]
    assert page.details["state"] == "too_little_data" and page.details["min_events"] == 70
    assert "too little data (6 and 1 events, 70 needed in each window)" in page.summary
    # the same data with the SLO file's bound of one event pages
    eager = signals["slo_burn/support-availability-eager/page-1h-5m"]
    assert eager.firing and eager.severity == "page"


def test_days_of_27x_burn_at_half_a_request_per_second_page(sqlite_engine: Engine) -> None:
    setup(sqlite_engine)
    store = TelemetryStore(sqlite_engine)
    times = list(every(2, 2 * 86400))
    batch = []
    for i, t in enumerate(times):
        batch.append(request(i, t, status_code=502 if i % 37 == 0 else 200))
        if len(batch) == 5000:
            store.write(batch)
            batch = []
    store.write(batch)
    signals = by_key(evaluator(sqlite_engine).cycle(NOW).signals)
    for rule in ("page-1h-5m", "page-6h-30m", "ticket-3d-6h"):
        s = signals[f"slo_burn/support-availability/{rule}"]
        assert s.firing, rule
    page = signals["slo_burn/support-availability/page-1h-5m"]
    long, short = page.details["long_window"], page.details["short_window"]
    assert isinstance(long, dict) and isinstance(short, dict)
    assert (long["valid"], short["valid"]) == (1785, 135)  # above the default bound of 70
    assert long["burn"] == pytest.approx(27.0, rel=0.05)


def test_nothing_fires_on_a_healthy_route_and_no_traffic_is_no_page(engine: Engine) -> None:
    setup(engine)
    cycle = evaluator(engine).cycle(NOW)
    assert len(cycle.signals) == 6 and not any(s.firing for s in cycle.signals)
    TelemetryStore(engine).write([request(i, t) for i, t in enumerate(every(1, 3600))])
    cycle = evaluator(engine).cycle(NOW)
    assert not any(s.firing for s in cycle.signals)
    ok = by_key(cycle.signals)["slo_burn/support-availability/page-1h-5m"]
    assert ok.details["state"] == "ok" and "page-1h-5m clear, burn 0.0x over 1h" in ok.summary


def test_a_tenants_slo_has_its_own_key_and_tenant_label(engine: Engine) -> None:
    SloStore(engine).apply(
        load_slos("slos:\n  avail: {route: support, sli: {kind: availability}, objective: 0.99}\n"),
        scope="acme",
        actor="ml@acme",
    )
    signals = by_key(evaluator(engine).cycle(NOW).signals)
    s = signals["slo_burn/acme:avail/page-1h-5m"]
    assert s.labels == {"slo": "avail", "route": "support", "tenant": "acme"}
    assert s.details["tenant"] == "acme"


def test_only_the_lease_holder_reads_and_emits(engine: Engine) -> None:
    setup(engine)
    quiet_route(engine)
    a, b = evaluator(engine, "a"), evaluator(engine, "b")
    first = a.cycle(NOW)
    assert first.held and first.signals
    second = b.cycle(NOW + timedelta(seconds=1))
    assert not second.held and second.signals == [] and second.slos == 0
    # a keeps renewing every 30 s: b never gets it
    for k in range(1, 5):
        assert a.cycle(NOW + timedelta(seconds=30 * k)).held
        assert not b.cycle(NOW + timedelta(seconds=30 * k + 1)).held


def test_a_holder_that_stops_renewing_is_taken_over_after_its_ttl(engine: Engine) -> None:
    setup(engine)
    quiet_route(engine)
    a, b = evaluator(engine, "a"), evaluator(engine, "b")
    assert a.ttl_s == 90  # three intervals
    assert a.cycle(NOW).held
    assert not b.cycle(NOW + timedelta(seconds=89)).held
    # a renewed at the end of its cycle (NOW + the cycle's wall time): past its TTL by
    # any cycle shorter than 30 s, b takes over
    taken = b.cycle(NOW + timedelta(seconds=120))
    assert taken.held and taken.lease is not None and taken.lease.epoch == 2
    assert any(s.firing for s in taken.signals)  # the new holder repeats what fires
    back = a.cycle(NOW + timedelta(seconds=125))  # the old one comes back: refused
    assert not back.held and back.signals == []


async def test_tick_emits_the_holders_signals_and_stop_hands_the_lease_over(
    engine: Engine,
) -> None:
    setup(engine)
    quiet_route(engine)
    got_a, got_b = Collected(), Collected()
    received: list[list[Signal]] = []

    async def emit_b(signals: Sequence[Signal]) -> None:  # a coroutine function is awaited
        received.append(list(signals))
        got_b(signals)

    clock = [NOW]
    a: SloEvaluator[Any] = SloEvaluator(engine, got_a, holder="a", clock=lambda: clock[0])
    b: SloEvaluator[Any] = SloEvaluator(engine, emit_b, holder="b", clock=lambda: clock[0])
    await a.tick()
    await b.tick()
    assert len(got_a.batches) == 1 and len(got_a.signals) == 6
    assert got_b.batches == []
    await a.stop()  # releases the lease: b takes it at its next cycle, not after the TTL
    assert not a.cycle(NOW).held  # and a stopped evaluator takes it no more
    clock[0] = NOW + timedelta(seconds=1)
    await b.tick()
    assert len(received) == 1 and by_key(received[0]).keys() == by_key(got_a.signals).keys()
    held = Leases(engine).holder(LEASE, clock[0])
    assert held is not None and held.holder == "b"


def test_two_processes_on_one_postgresql_page_once(postgres_server: PostgresServer) -> None:
    """Two evaluators, each with its own engine as two server processes have, both cycle
    at the same moments: every page is emitted by one of them, once a cycle."""
    url = new_database(postgres_server)
    engines = [make_engine(url), make_engine(url)]
    migrate(engines[0])
    setup(engines[0])
    quiet_route(engines[0])
    emitted = [Collected(), Collected()]
    clock = [NOW]
    evaluators: list[SloEvaluator[Any]] = [
        SloEvaluator(e, got, holder=f"p{i}", clock=lambda: clock[0])
        for i, (e, got) in enumerate(zip(engines, emitted, strict=True))
    ]

    async def both() -> None:
        await asyncio.gather(*(ev.tick() for ev in evaluators))

    try:
        for k in range(4):
            clock[0] = NOW + timedelta(seconds=30 * k)
            asyncio.run(both())
    finally:
        for e in engines:
            e.dispose()
    pages = [
        s.dedup_key
        for got in emitted
        for s in got.signals
        if s.firing and s.dedup_key.endswith("page-1h-5m")
    ]
    assert pages == ["slo_burn/support-availability-eager/page-1h-5m"] * 4
    assert sorted(len(got.batches) for got in emitted) == [0, 4]


def test_rule_ids_name_the_severity_and_both_windows(engine: Engine) -> None:
    setup(
        engine,
        "slos:\n  a:\n    route: support\n    sli: {kind: availability}\n    objective: 0.99\n"
        "    window: 7d\n",
    )
    cycle = evaluator(engine).cycle(NOW)
    assert sorted(str(s.details["rule"]) for s in cycle.signals) == [
        "page-14m-1m",
        "page-84m-7m",
        "ticket-1008m-84m",
    ]


MIXED = """
slos:
  availability: {route: support, sli: {kind: availability}, objective: 0.99}
  availability-7d: {route: support, sli: {kind: availability}, objective: 0.99, window: 7d}
  timeouts: {route: support, sli: {kind: error_rate, class: timeout}, objective: 0.99}
  limited: {route: support, sli: {kind: error_rate, class: rate_limited}, objective: 0.9}
  server: {route: support, sli: {kind: error_rate, class: server}, objective: 0.99}
  latency: {route: support, sli: {kind: latency, threshold_ms: 150}, objective: 0.9}
  latency-130: {route: support, sli: {kind: latency, threshold_ms: 130}, objective: 0.9}
  latency-7d: {route: support, sli: {kind: latency, threshold_ms: 150}, objective: 0.9, window: 7d}
  ttft: {route: support, sli: {kind: latency, threshold_ms: 70, of: ttft}, objective: 0.9}
  other-tenant: {route: support, tenant: globex, sli: {kind: availability}, objective: 0.99}
  model: {model: gpt-mock, sli: {kind: availability}, objective: 0.999}
"""


def test_the_shared_per_selector_read_gives_each_slos_own_status(engine: Engine) -> None:
    """`read_statuses` (one read per selector: the status-code SLIs' sums taken in the
    pass that reads the latency sketches) against `read_status` of each SLO alone (the
    database's sums), over every kind of status the gateway records."""
    statuses = (200, 200, 200, 400, 429, 499, 502, 503, 504, 500, 200, 201)
    records = [
        request(
            i,
            t,
            status_code=statuses[i % len(statuses)],
            duration_ms=100.0 + (i % 7) * 20,
            ttft_ms=50.0 + (i % 5) * 10 if i % 3 else None,
            tenant="globex" if i % 5 == 0 else "acme",
        )
        for i, t in enumerate(every(301, 8 * 86400))
    ]
    TelemetryStore(engine).write(records)
    definitions = load_slos(MIXED)
    together = read_statuses(engine, definitions, NOW)
    alone = [read_status(engine, d, NOW) for d in definitions]
    assert together == alone
    assert all(s.counts.valid > 0 for s in together)


def test_the_server_runs_the_evaluator_and_gives_its_lease_up_when_it_stops(
    gateway: GatewayFactory, sqlite_url: str
) -> None:
    running = gateway()
    evaluator = running.server_app.state.slo_evaluator
    assert isinstance(evaluator, SloEvaluator)
    assert evaluator.ttl_s == 90  # slo.evaluate_interval_s's default, 30 s, three times
    engine = make_engine(sqlite_url)  # the server's own is disposed when it stops
    leases = Leases(engine)
    try:
        wait_for(lambda: leases.holder(LEASE) is not None)  # the first cycle runs at start
        held = leases.holder(LEASE)
        assert held is not None and held.holder == evaluator.holder
        running.server.stop()
        assert leases.holder(LEASE) is None
        released = leases.current(LEASE)
        assert released is not None and released.holder == evaluator.holder
    finally:
        engine.dispose()


def test_two_processes_open_one_alert_and_resolve_it_when_the_burn_clears(
    postgres_server: PostgresServer,
) -> None:
    """The whole path in two processes' worth of objects on one PostgreSQL: each has its
    engine, evaluator and alert service (alerts/service.py), both cycle at the same
    moments. The page opens one alert, updated by every cycle, resolved once the bad
    request has left the short window."""
    url = new_database(postgres_server)
    engines = [make_engine(url), make_engine(url)]
    migrate(engines[0])
    setup(engines[0])
    quiet_route(engines[0])
    clock = [NOW]
    services = [AlertService(e, AlertsConfig(), clock=lambda: clock[0]) for e in engines]
    evaluators: list[SloEvaluator[Any]] = [
        SloEvaluator(e, service.observe, holder=f"p{i}", clock=lambda: clock[0])
        for i, (e, service) in enumerate(zip(engines, services, strict=True))
    ]

    async def both() -> None:
        await asyncio.gather(*(ev.tick() for ev in evaluators))

    key = "slo_burn/support-availability-eager/page-1h-5m"
    try:
        for k in range(3):
            clock[0] = NOW + timedelta(seconds=30 * k)
            asyncio.run(both())
        (alert,) = [a for a in services[1].alerts(sources=["slo_burn"]) if a.dedup_key == key]
        assert (alert.state, alert.severity, alert.count) == ("firing", "page", 3)
        assert alert.owner == "support-ml@acme.example"
        firing = {a.dedup_key for a in services[0].alerts(states=["firing"])}
        assert all(k.startswith("slo_burn/support-availability-eager/") for k in firing)
        clock[0] = NOW + timedelta(minutes=10)  # the 5 minutes hold no request now
        asyncio.run(both())
        (after,) = [a for a in services[0].alerts(sources=["slo_burn"]) if a.dedup_key == key]
        assert after.id == alert.id and after.state == "resolved"
    finally:
        for e in engines:
            e.dispose()


def test_in_the_server_a_failing_model_pages_through_the_alert_pipeline(
    gateway: GatewayFactory,
) -> None:
    """End to end in one server: requests to a model whose provider fails are recorded,
    merged into the rollups, judged by the server's evaluator (every 0.2 s here) and
    submitted to its alert runtime, which opens the page alert."""
    running = gateway(slo={"evaluate_interval_s": 0.2})
    SloStore(running.engine).apply(
        load_slos(
            "slos:\n  gpt-500-availability:\n    model: gpt-500\n"
            "    sli: {kind: availability}\n    objective: 0.99\n    alerting: {min_events: 3}\n"
        ),
        scope="",
        actor="ops@acme",
    )
    with httpx.Client(base_url=running.url, timeout=10) as http:
        for _ in range(5):
            answer = http.post(
                "/v1/chat/completions",
                json={"model": "gpt-500", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert answer.status_code >= 500
    service = running.server_app.state.alerts.service
    key = "slo_burn/gpt-500-availability/page-1h-5m"

    def paged() -> list[Any]:
        return [a for a in service.alerts(states=["firing"]) if a.dedup_key == key]

    def all_five() -> bool:  # a cycle may page on the first 3 merged; later ones update it
        return any(a.details["short_window"]["valid"] == 5 for a in paged())

    wait_for(all_five)
    (alert,) = paged()
    assert alert.severity == "page" and alert.source == "slo_burn"
    assert alert.labels["model"] == "gpt-500"
    short = alert.details["short_window"]
    assert short["valid"] == 5 and short["bad"] == 5


def test_a_guardrail_slo_read_with_the_others_gives_its_own_status(engine: Engine) -> None:
    """`read_statuses` reads a guardrail SLO with its own sums, beside the status-code
    SLOs of the same selector, as `read_status` reads it alone."""
    records = [
        request(i, t, attributes=guardrails("input.pii") if i % 4 == 0 else guardrails())
        for i, t in enumerate(every(301, 2 * 86400))
    ]
    TelemetryStore(engine).write(records)
    definitions = load_slos(
        """
slos:
  avail: {route: support, sli: {kind: availability}, objective: 0.99}
  guarded: {route: support, sli: {kind: guardrail}, objective: 0.9}
"""
    )
    together = read_statuses(engine, definitions, NOW)
    assert together == [read_status(engine, d, NOW) for d in definitions]
    guarded = together[1]
    assert guarded.counts.valid == len(records)
    assert guarded.counts.bad == len(records[::4])
