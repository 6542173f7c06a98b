"""The negative-feedback SLI (slo/kinds.py, sli.feedback_counts): requests written through
the real TelemetryStore, feedback through the real FeedbackStore, counted from the
rollups per minute, over windows, from the hourly rows once compacted, and when the
feedback arrives late. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, event

from tests.slo.support import NOW, request
from trimtab.audit.log import Actor
from trimtab.rollouts.feedback import FeedbackStore
from trimtab.slo.burn import Counts
from trimtab.slo.evaluator import read_statuses
from trimtab.slo.rollups import minute_floor, read_series, read_windows, window_counts
from trimtab.slo.spec import Sli, SlosError, load_slos, parse_slos
from trimtab.slo.status import read_status
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.store import TelemetryStore

BY = Actor("key_app", "app@acme", "acme")
SLOS = load_slos(
    """
slos:
  quality: {route: support, sli: {kind: negative_feedback}, objective: 0.9}
  avail: {route: support, sli: {kind: availability}, objective: 0.99}
  acme-quality: {route: support, tenant: acme, sli: {kind: negative_feedback}, objective: 0.9}
"""
)
QUALITY = SLOS[0]


def test_the_spec_parses_survives_its_stored_form_and_takes_no_other_key() -> None:
    assert QUALITY.sli == Sli("negative_feedback")
    assert QUALITY.to_json()["sli"] == {"kind": "negative_feedback"}
    (again,) = parse_slos({"slos": {QUALITY.name: QUALITY.to_json()}})
    assert again == QUALITY and again.digest == QUALITY.digest
    bad = "slos:\n  q: {route: r, sli: {kind: negative_feedback, score: 0.5}, objective: 0.9}\n"
    with pytest.raises(SlosError) as caught:
        load_slos(bad, "f.yaml")
    assert caught.value.problems == ["f.yaml: slos.q.sli.score: unknown key"]


def _write(engine: Engine) -> None:
    t = NOW.timestamp()
    TelemetryStore(engine).write(
        [
            request(1, t - 10),  # thumbs down
            request(2, t - 11),  # escalated
            request(3, t - 12),  # thumbs up
            request(4, t - 13),  # no feedback
            request(5, t - 14, status_code=502),  # an error: in neither count
            request(6, t - 15, status_code=400),  # the caller's: neither
            request(7, t - 70, tenant="globex"),  # thumbs down, twice
            request(8, t - 71),
            request(9, t - 72, route="other"),  # thumbs down, another route
        ]
    )
    store = FeedbackStore(engine)
    for rid, score, escalated in (
        (1, 0.0, False), (2, 0.8, True), (3, 1.0, False), (5, 0.0, False), (6, 0.0, False),
        (7, 0.0, False), (7, 0.1, True), (9, 0.0, False),
    ):  # fmt: skip
        store.add(f"req_{rid:08d}", None, score, None, escalated, BY)


def test_counts_per_minute_over_windows_and_shared_with_availability(engine: Engine) -> None:
    _write(engine)
    now_minute = minute_floor(NOW)
    series = read_series(engine, QUALITY, NOW, 60)
    assert series == {
        now_minute: Counts(2, 4),  # 3, 4 good; 1, 2 bad; 5, 6 not answered
        now_minute - timedelta(minutes=1): Counts(1, 2),  # 8 good; 7 bad (once)
    }
    windows = [1, 2, 60]
    assert read_windows(engine, QUALITY, NOW, windows) == {
        1: Counts(2, 4), 2: Counts(3, 6), 60: Counts(3, 6),
    }  # fmt: skip
    acme = read_windows(engine, SLOS[2], NOW, windows)
    assert acme[60] == Counts(3, 5)  # not globex's request 7
    assert acme == {w: window_counts(read_series(engine, SLOS[2], NOW, 60), NOW, w)
                    for w in windows}  # fmt: skip
    # the three SLOs' statuses: the feedback ones and availability of `route: support`
    # from one query of the rollups (acme's is another selector: a second one)
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        statuses = read_statuses(engine, SLOS, NOW)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statuses == [read_status(engine, d, NOW) for d in SLOS]
    assert len([s for s in statements if "rollups_minute" in s]) == 2
    assert statuses[0].counts == Counts(3, 6) and statuses[0].value == 0.5
    assert statuses[1].counts == Counts(6, 7)  # the 502 bad; the 400 excluded


def test_no_traffic_is_no_data(engine: Engine) -> None:
    status = read_status(engine, QUALITY, NOW)
    assert status.value is None and status.standing == "no_data"
    assert status.view(None)["notes"] == []


def test_late_feedback_changes_a_compacted_past_window(engine: Engine) -> None:
    """Feedback on a request of a compacted hour moves that hour's count: it marks the
    hour and day, which are read from minutes until compacted again."""
    old = NOW - timedelta(days=2)
    TelemetryStore(engine).write([request(n, old.timestamp() + n) for n in range(1, 11)])
    compact(engine, NOW, limit=100)
    before = read_windows(engine, QUALITY, NOW, [7 * 1440])
    assert before == {7 * 1440: Counts(10, 10)}
    FeedbackStore(engine).add("req_00000003", "acme", 0.0, None, False, BY)
    after = {7 * 1440: Counts(9, 10)}
    assert read_windows(engine, QUALITY, NOW, [7 * 1440]) == after  # from the minutes
    assert compact(engine, NOW, limit=100) == 2  # the hour, then its day
    assert read_windows(engine, QUALITY, NOW, [7 * 1440]) == after  # from the day's row
