"""The recorder against a real store: batches reach the tables, overflow and failures go to the
spill file, and replaying the spill file writes every record exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, event, select, text

from tests.telemetry.support import (
    expected_totals,
    open_store,
    rec,
    records,
    rollup_totals,
    stored_ids,
)
from trimtab.store.engine import migrate
from trimtab.store.tables import requests
from trimtab.telemetry.metrics import GatewayMetrics, LabelValues
from trimtab.telemetry.recorder import Recorder
from trimtab.telemetry.spill import SpillFile
from trimtab.telemetry.store import TelemetryStore
from trimtab.testing.servers import free_port


def make_recorder(
    store: TelemetryStore,
    spill_path: Path,
    *,
    capacity: int = 1000,
    batch_size: int = 50,
    write_retries: int = 0,
    flush_interval_s: float = 0.01,
) -> tuple[Recorder, SpillFile, GatewayMetrics]:
    spill = SpillFile(spill_path)
    metrics = GatewayMetrics(LabelValues(["gpt-mock"], ["upstream"], ["acme"]))
    recorder = Recorder(
        store,
        spill,
        metrics,
        capacity=capacity,
        batch_size=batch_size,
        flush_interval_s=flush_interval_s,
        write_retries=write_retries,
    )
    return recorder, spill, metrics


def spill_lines(path: Path) -> list[bytes]:
    if not path.exists():
        return []
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def spilled_ids(path: Path) -> list[str]:
    return sorted(orjson.loads(line)["id"] for line in spill_lines(path))


def sample(metrics: GatewayMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


# -- the normal path -----------------------------------------------------------------------


def test_records_reach_the_tables(store_url: str, tmp_path: Path, engines: list[Engine]) -> None:
    """Also run against PostgreSQL through the store_url fixture."""
    store = open_store(store_url, engines)
    recorder, spill, metrics = make_recorder(store, tmp_path / "spill.jsonl", batch_size=7)
    recorder.start()
    recs = records(40)
    for r in recs:
        recorder.record(r)
    recorder.stop()
    assert stored_ids(store) == [r.id for r in recs]
    assert rollup_totals(store) == expected_totals(recs)
    assert spill.size() == 0
    assert spill.appended == 0
    assert recorder.store_ok
    assert recorder.depth() == 0
    assert sample(metrics, "trimtab_telemetry_recorded_total") == 40
    assert sample(metrics, "trimtab_telemetry_spilled_total") == 0
    labels = {"model": "gpt-mock", "provider": "upstream", "tenant": "acme", "status_code": "502"}
    assert metrics.registry.get_sample_value("trimtab_requests_total", labels) == 8


def test_records_arriving_during_commits_are_written_once_per_interval(
    tmp_path: Path, engines: list[Engine]
) -> None:
    """Under load records arrive while a batch is being committed. With fewer than a batch
    waiting the writer commits at most once per flush interval, not again at once for
    each few records: each transaction merges each rollup row once, whatever the number
    of records it carries. A graceful stop writes what is still queued without waiting."""
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
    interval = 0.25
    recorder, _, _ = make_recorder(
        store, tmp_path / "spill.jsonl", batch_size=1000, flush_interval_s=interval
    )
    recs = records(41)
    arriving = iter(recs[1:])
    commits: list[float] = []

    def arrive(_conn: object) -> None:  # in the writer thread, inside each commit
        commits.append(time.monotonic())
        late = next(arriving, None)
        if late is not None:
            recorder.record(late)

    event.listen(store.engine, "commit", arrive)
    recorder.start()
    began = time.monotonic()
    recorder.record(recs[0])
    time.sleep(1.0)
    within, window = len(commits), time.monotonic() - began
    recorder.stop()
    # the first record is written at once, then at most one transaction per interval
    assert 1 <= within <= window / interval + 2, (within, window)
    assert stored_ids(store) == [r.id for r in recs]
    assert rollup_totals(store) == expected_totals(recs)


def test_a_record_round_trips_through_the_store(tmp_path: Path, engines: list[Engine]) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
    original = rec(4, user="u1", session="s1", feature="f1", route="r", version="v")
    assert store.write([original]) == 1
    with store.engine.connect() as conn:
        row = conn.execute(select(requests)).mappings().one()
    assert row["id"] == original.id
    assert row["user_id"] == "u1"
    assert row["session_id"] == "s1"
    assert row["finish_reasons"] == ["stop"]
    assert row["attributes"] == {"n": 4}
    assert row["streamed"] is True
    assert row["ttft_ms"] == 20.0


# -- overflow, stop and replay -------------------------------------------------------------


def test_overflow_and_stop_spill_then_replay_writes_each_once(
    store_url: str, tmp_path: Path, engines: list[Engine]
) -> None:
    """Also run against PostgreSQL through the store_url fixture."""
    store = open_store(store_url, engines)
    path = tmp_path / "spill.jsonl"
    recorder, spill, metrics = make_recorder(store, path, capacity=2, batch_size=2)
    recs = records(7)
    for r in recs:  # the writer is not started: two fit in the queue, the rest spill
        recorder.record(r)
    assert recorder.depth() == 2
    assert spill.appended == 5
    assert spilled_ids(path) == [r.id for r in recs[2:]]
    assert sample(metrics, "trimtab_telemetry_spilled_total") == 5

    recorder.stop()  # the writer never ran: what was queued goes to the spill file too
    assert recorder.depth() == 0
    assert spilled_ids(path) == [r.id for r in recs]
    assert sample(metrics, "trimtab_telemetry_spilled_total") == 7
    assert stored_ids(store) == []

    # the next start replays the file
    again, _, metrics2 = make_recorder(store, path, batch_size=3)
    assert again.replay_spill() == 7
    assert stored_ids(store) == [r.id for r in recs]
    assert rollup_totals(store) == expected_totals(recs)
    assert not path.exists()
    assert sample(metrics2, "trimtab_telemetry_recorded_total") == 7
    # a second replay finds nothing to do
    assert again.replay_spill() == 0
    assert stored_ids(store) == [r.id for r in recs]
    assert rollup_totals(store) == expected_totals(recs)


def test_replay_after_a_crash_after_commit_is_exactly_once(
    store_url: str, tmp_path: Path, engines: list[Engine]
) -> None:
    """The process died after committing part of the spill file but before clearing it."""
    store = open_store(store_url, engines)
    path = tmp_path / "spill.jsonl"
    recs = records(9)
    SpillFile(path).append(recs)
    assert store.write(recs[:4]) == 4  # committed before the "crash"
    recorder, _, _ = make_recorder(store, path, batch_size=2)
    assert recorder.replay_spill() == 5
    assert stored_ids(store) == [r.id for r in recs]
    assert rollup_totals(store) == expected_totals(recs)

    # crash again before clearing: the same file is replayed a second time
    SpillFile(path).append(recs)
    assert recorder.replay_spill() == 0
    assert stored_ids(store) == [r.id for r in recs]
    assert rollup_totals(store) == expected_totals(recs)


def test_replay_of_a_file_holding_duplicates(tmp_path: Path, engines: list[Engine]) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
    path = tmp_path / "spill.jsonl"
    recs = records(5)
    spill = SpillFile(path)
    spill.append(recs)
    spill.append(reversed(recs))  # each record twice, in different batches
    spill.close()
    recorder, _, _ = make_recorder(store, path, batch_size=3)
    assert recorder.replay_spill() == 5
    assert stored_ids(store) == [r.id for r in recs]
    assert rollup_totals(store) == expected_totals(recs)


def test_skip_existing_write_is_idempotent(tmp_path: Path, engines: list[Engine]) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
    recs = records(3)
    assert store.write(recs, skip_existing=True) == 3
    assert store.write(recs, skip_existing=True) == 0
    assert store.write([*recs, rec(99)], skip_existing=True) == 1
    assert rollup_totals(store) == expected_totals([*recs, rec(99)])


def test_replay_with_no_spill_file(tmp_path: Path, engines: list[Engine]) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
    recorder, _, _ = make_recorder(store, tmp_path / "never-written.jsonl")
    assert recorder.replay_spill() == 0
    assert stored_ids(store) == []


def test_torn_last_line_is_skipped_and_the_rest_replayed(
    tmp_path: Path, engines: list[Engine]
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
    path = tmp_path / "spill.jsonl"
    recs = records(4)
    SpillFile(path).append(recs)
    with open(path, "ab") as fh:  # the process died in the middle of an append
        fh.write(orjson.dumps(rec(50).to_dict())[:37])
    recorder, _, _ = make_recorder(store, path, batch_size=3)
    assert recorder.replay_spill() == 4
    assert stored_ids(store) == [r.id for r in recs]
    assert not path.exists()


def test_unreadable_lines_in_the_middle_are_skipped(tmp_path: Path, engines: list[Engine]) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
    path = tmp_path / "spill.jsonl"
    path.write_bytes(
        orjson.dumps(rec(1).to_dict())
        + b"\nnot json at all\n"
        + b'{"id": "missing-required-fields"}\n'
        + b"\n"
        + orjson.dumps(rec(2).to_dict())
        + b"\n"
    )
    recorder, _, _ = make_recorder(store, path)
    assert recorder.replay_spill() == 2
    assert stored_ids(store) == [rec(1).id, rec(2).id]


# -- a failing store -----------------------------------------------------------------------


def _failing_store(how: str, tmp_path: Path, engines: list[Engine]) -> TelemetryStore:
    if how == "dropped-table":
        store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE requests"))
        return store
    if how == "no-schema":
        return open_store(f"sqlite:///{tmp_path}/t.db", engines, migrated=False)
    if how == "unopenable-path":
        # the "database file" is a directory: SQLite cannot open it (root can write anywhere,
        # so a permission-denied path would not fail here)
        (tmp_path / "a-directory.db").mkdir()
        return open_store(f"sqlite:///{tmp_path}/a-directory.db", engines, migrated=False)
    # a PostgreSQL URL where nothing listens: every connection is refused
    return open_store(f"postgresql://postgres@127.0.0.1:{free_port()}/x", engines, migrated=False)


@pytest.mark.parametrize("how", ["dropped-table", "no-schema", "unopenable-path", "unreachable"])
def test_failing_store_spills_batches_and_reports_not_ok(
    how: str, tmp_path: Path, engines: list[Engine]
) -> None:
    store = _failing_store(how, tmp_path, engines)
    path = tmp_path / "spill.jsonl"
    recorder, _, metrics = make_recorder(store, path, batch_size=4, write_retries=1)
    recorder.start()
    recs = records(10)
    for r in recs:
        recorder.record(r)
    recorder.stop()
    assert not recorder.store_ok
    assert recorder.last_error
    assert spilled_ids(path) == [r.id for r in recs]
    assert sample(metrics, "trimtab_telemetry_spilled_total") == 10
    assert sample(metrics, "trimtab_telemetry_recorded_total") == 0
    assert sample(metrics, "trimtab_store_up") == 0
    # every batch was tried twice (one retry) before it was spilled
    assert sample(metrics, "trimtab_telemetry_write_errors_total") >= 2 * 3

    # the next start, with a working store, replays everything once
    good = open_store(f"sqlite:///{tmp_path}/good.db", engines)
    again, _, _ = make_recorder(good, path)
    assert again.replay_spill() == 10
    assert stored_ids(good) == [r.id for r in recs]
    assert rollup_totals(good) == expected_totals(recs)


def test_store_recovers_and_ok_flips_back(tmp_path: Path, engines: list[Engine]) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines, migrated=False)
    path = tmp_path / "spill.jsonl"
    recorder, _, metrics = make_recorder(store, path, batch_size=100)
    recorder.start()
    recorder.record(rec(1))
    deadline = time.monotonic() + 15
    while recorder.store_ok and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not recorder.store_ok
    migrate(store.engine)
    recorder.record(rec(2))
    while not recorder.store_ok and time.monotonic() < deadline:
        time.sleep(0.01)
    recorder.stop()
    assert recorder.store_ok
    assert sample(metrics, "trimtab_store_up") == 1
    # the first good commit tells the writer the store is back: it replays the spill file
    # at once, while running (it used to wait for the next start)
    assert stored_ids(store) == [rec(1).id, rec(2).id]
    assert spilled_ids(path) == []
    assert rollup_totals(store) == expected_totals([rec(1), rec(2)])


def test_replay_keeps_the_file_when_the_store_refuses(
    tmp_path: Path, engines: list[Engine]
) -> None:
    path = tmp_path / "spill.jsonl"
    recs = records(6)
    SpillFile(path).append(recs)
    bad = _failing_store("no-schema", tmp_path, engines)
    recorder, _, _ = make_recorder(bad, path, batch_size=2)
    assert recorder.replay_spill() == 0
    assert spilled_ids(path) == [r.id for r in recs]

    good = open_store(f"sqlite:///{tmp_path}/good.db", engines)
    again, _, _ = make_recorder(good, path, batch_size=2)
    assert again.replay_spill() == 6
    assert stored_ids(good) == [r.id for r in recs]
    assert not path.exists()


def test_records_spilled_after_a_torn_line_survive(tmp_path: Path, engines: list[Engine]) -> None:
    """A crash tore the last line; the store is down at the next start, so the replay keeps
    the file and new records are spilled after the torn line; later the store is back."""
    path = tmp_path / "spill.jsonl"
    SpillFile(path).append(records(2))
    with open(path, "ab") as fh:
        fh.write(orjson.dumps(rec(50).to_dict())[:37])
    bad = _failing_store("no-schema", tmp_path, engines)
    recorder, _, _ = make_recorder(bad, path)
    assert recorder.replay_spill() == 0  # store down: the file is kept
    recorder.start()
    recorder.record(rec(60))
    recorder.record(rec(61))
    recorder.stop()

    good = open_store(f"sqlite:///{tmp_path}/good.db", engines)
    again, _, _ = make_recorder(good, path)
    again.replay_spill()
    assert stored_ids(good) == [rec(1).id, rec(2).id, rec(60).id, rec(61).id]
