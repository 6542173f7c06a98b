"""The refusal SLI (an answer the model did not refuse; slo/kinds.py, sli.refusal_counts):
requests written through the real TelemetryStore, counted from the rollups' `refused` per
minute and over windows against hand-computed counts, beside the other summed kinds of its
selector, across the compaction, in the evaluator's burn alerts, and with the rows from
before migration 0017 (NULL) in neither count: "no data", never 100 %. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, update

from tests.slo.support import NOW, every, request
from trimtab.slo.burn import Counts
from trimtab.slo.evaluator import SloEvaluator, read_statuses
from trimtab.slo.rollups import minute_floor, read_series, read_windows, window_counts
from trimtab.slo.sli import REFUSAL_CAVEAT, refusal_counts
from trimtab.slo.spec import Sli, SlosError, load_slos, parse_slos
from trimtab.slo.status import read_status
from trimtab.slo.store import SloStore
from trimtab.store.tables import rollups, rollups_hour
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.store import TelemetryStore

SLOS = load_slos(
    """
slos:
  answers: {route: support, sli: {kind: refusal}, objective: 0.9}
  up: {route: support, sli: {kind: availability}, objective: 0.9}
  guarded: {route: support, sli: {kind: guardrail}, objective: 0.9}
"""
)
ANSWERS = SLOS[0]
MINUTE = minute_floor(NOW)


def test_the_spec_parses_survives_its_stored_form_and_is_strict() -> None:
    assert ANSWERS.sli == Sli("refusal")
    assert ANSWERS.to_json()["sli"] == {"kind": "refusal"}
    assert ANSWERS.sli.describe() == "refusal"
    (again,) = parse_slos({"slos": {ANSWERS.name: ANSWERS.to_json()}})
    assert again == ANSWERS and again.digest == ANSWERS.digest
    bad = """slos:
  a: {route: r, sli: {kind: refusal, reasons: [content_filter]}, objective: 0.9}
  b: {route: r, sli: {kind: refusals}, objective: 0.9}
