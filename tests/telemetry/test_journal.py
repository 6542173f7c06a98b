"""The journal: records written before they are committed, segments deleted once committed,
and a dead process's segments (never a live one's) replayed exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
from sqlalchemy import Engine, text

from tests.support import wait_for
from tests.telemetry.support import (
    expected_totals,
    open_store,
    rec,
    records,
    rollup_totals,
    stored_ids,
)
from trimtab.telemetry.journal import Journal
from trimtab.telemetry.lines import encode, read_batches
from trimtab.telemetry.metrics import GatewayMetrics
from trimtab.telemetry.recorder import Recorder
from trimtab.telemetry.spill import SpillFile
from trimtab.telemetry.store import TelemetryStore


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("journal-*.jsonl"))


def journal_ids(directory: Path) -> list[str]:
    return sorted(r.id for seg in segments(directory) for b in read_batches(seg, 100) for r in b)


def journaled_recorder(
    store: TelemetryStore, tmp_path: Path, *, segment_bytes: int = 1 << 20, retries: int = 0
) -> tuple[Recorder, Journal, SpillFile]:
    spill = SpillFile(tmp_path / "spill.jsonl")
    journal = Journal(
        tmp_path / "journal",
        fsync_interval_s=0.01,
        also_sync=spill.sync,
        segment_bytes=segment_bytes,
    )
    recorder = Recorder(
        store,
        spill,
        GatewayMetrics(),
        capacity=1000,
        batch_size=20,
        flush_interval_s=0.01,
        write_retries=retries,
        journal=journal,
    )
    return recorder, journal, spill


def test_the_spill_file_and_the_journal_write_the_same_line(tmp_path: Path) -> None:
    r = rec(3, user="u", attributes={"nested": {"a": [1, 2]}})
    assert encode(r) == orjson.dumps(r.to_dict()) + b"\n"
    spill = SpillFile(tmp_path / "spill.jsonl")
    spill.append([r])
    journal = Journal(tmp_path / "journal", fsync_interval_s=1, also_sync=spill.sync)
    journal.append(r)
    written, zeros = segments(tmp_path / "journal")[0].read_bytes().split(b"\x00", 1)
    assert spill.path.read_bytes() == written
    assert not zeros.strip(b"\x00")  # the rest of the segment, allocated up front
    journal.forget([None])  # a record that was never journaled changes nothing
    spill.close()
    journal.close()
    assert segments(tmp_path / "journal")  # its one record was never forgotten: kept


def test_records_are_on_disk_before_the_commit_and_gone_after(
    store_url: str, tmp_path: Path, engines: list[Engine]
) -> None:
    """Also run against PostgreSQL through the store_url fixture."""
    store = open_store(store_url, engines)
    recorder, journal, _ = journaled_recorder(store, tmp_path, segment_bytes=4096)
    recs = records(80)
    for r in recs:  # the writer is not running yet: everything waits in the queue
        recorder.record(r)
    assert journal_ids(tmp_path / "journal") == [r.id for r in recs]
    assert len(segments(tmp_path / "journal")) > 5  # 4 KiB segments: full ones retired
    recorder.start()
    wait_for(lambda: stored_ids(store) == [r.id for r in recs])
    # committed: the retired segments are deleted; the one being written stays
    journal.sync()
    assert len(segments(tmp_path / "journal")) == 1
    assert set(journal_ids(tmp_path / "journal")) < {r.id for r in recs}
    more = records(5, start=100)
    for r in more:
        recorder.record(r)
    recorder.stop()
    assert stored_ids(store) == [r.id for r in recs + more]
    assert segments(tmp_path / "journal") == []  # a graceful stop leaves nothing behind
    assert rollup_totals(store) == expected_totals(recs + more)


def test_a_spilled_batch_is_forgotten_by_the_journal(tmp_path: Path, engines: list[Engine]) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines, migrated=False)
    recorder, _, spill = journaled_recorder(store, tmp_path)
    recorder.start()
    for r in records(30):
        recorder.record(r)
    recorder.stop()
    assert sorted(orjson.loads(x)["id"] for x in spill.path.read_bytes().splitlines()) == [
        r.id for r in records(30)
    ]
    assert segments(tmp_path / "journal") == []  # durable in the spill file instead


LIVE_WRITER = textwrap.dedent(
    """
    import sys
    from tests.telemetry.support import records
    from trimtab.telemetry.journal import Journal
    from trimtab.telemetry.spill import SpillFile

    spill = SpillFile(sys.argv[1] + "/child-spill.jsonl")
    journal = Journal(sys.argv[1] + "/journal", fsync_interval_s=0.05, also_sync=spill.sync)
    journal.start()
    for r in records(int(sys.argv[2])):
        journal.append(r)
    print("written", flush=True)
    sys.stdin.read()  # wait to be killed
    """
)


def test_a_killed_process_segments_are_replayed_once_a_live_ones_never(
    store_url: str, tmp_path: Path, engines: list[Engine]
) -> None:
    """Also run against PostgreSQL through the store_url fixture."""
    store = open_store(store_url, engines)
    store.write(records(10))  # committed before the kill: must not be counted twice
    child = subprocess.Popen(
        [sys.executable, "-c", LIVE_WRITER, str(tmp_path), "40"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"written\n"
        recorder, journal, _ = journaled_recorder(store, tmp_path)
        assert journal.orphans() == []  # the writer is alive: its segment is not ours
        assert recorder.replay() == 0
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert len(journal.orphans()) == 1
    assert recorder.replay() == 30
    assert stored_ids(store) == [r.id for r in records(40)]
    assert rollup_totals(store) == expected_totals(records(40))
    assert segments(tmp_path / "journal") == []
    assert recorder.replay() == 0


def test_orphans_stay_while_the_store_refuses_and_are_replayed_while_running(
    tmp_path: Path, engines: list[Engine]
) -> None:
    """A dead process's segment found at a start when the store is down is replayed by
    the writer thread once the store is back, with no restart."""
    dead = Journal(tmp_path / "journal", fsync_interval_s=1, also_sync=lambda: None)
    for r in records(12):
        dead.append(r)
    dead.close()  # never committed: the segment stays, unlocked, as after a crash
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE requests RENAME TO requests_away"))
    recorder, _, _ = journaled_recorder(store, tmp_path)
    assert recorder.replay() == 0
    assert len(segments(tmp_path / "journal")) == 1
    recorder.start()
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE requests_away RENAME TO requests"))
    recorder.record(rec(50))
    wait_for(lambda: len(stored_ids(store)) == 13)
    recorder.stop()
    assert stored_ids(store) == [r.id for r in [*records(12), rec(50)]]
    assert segments(tmp_path / "journal") == []


FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from dataclasses import replace
    from sqlalchemy import create_engine
    from tests.telemetry.support import records
    from trimtab.telemetry.store import TelemetryStore
    from trimtab.telemetry.journal import Journal
    from trimtab.telemetry.metrics import GatewayMetrics
    from trimtab.telemetry.recorder import Recorder
    from trimtab.telemetry.spill import SpillFile

    # files of this process may not grow past 16 KiB: allocating a larger one fails with
    # EFBIG, as on a full disk (SIGXFSZ ignored, so the call fails instead of killing)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16384, resource.RLIM_INFINITY))
    spill = SpillFile(sys.argv[1] + "/spill.jsonl")
    journal = Journal(
        sys.argv[1] + "/journal", fsync_interval_s=1, also_sync=spill.sync, segment_bytes=8192
    )
    store = TelemetryStore(create_engine("sqlite://"))  # never reached: no writer started
    recorder = Recorder(
        store, spill, GatewayMetrics(), capacity=1000, batch_size=10,
        flush_interval_s=1, write_retries=0, journal=journal,
    )
    # 8 KiB segments hold about 12 records; the 30th is 4 MiB and cannot get a segment
    for r in records(30):
        recorder.record(r if r.id != "req_000030" else replace(r, request_body="x" * 2**22))
    print(recorder.problem())
    for r in records(30, start=31):  # more than two segments' worth: new ones are needed
        recorder.record(r)
    print(recorder.depth())
    print(recorder.problem())
    """
)


def test_a_journal_that_cannot_be_written_still_queues_and_says_so(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith("telemetry journal not writable since ")
    assert out[0].endswith(": OSError (File too large)")
    assert out[1] == "60"  # every record is still queued for the store
    # the huge record could not get a segment; the next ones got new segments at once (a
    # huge record's failure does not hold them off), so the journal is writable again
    assert journal_ids(tmp_path / "journal") == [r.id for r in records(60) if r.id != "req_000030"]
    assert out[2] == "None"
