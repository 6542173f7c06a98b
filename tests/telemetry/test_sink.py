"""The recorder writes to any TelemetrySink, not only the SQL store.

`JsonLinesSink` is a second, different implementation of the protocol (each batch one
appended JSON line: its records and their rollups), the shape a file or columnar backend
has. A real Recorder, spill file and metrics drive it; nothing of ours is mocked.
"""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from tests.support import wait_for
from trimtab.telemetry import recorder as recorder_module
from trimtab.telemetry.metrics import GatewayMetrics, LabelValues
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.recorder import Recorder
from trimtab.telemetry.rollups import fold
from trimtab.telemetry.sink import TelemetrySink
from trimtab.telemetry.spill import SpillFile

T0 = time.time()


class JsonLinesSink:
    """Appends each batch as one JSON line, written and fsynced in one call (all or nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls = 0  # from the writer thread

    def batches(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line]

    def ids(self) -> list[str]:
        return [r["id"] for batch in self.batches() for r in batch["records"]]

    def write(self, records: Sequence[RequestRecord], *, skip_existing: bool = False) -> int:
        self.calls += 1
        if skip_existing:
            present = set(self.ids())
            unique: dict[str, RequestRecord] = {}
            for r in records:
                if r.id not in present:
                    unique.setdefault(r.id, r)
            records = list(unique.values())
        if not records:
            return 0
        rollups = [
            {
                "minute": key[0].isoformat(),
                "model": key[1],
                "tenant": key[3],
                "status_code": key[5],
                "count": r.count,
                "errors": r.errors,
                "input_tokens": r.input_tokens,
            }
            for key, r in fold(records).items()
        ]
        line = orjson.dumps({"records": [r.to_dict() for r in records], "rollups": rollups})
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(records)


def rec(n: int) -> RequestRecord:
    return RequestRecord(
        id=f"req_{n:06d}",
        started_at=T0 + n / 1000,
        api="openai",
        operation="chat",
        tenant="acme",
        request_model="gpt-mock",
        provider="upstream",
        status_code=200 if n % 5 else 502,
        duration_ms=50.0 + n,
        input_tokens=10 + n,
        output_tokens=3,
    )


def make_recorder(sink: TelemetrySink, tmp_path: Path) -> tuple[Recorder, GatewayMetrics]:
    metrics = GatewayMetrics(LabelValues(["gpt-mock"], ["upstream"], ["acme"]))
    recorder = Recorder(
        sink,
        SpillFile(tmp_path / "spill.jsonl"),
        metrics,
        capacity=1000,
        batch_size=25,
        flush_interval_s=0.01,
        write_retries=0,
    )
    return recorder, metrics


def test_a_second_sink_receives_every_record_and_its_rollups(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path / "telemetry.jsonl")
    recorder, metrics = make_recorder(sink, tmp_path)
    recs = [rec(n) for n in range(1, 121)]
    recorder.start()
    for r in recs:
        recorder.record(r)
    recorder.stop()

    assert sorted(sink.ids()) == [r.id for r in recs]
    for batch in sink.batches():  # each batch carries the rollups of its own records
        assert sum(r["count"] for r in batch["rollups"]) == len(batch["records"])
    rollups = [r for batch in sink.batches() for r in batch["rollups"]]
    assert sum(r["count"] for r in rollups) == 120
    assert sum(r["errors"] for r in rollups) == sum(1 for r in recs if r.is_error)
    assert sum(r["input_tokens"] for r in rollups) == sum(r.input_tokens or 0 for r in recs)
    assert metrics.registry.get_sample_value("trimtab_telemetry_recorded_total") == 120
    assert not (tmp_path / "spill.jsonl").exists() or not (tmp_path / "spill.jsonl").read_bytes()


def test_a_sink_that_fails_gets_the_spilled_records_once_it_is_back(tmp_path: Path) -> None:
    # the sink's directory is missing at first: every write raises, as a down store does
    sink = JsonLinesSink(tmp_path / "later" / "telemetry.jsonl")
    recorder, _ = make_recorder(sink, tmp_path)
    recs = [rec(n) for n in range(1, 41)]
    recorder.start()
    try:
        for r in recs[:20]:
            recorder.record(r)
        wait_for(lambda: not recorder.store_ok and sink.calls >= 1, 30.0)
        problem = recorder.problem()
        assert problem is not None and "FileNotFoundError" in problem

        (tmp_path / "later").mkdir()  # the sink is back: the writer replays what it spilled
        for r in recs[20:]:
            recorder.record(r)
        wait_for(lambda: len(sink.ids()) == len(recs) and recorder.store_ok, 30.0)
    finally:
        recorder.stop()

    assert sorted(sink.ids()) == [r.id for r in recs]  # every record once
    assert recorder.problem() is None


def test_the_recorder_knows_only_the_sink_protocol() -> None:
    tree = ast.parse(Path(recorder_module.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "trimtab.telemetry.sink" in imported
    assert "trimtab.telemetry.store" not in imported
    assert not any(name.startswith("sqlalchemy") for name in imported)