"""
    with pytest.raises(SlosError) as caught:
        load_slos(bad, "f.yaml")
    problems = caught.value.problems
    assert problems[0] == "f.yaml: slos.a.sli.reasons: unknown key"
    assert problems[1].startswith("f.yaml: slos.b.sli: Input tag 'refusals' found using 'kind'")
    assert "'refusal'" in problems[1] and len(problems) == 2


def test_what_a_row_counts() -> None:
    assert refusal_counts(200, 10, 3) == Counts(7, 10)
    assert refusal_counts(201, 2, 0) == Counts(2, 2)
    for status in (400, 422, 429, 499, 500, 502, 504):  # errors, blocks: in neither count
        assert refusal_counts(status, 5, 0) == Counts(0, 0)


def _write(engine: Engine) -> None:
    t = NOW.timestamp()
    store = TelemetryStore(engine)
    store.write(
        [
            request(1, t - 10, finish_reasons=["stop"]),
            request(2, t - 11, finish_reasons=["content_filter"]),
            request(3, t - 12, finish_reasons=["refusal"], api="anthropic"),
            request(4, t - 13),  # no finish reason recorded: answered, not refused
            request(5, t - 14, status_code=502),  # not answered: neither
            request(6, t - 15, status_code=400, finish_reasons=None),  # neither
        ]
    )
    store.write(  # merged into the first batch's rows
        [
            request(7, t - 16, finish_reasons=["end_turn"]),
            request(8, t - 70, finish_reasons=["stop", "content_filter"], tenant="globex"),
            request(9, t - 71, finish_reasons=["length"]),
            request(10, t - 72, route="other", finish_reasons=["content_filter"]),
        ]
    )


def test_counts_per_minute_and_over_windows(engine: Engine) -> None:
    _write(engine)
    assert read_series(engine, ANSWERS, NOW, 60) == {
        MINUTE: Counts(3, 5),  # 1, 4, 7 good; 2, 3 refused; 5 and 6 not answered
        MINUTE - timedelta(minutes=1): Counts(1, 2),  # 9 good; 8 refused (one choice of two)
    }
    windows = [1, 2, 60]
    got = read_windows(engine, ANSWERS, NOW, windows)
    assert got == {1: Counts(3, 5), 2: Counts(4, 7), 60: Counts(4, 7)}
    assert got == {w: window_counts(read_series(engine, ANSWERS, NOW, 60), NOW, w) for w in windows}
    status = read_status(engine, ANSWERS, NOW)
    assert status.view(None)["notes"] == [REFUSAL_CAVEAT]
    assert (status.counts, status.standing) == (Counts(4, 7), "missing")  # 57 % < 90 %
    # compacted, the closed hour's row sums the refusals: the same counts
    compact(engine, NOW + timedelta(hours=2), limit=10)
    later = NOW + timedelta(hours=1)
    assert read_windows(engine, ANSWERS, later, [180]) == {180: Counts(4, 7)}


def test_read_beside_the_other_summed_kinds_of_its_selector(engine: Engine) -> None:
    _write(engine)
    statuses = read_statuses(engine, SLOS, NOW)
    assert statuses == [read_status(engine, d, NOW) for d in SLOS]
    answers, up, guarded = statuses
    assert answers.counts == Counts(4, 7)
    assert up.counts == Counts(7, 8)  # the 400 in neither, the 502 bad
    assert guarded.counts == Counts(8, 8)  # no guardrail fired; the 400 in neither


def test_rows_from_before_the_column_are_no_data(engine: Engine) -> None:
    _write(engine)
    with engine.begin() as conn:  # as migration 0017 leaves the rows written before it
        conn.execute(update(rollups).values(refused=None))
    status = read_status(engine, ANSWERS, NOW)
    assert status.counts == Counts(0, 0) and status.value is None
    assert status.standing == "no_data"
    assert read_series(engine, ANSWERS, NOW, 60) == {}
    assert read_status(engine, SLOS[1], NOW).counts == Counts(7, 8)  # the others unchanged
    # a later minute is counted, the old ones still in neither count
    t = (NOW + timedelta(minutes=1)).timestamp()
    TelemetryStore(engine).write(
        [request(11, t, finish_reasons=["stop"]), request(12, t, finish_reasons=["refusal"])]
    )
    then = NOW + timedelta(minutes=1)
    assert read_windows(engine, ANSWERS, then, [60]) == {60: Counts(1, 2)}
    assert read_series(engine, ANSWERS, then, 60) == {MINUTE + timedelta(minutes=1): Counts(1, 2)}


def test_an_hour_holding_a_minute_from_before_is_no_data_in_the_windows(engine: Engine) -> None:
    base = MINUTE.replace(minute=0) - timedelta(hours=3)  # a closed hour
    store = TelemetryStore(engine)
    store.write([request(n, (base + timedelta(minutes=n)).timestamp(),
                         finish_reasons=["refusal" if n == 1 else "stop"])
                 for n in range(1, 5)])  # fmt: skip
    with engine.begin() as conn:
        c = rollups.c
        conn.execute(update(rollups).where(c.minute == base + timedelta(minutes=4))
                     .values(refused=None))  # fmt: skip
    window = 5 * 60
    assert read_windows(engine, ANSWERS, NOW, [window]) == {window: Counts(2, 3)}  # minutes
    while compact(engine, NOW):
        pass
    with engine.connect() as conn:
        assert conn.execute(
            rollups_hour.select().where(rollups_hour.c.hours == 1)
        ).mappings().one()["refused"] is None  # fmt: skip
    # read from the hour row: the whole hour in neither count, as `hourly` says
    assert read_windows(engine, ANSWERS, NOW, [window]) == {window: Counts(0, 0)}


def test_the_evaluator_pages_on_refusals(engine: Engine) -> None:
    """One request a minute for a day, every other one refused in the last hour: a 50 %
    bad share against a 2 % allowance burns at 25 over the hour and about as much over the
    5 minutes (both over the page's 14.4); over 6 hours the share is 30 of 360, a burn of
    4.2, under the 6 of the slower page."""
    text = """slos:
  refusals:
    route: support
    sli: {kind: refusal}
    objective: 0.98
    alerting: {min_events: 5}
"""
    SloStore(engine).apply(load_slos(text), scope="", actor="ops@acme")
    hour_ago = NOW.timestamp() - 3600
    records = [
        request(i, t, finish_reasons=["refusal" if t > hour_ago and i % 2 == 0 else "stop"])
        for i, t in enumerate(every(60, 86400))
    ]
    TelemetryStore(engine).write(records)
    cycle = SloEvaluator(engine, lambda signals: None, holder="a", interval_s=30).cycle(NOW)
    signals = {s.dedup_key: s for s in cycle.signals}
    page = signals["slo_burn/refusals/page-1h-5m"]
    assert (page.severity, page.firing, page.details["state"]) == ("page", True, "firing")
    long, short = page.details["long_window"], page.details["short_window"]
    assert isinstance(long, dict) and isinstance(short, dict)
    assert (long["valid"], long["bad"], long["burn"]) == (60, 30, pytest.approx(25))
    assert short["valid"] == 5 and short["bad"] in (2, 3)
    slower = signals["slo_burn/refusals/page-6h-30m"]
    six_hours = slower.details["long_window"]
    assert isinstance(six_hours, dict) and not slower.firing
    assert six_hours["burn"] == pytest.approx(30 / 360 / 0.02)
