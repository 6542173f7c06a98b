"""An SLO's status: a simulated month by hand, and the two low-traffic failure modes with
records written through the real TelemetryStore into SQLite."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from tests.slo.support import NOW, every, request
from trimtab.slo.burn import Counts
from trimtab.slo.rollups import minute_floor
from trimtab.slo.spec import SloDefinition, load_slos
from trimtab.slo.status import evaluate, read_status
from trimtab.telemetry.store import TelemetryStore

AVAILABILITY = load_slos(
    "slos:\n  support-availability:\n"
    "    {route: support, sli: {kind: availability}, objective: 0.999, window: 30d}\n"
)[0]


def _month(now: datetime, outage: range) -> dict[datetime, Counts]:
    """Twenty requests a minute for 30 days; half of them fail in the minutes `outage` (how
    many minutes before now's)."""
    top = minute_floor(now)
    return {top - timedelta(minutes=m): Counts(10 if m in outage else 20, 20) for m in range(43200)}


def test_a_month_by_hand() -> None:
    # an hour at 50 % errors that ended half an hour ago: 600 bad of 864,000
    status = evaluate(AVAILABILITY, _month(NOW, range(31, 91)), NOW)
    assert (status.counts.bad, status.counts.valid) == (600, 864_000)
    assert status.value == pytest.approx(1 - 600 / 864_000)
    assert status.standing == "meeting"
    assert status.budget.total == pytest.approx(864.0)
    assert status.budget.remaining == pytest.approx(264.0)
    assert status.budget.spent_share == pytest.approx(600 / 864)
    page_1h, page_6h, ticket = status.rules
    # 1 h: 29 outage minutes, 290 bad of 1,200 -> 241.7x; 5 min: none bad -> no page
    assert page_1h.long.rate == pytest.approx(290 / 1200 / 0.001)
    assert page_1h.short.rate == 0 and page_1h.state == "ok"
    assert page_6h.long.rate == pytest.approx(600 / 7200 / 0.001)
    assert page_6h.state == "ok"  # the last 30 min are clean: the page has reset
    # 3 d: 600 of 86,400 -> 6.9x; 6 h: 83.3x; both above 1
    assert ticket.long.rate == pytest.approx(600 / 86400 / 0.001)
    assert ticket.state == "firing" and status.firing == "ticket"
    # during the outage's last minute both page rules fire
    during = evaluate(AVAILABILITY, _month(NOW, range(31, 91)), NOW - timedelta(minutes=31))
    assert [v.state for v in during.rules] == ["firing", "firing", "firing"]
    assert during.rules[0].long.rate == pytest.approx(500.0)
    assert during.firing == "page"


def test_no_traffic_is_no_data_never_100_percent() -> None:
    status = evaluate(AVAILABILITY, {}, NOW)
    assert status.value is None and status.standing == "no_data"
    assert status.budget.spent_share is None
    assert [v.state for v in status.rules] == ["too_little_data"] * 3
    assert status.view(None)["sli"] is None


def _with_min_events(slo: SloDefinition, n: int) -> SloDefinition:
    return dataclasses.replace(slo, min_events=n)


def test_a_single_error_on_a_quiet_route_does_not_page(sqlite_engine: Engine) -> None:
    # one request every 10 minutes for three days; the newest one fails
    times = list(every(600, 3 * 86400))
    records = [request(i, t) for i, t in enumerate(times)]
    records[-1] = request(len(times) - 1, times[-1], status_code=502)
    TelemetryStore(sqlite_engine).write(records)
    status = read_status(sqlite_engine, AVAILABILITY, NOW)
    assert status.counts == Counts(431, 432)
    assert status.firing is None
    assert [v.state for v in status.rules] == ["too_little_data"] * 3
    page = status.rules[0]
    assert (page.long.counts.valid, page.long.min_events) == (6, 70)
    assert page.long.rate == pytest.approx(1 / 6 / 0.001)  # 167x: the burn alone would page
    # the bound is what keeps it quiet: with min_events 1 the same error pages
    eager = read_status(sqlite_engine, _with_min_events(AVAILABILITY, 1), NOW)
    assert eager.firing == "page"


def test_27x_burn_at_half_a_request_per_second_for_days_pages(sqlite_engine: Engine) -> None:
    # 0.5 req/s for two days; every 37th request fails: 2.7 % bad, 27x the 0.1 % budget
    store = TelemetryStore(sqlite_engine)
    times = list(every(2, 2 * 86400))
    batch = []
    for i, t in enumerate(times):
        batch.append(request(i, t, status_code=502 if i % 37 == 0 else 200))
        if len(batch) == 5000:
            store.write(batch)
            batch = []
    store.write(batch)
    status = read_status(sqlite_engine, AVAILABILITY, NOW)
    assert status.counts.valid == len(times) == 86400
    assert status.counts.bad / status.counts.valid == pytest.approx(1 / 37, rel=1e-3)
    assert status.budget.spent_share == pytest.approx(27.0, rel=1e-2)
    page_1h = status.rules[0]
    # the current minute is half over: 59.5 and 4.5 minutes of traffic
    assert (page_1h.long.counts.valid, page_1h.short.counts.valid) == (1785, 135)
    assert page_1h.long.rate == pytest.approx(27.0, rel=0.05)
    assert [v.state for v in status.rules] == ["firing", "firing", "firing"]
    assert status.firing == "page"
