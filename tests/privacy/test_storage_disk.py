"""What the recorder puts on local disk under storage.bodies (telemetry/recorder.py): the
journal and the spill file never see an unscrubbed body, on the event loop's side or the
writer's; the store gets the scrubbed bodies."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, select

from tests.privacy.support import files_under, leaks, planted
from trimtab.config import StorageConfig
from trimtab.privacy.storage import body_policy
from trimtab.store.engine import make_engine, migrate
from trimtab.store.tables import requests
from trimtab.telemetry.journal import Journal
from trimtab.telemetry.metrics import GatewayMetrics, LabelValues
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.recorder import Recorder
from trimtab.telemetry.spill import SpillFile
from trimtab.telemetry.store import TelemetryStore
from trimtab.testing.servers import free_port


def record(n: int, text: str) -> RequestRecord:
    body = orjson.dumps({"model": "gpt-mock", "messages": [{"role": "user", "content": text}]})
    return RequestRecord(
        id=f"req_{n:04d}",
        started_at=1.0e9 + n,
        api="openai",
        operation="chat",
        tenant="acme",
        request_model="gpt-mock",
        request_body=body.decode(),
        response_body=orjson.dumps({"choices": [{"message": {"content": text}}]}).decode(),
        error_message=f"refused: {text}" if n % 2 else None,
    )


def recorder(store: TelemetryStore, tmp_path: Path, *, capacity: int = 1000) -> Recorder:
    spill = SpillFile(tmp_path / "spill.jsonl")
    journal = Journal(tmp_path / "journal", fsync_interval_s=0.05, also_sync=spill.sync)
    out = Recorder(
        store,
        spill,
        GatewayMetrics(LabelValues(["gpt-mock"], ["upstream"], ["acme"])),
        capacity=capacity,
        batch_size=4,
        flush_interval_s=0.01,
        write_retries=0,
        journal=journal,
    )
    out.scrub = body_policy(StorageConfig())
    return out


@pytest.fixture
def engines() -> list[Engine]:
    return []


def test_a_store_that_refuses_leaves_only_scrubbed_records_on_disk(
    tmp_path: Path, engines: list[Engine]
) -> None:
    email, text = planted()
    down = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    engines.append(down)
    rec = recorder(TelemetryStore(down), tmp_path)
    rec.start()
    for n in range(10):
        rec.record(record(n, text))
    while_running = files_under(tmp_path)  # the journal's live segment
    rec.stop()
    assert leaks(while_running, email) == []
    spilled = (tmp_path / "spill.jsonl").read_bytes()
    assert spilled.count(b"\n") == 10
    assert leaks(files_under(tmp_path), email) == []
    # the writer spilled them scrubbed: the placeholders are there, the bodies kept
    assert b"<EMAIL_1> paid with <CREDIT_CARD_1>" in spilled

    good = make_engine(f"sqlite:///{tmp_path}/good.db")
    engines.append(good)
    migrate(good)
    again = recorder(TelemetryStore(good), tmp_path)
    assert again.replay_spill() == 10
    with good.connect() as conn:
        rows = conn.execute(select(requests)).mappings().all()
    assert len(rows) == 10
    assert leaks(repr([dict(r) for r in rows]).encode(), email) == []
    assert all("<EMAIL_1>" in (r["request_body"] or "") for r in rows)


def test_a_full_queue_spills_without_the_bodies(tmp_path: Path, engines: list[Engine]) -> None:
    email, text = planted()
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    engines.append(engine)
    migrate(engine)
    rec = recorder(TelemetryStore(engine), tmp_path, capacity=2)
    for n in range(5):  # the writer is not started: the queue fills
        rec.record(record(n, text))
    on_disk = files_under(tmp_path / "spill.jsonl", tmp_path / "journal")
    assert leaks(on_disk, email) == []
    spilled = [orjson.loads(line) for line in (tmp_path / "spill.jsonl").read_bytes().splitlines()]
    assert len(spilled) == 3 and all(s["request_body"] is None for s in spilled)
    rec.start()
    rec.stop()  # the two queued ones are committed, scrubbed
    with engine.connect() as conn:
        bodies = list(conn.scalars(select(requests.c.request_body).order_by(requests.c.id)))
    assert [b is not None and "<EMAIL_1>" in b for b in bodies] == [True, True]
    assert leaks(files_under(tmp_path), email) == []
