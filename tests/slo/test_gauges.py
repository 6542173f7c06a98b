"""The SLO gauges of /metrics, refreshed from the store (real SQLite)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, event

from tests.slo.support import request
from trimtab.slo.gauges import SloGauges
from trimtab.slo.spec import load_slos
from trimtab.slo.store import SloStore
from trimtab.telemetry.store import TelemetryStore

FILE = """
slos:
  avail: {route: support, sli: {kind: availability}, objective: 0.99}
  quiet: {route: nobody, sli: {kind: availability}, objective: 0.99}
"""


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no series {series}")


async def test_gauges_show_each_slo_and_drop_what_has_no_data(sqlite_engine: Engine) -> None:
    store = SloStore(sqlite_engine)
    store.apply(load_slos(FILE), scope="acme", actor="ann")
    now = time.time()
    TelemetryStore(sqlite_engine).write(
        [request(i, now - 30 - i, status_code=502 if i < 2 else 200) for i in range(100)]
    )
    registry = CollectorRegistry()
    gauges = SloGauges(store, registry)
    await gauges.refresh()
    text = generate_latest(registry).decode()
    labels = 'slo="avail",tenant="acme"'
    assert _value(text, f"trimtab_slo_sli{{{labels}}}") == 0.98
    assert _value(text, f"trimtab_slo_objective{{{labels}}}") == 0.99
    budget = _value(text, f"trimtab_slo_error_budget_remaining_ratio{{{labels}}}")
    assert abs(budget - (-1.0)) < 1e-9  # 2 bad where 1 was allowed
    assert abs(_value(text, f'trimtab_slo_burn_rate{{{labels},window="1h"}}') - 2.0) < 1e-9
    assert '"5m"' in text and '"3d"' in text
    # no traffic: no SLI series (a gap, never 100 %); the objective is still shown
    assert 'trimtab_slo_sli{slo="quiet"' not in text
    assert _value(text, 'trimtab_slo_objective{slo="quiet",tenant="acme"}') == 0.99
    gauges.show([])  # every SLO gone: every series goes
    assert "slo=" not in generate_latest(registry).decode()


async def test_a_refresh_reads_each_selector_once(sqlite_engine: Engine) -> None:
    store = SloStore(sqlite_engine)
    three = FILE + (
        "  strict: {route: support, sli: {kind: availability}, objective: 0.999}\n"
        "  timeouts: {route: support, sli: {kind: error_rate, class: timeout}, objective: 0.9}\n"
    )
    store.apply(load_slos(three), scope="acme", actor="ann")
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "rollups_minute" in statement:
            statements.append(statement)

    event.listen(sqlite_engine, "before_cursor_execute", seen)
    try:
        await SloGauges(store, CollectorRegistry()).refresh()
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", seen)
    # route support (avail, strict, timeouts) and route nobody (quiet): two queries, not four
    assert len(statements) == 2, statements
