"""The cost SLI (cost per successful request against a ceiling; slo/kinds.py,
sli.cost_counts): requests written through the real TelemetryStore, counted from the
rollups' cost sketches per minute and over windows, several ceilings of one selector
from one read. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, event

from tests.slo.support import NOW, request
from trimtab.slo.burn import Counts
from trimtab.slo.evaluator import read_statuses
from trimtab.slo.rollups import minute_floor, read_series, read_windows, window_counts
from trimtab.slo.sli import COST_CAVEAT
from trimtab.slo.spec import Sli, SlosError, load_slos, parse_slos
from trimtab.slo.status import read_status
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.store import TelemetryStore

SLOS = load_slos(
    """
slos:
  cheap: {route: support, sli: {kind: cost, ceiling_usd: 0.02}, objective: 0.9}
  cheaper: {route: support, sli: {kind: cost, ceiling_usd: 0.005}, objective: 0.9}
  fast: {route: support, sli: {kind: latency, threshold_ms: 1000}, objective: 0.9}
"""
)
CHEAP, CHEAPER = SLOS[0], SLOS[1]


def test_the_spec_parses_survives_its_stored_form_and_is_strict() -> None:
    assert CHEAP.sli == Sli("cost", ceiling_usd=0.02)
    assert CHEAP.to_json()["sli"] == {"kind": "cost", "ceiling_usd": 0.02}
    assert CHEAP.sli.describe() == "cost <= $0.02"
    (again,) = parse_slos({"slos": {CHEAP.name: CHEAP.to_json()}})
    assert again == CHEAP and again.digest == CHEAP.digest
    bad = """slos:
  a: {route: r, sli: {kind: cost, ceiling_usd: 0}, objective: 0.9}
  b: {route: r, sli: {kind: cost}, objective: 0.9}
  c: {route: r, sli: {kind: cost, ceiling_usd: 0.1, per: session}, objective: 0.9}
  d: {route: r, sli: {kind: cost, ceiling_usd: "0.1"}, objective: 0.9}
"""
    with pytest.raises(SlosError) as caught:
        load_slos(bad, "f.yaml")
    assert caught.value.problems == [
        "f.yaml: slos.a.sli.ceiling_usd: Input should be greater than 0",
        "f.yaml: slos.b.sli.ceiling_usd: Field required",
        "f.yaml: slos.c.sli.per: unknown key",
        "f.yaml: slos.d.sli.ceiling_usd: Input should be a valid number",
    ]


def _write(engine: Engine) -> None:
    t = NOW.timestamp()
    store = TelemetryStore(engine)
    store.write(
        [
            request(1, t - 10, cost_usd=0.001),  # within both
            request(2, t - 11, cost_usd=0.01),  # within $0.02, over $0.005
            request(3, t - 12, cost_usd=0.05),  # over both
            request(4, t - 13, cost_usd=None),  # unknown: 0, the zero bin
            request(5, t - 14, status_code=502, cost_usd=0.5),  # not answered: neither
            request(6, t - 15, status_code=429),  # neither
        ]
    )
    store.write(  # merged into the first batch's rows
        [
            request(7, t - 16, cost_usd=0.0),
            request(8, t - 70, cost_usd=0.03, tenant="globex"),
            request(9, t - 71, cost_usd=0.004),
            request(10, t - 72, route="other", cost_usd=1.0),
        ]
    )


def test_counts_per_minute_and_over_windows(engine: Engine) -> None:
    _write(engine)
    now_minute = minute_floor(NOW)
    series = read_series(engine, CHEAP, NOW, 60)
    assert series == {
        now_minute: Counts(4, 5),  # 1, 2, 4, 7 good; 3 bad; 5 and 6 not answered
        now_minute - timedelta(minutes=1): Counts(1, 2),  # 9 good; 8 bad
    }
    assert read_series(engine, CHEAPER, NOW, 60) == {
        now_minute: Counts(3, 5),  # 1, 4, 7
        now_minute - timedelta(minutes=1): Counts(1, 2),
    }
    windows = [1, 2, 60]
    for d in (CHEAP, CHEAPER):
        got = read_windows(engine, d, NOW, windows)
        assert got == {w: window_counts(read_series(engine, d, NOW, 60), NOW, w) for w in windows}
    assert read_windows(engine, CHEAP, NOW, [60]) == {60: Counts(5, 7)}
    status = read_status(engine, CHEAP, NOW)
    assert status.view(None)["notes"] == [COST_CAVEAT]
    # compacted, the closed hour's row merges the cost sketches: the same counts
    compact(engine, NOW + timedelta(hours=2), limit=10)
    later = NOW + timedelta(hours=1)
    assert read_windows(engine, CHEAP, later, [180]) == {180: Counts(5, 7)}
    assert read_windows(engine, CHEAPER, later, [180]) == {180: Counts(4, 7)}


def test_the_sketches_of_one_selector_are_read_in_one_pass(engine: Engine) -> None:
    _write(engine)
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "cost_sketch" in statement or "latency_sketch" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        statuses = read_statuses(engine, SLOS, NOW)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statuses == [read_status(engine, d, NOW) for d in SLOS]
    assert len(statements) == 1  # the two ceilings' sketches and the latency ones: one read
    assert [s.counts for s in statuses[:2]] == [Counts(5, 7), Counts(4, 7)]


def test_summed_kinds_beside_sketched_ones_are_summed_in_the_same_pass(engine: Engine) -> None:
    """A selector with both: every SLI from one read of its rows, the summed kinds' sums
    taken in that pass equal to what the database sums for them alone."""
    _write(engine)
    compact(engine, NOW + timedelta(hours=2))  # hour rows too: nothing to compact yet
    mixed = load_slos(
        """
slos:
  up: {route: support, sli: {kind: availability}, objective: 0.9}
  thumbs: {route: support, sli: {kind: negative_feedback}, objective: 0.9}
  guarded: {route: support, sli: {kind: guardrail}, objective: 0.9}
  gateway: {route: support, sli: {kind: error_rate, class: bad_gateway}, objective: 0.9}
  cheap: {route: support, sli: {kind: cost, ceiling_usd: 0.02}, objective: 0.9}
  fast: {route: support, sli: {kind: latency, threshold_ms: 1000}, objective: 0.9}
"""
    )
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "rollups_minute" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        statuses = read_statuses(engine, mixed, NOW)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    alone = [read_status(engine, d, NOW) for d in mixed]  # the summed ones by the database
    assert statuses == alone
    up, _, _, gateway, cheap, _ = statuses
    # 9 requests on support: 429 in neither, the 502 bad
    assert (up.counts, gateway.counts, cheap.counts) == (Counts(7, 8), Counts(7, 8), Counts(5, 7))


def test_no_traffic_is_no_data(engine: Engine) -> None:
    status = read_status(engine, CHEAP, NOW)
    assert status.value is None and status.standing == "no_data"
