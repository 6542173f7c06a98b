"""SLIs from the per-minute rollups the real TelemetryStore writes, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import Engine

from tests.slo.support import NOW, guardrails, request
from trimtab.slo.burn import Counts
from trimtab.slo.rollups import (
    minute_floor,
    read_series,
    read_windows,
    window_counts,
)
from trimtab.slo.spec import Sli, load_slos
from trimtab.telemetry.store import TelemetryStore

SLOS = {
    d.name: d
    for d in load_slos(
        """
slos:
  avail: {route: support, sli: {kind: availability}, objective: 0.99}
  acme-avail: {route: support, tenant: acme, sli: {kind: availability}, objective: 0.99}
  fast: {route: support, sli: {kind: latency, threshold_ms: 1000}, objective: 0.9}
  first-token: {route: support, sli: {kind: latency, threshold_ms: 300, of: ttft}, objective: 0.9}
  timeouts: {model: gpt-mock, sli: {kind: error_rate, class: timeout}, objective: 0.99}
"""
    )
}


def _write(engine: Engine) -> None:
    t = NOW.timestamp()
    records = [
        request(1, t - 10, duration_ms=200),
        request(2, t - 11, duration_ms=1500),  # slow
        request(3, t - 12, status_code=502, duration_ms=50),  # a cut stream
        request(4, t - 13, status_code=504, duration_ms=60_000),  # a timeout
        request(5, t - 14, status_code=499),  # the client went away: in neither count
        request(6, t - 15, status_code=400),
        request(7, t - 70, tenant="globex", streamed=True, ttft_ms=100, duration_ms=900),
        request(8, t - 71, streamed=True, ttft_ms=400, duration_ms=800),
        request(9, t - 72, route="other", status_code=502),  # another route
        request(11, t - 73, status_code=429),
        request(12, t - 74, status_code=503),
        request(10, t - 3 * 60, duration_ms=100),  # three minutes ago
    ]
    TelemetryStore(engine).write(records)


def test_counts_per_minute_and_sli(engine: Engine) -> None:
    _write(engine)
    now_minute = minute_floor(NOW)
    avail = read_series(engine, SLOS["avail"], NOW, 60)
    assert avail[now_minute] == Counts(2, 4)  # 1, 2 good; 3, 4 bad; 5, 6 excluded
    assert avail[now_minute - timedelta(minutes=1)] == Counts(2, 3)  # 7, 8 good; 12 bad; 11 out
    assert window_counts(avail, NOW, 2) == Counts(4, 7)
    assert window_counts(avail, NOW, 60) == Counts(5, 8)
    acme = read_series(engine, SLOS["acme-avail"], NOW, 60)
    assert window_counts(acme, NOW, 60) == Counts(4, 7)  # not globex's request 7
    fast = window_counts(read_series(engine, SLOS["fast"], NOW, 60), NOW, 60)
    assert fast == Counts(4, 8)  # 1, 7, 8, 10 within 1 s; 2 slow; 3, 4, 12 failed
    ttft = window_counts(read_series(engine, SLOS["first-token"], NOW, 60), NOW, 60)
    assert ttft == Counts(1, 2)  # only requests with a first token: 7 yes, 8 no
    timeouts = window_counts(read_series(engine, SLOS["timeouts"], NOW, 60), NOW, 60)
    assert timeouts == Counts(8, 9)  # 504 bad; 502s of both routes, 503 good for this class


def test_a_window_reads_only_its_minutes(engine: Engine) -> None:
    _write(engine)
    assert window_counts(read_series(engine, SLOS["avail"], NOW, 2), NOW, 60) == Counts(4, 7)
    assert read_series(engine, SLOS["avail"], NOW - timedelta(hours=1), 30) == {}


def test_the_databases_sums_agree_with_the_per_minute_reading(engine: Engine) -> None:
    _write(engine)
    windows = [1, 2, 5, 60]
    for name in ("avail", "acme-avail", "timeouts", "fast"):
        slo = SLOS[name]
        series = read_series(engine, slo, NOW, 60)
        expected = {w: window_counts(series, NOW, w) for w in windows}
        assert read_windows(engine, slo, NOW, windows) == expected, name
    for error_class in ("bad_gateway", "unavailable", "rate_limited", "server"):
        slo = dataclasses.replace(SLOS["timeouts"], sli=Sli("error_rate", error_class=error_class))
        series = read_series(engine, slo, NOW, 60)
        assert read_windows(engine, slo, NOW, [60]) == {60: window_counts(series, NOW, 60)}


GUARDED = load_slos("slos:\n  g: {route: support, sli: {kind: guardrail}, objective: 0.99}\n")[0]


def test_the_guardrail_sli_counts_the_requests_a_guardrail_fired_on(engine: Engine) -> None:
    """Written through the real TelemetryStore in two batches (the second merges into the
    first's rows), read per minute and summed by the database, on SQLite and PostgreSQL."""
    t = NOW.timestamp()
    store = TelemetryStore(engine)
    store.write(
        [
            request(1, t - 10, attributes=guardrails("input.pii")),  # flagged, served
            request(2, t - 11, attributes=guardrails()),  # checks ran, none fired
            request(3, t - 12),  # no policy
            request(4, t - 13, status_code=400, attributes=guardrails("input.injection")),
            request(5, t - 14, status_code=400),  # the caller's own bad request: neither
            request(6, t - 70, status_code=502, attributes=guardrails()),
        ]
    )
    store.write(
        [
            request(7, t - 15, attributes=guardrails("input.pii", "input.injection")),
            request(8, t - 71, attributes=guardrails("input.pii")),
            request(9, t - 72, route="other", attributes=guardrails("input.pii")),
        ]
    )
    now_minute = minute_floor(NOW)
    series = read_series(engine, GUARDED, NOW, 60)
    assert series == {
        now_minute: Counts(2, 5),  # 2, 3 good; 1, 4, 7 bad
        now_minute - timedelta(minutes=1): Counts(1, 2),  # 6 good, 8 bad
    }
    windows = [1, 2, 60]
    expected = {w: window_counts(series, NOW, w) for w in windows}
    assert read_windows(engine, GUARDED, NOW, windows) == expected
    assert expected[60] == Counts(3, 7)
    v2 = dataclasses.replace(GUARDED, selector=dataclasses.replace(GUARDED.selector, version="2"))
    assert read_windows(engine, v2, NOW, windows) == {w: Counts(0, 0) for w in windows}
