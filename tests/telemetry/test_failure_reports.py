"""When telemetry writes fail, /readyz and the logs say what is wrong in one line, and never
carry what was being written: prompts, responses, tenants, key ids (the SQL parameters)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import StatementError

from tests.support import APP_KEY, KEYS, GatewayFactory
from trimtab.store.errors import summary

MARKER = "zq-secret-marker-41c9"


def test_readyz_and_logs_carry_no_data_when_writes_fail(
    gateway: GatewayFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gw = gateway(
        keys=KEYS,
        telemetry={"spill_path": str(tmp_path / "spill.jsonl"), "flush_interval_s": 0.02},
    )
    with gw.engine.begin() as conn:
        conn.execute(text("DROP TABLE requests"))  # every write now fails, for real
    headers = {"authorization": f"Bearer {APP_KEY}"}
    for i in range(10):
        body = {"model": "gpt-mock", "messages": [{"role": "user", "content": f"{MARKER} {i}"}]}
        resp = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers)
        assert resp.status_code == 200
        assert MARKER in resp.text  # the mock echoes the prompt: the bodies hold the marker

    deadline = time.monotonic() + 15
    while True:
        ready = httpx.get(f"{gw.url}/readyz", timeout=10)
        if ready.status_code == 503 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert ready.status_code == 503
    problems = ready.json()["problems"]
    failing = [p for p in problems if p.startswith("telemetry writes failing since ")]
    assert len(failing) == 1, problems
    assert failing[0].endswith(": OperationalError (no such table: requests)"), failing
    assert MARKER not in ready.text
    for word in ("acme", "[SQL", "parameters", "INSERT"):
        assert word not in ready.text

    assert "telemetry write failed" in caplog.text
    assert MARKER not in caplog.text
    assert "[parameters:" not in caplog.text
    assert "INSERT INTO" not in caplog.text


def test_summary_keeps_the_drivers_first_line_and_drops_the_statement() -> None:
    engine = create_engine("sqlite://")
    with pytest.raises(StatementError) as info, engine.connect() as conn:
        conn.execute(text("INSERT INTO nowhere VALUES (:v)"), {"v": MARKER})
    assert MARKER in str(info.value)  # what SQLAlchemy's own message would have leaked
    assert summary(info.value) == "OperationalError (no such table: nowhere)"


def test_summary_of_a_binding_error_names_only_the_class() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v TEXT)"))
    with pytest.raises(StatementError) as info, engine.connect() as conn:
        conn.execute(text("INSERT INTO t VALUES (:v)"), {"v": {MARKER: object()}})
    assert MARKER in str(info.value)
    assert MARKER not in summary(info.value)
    assert summary(info.value).startswith(type(info.value).__name__)


def test_summary_of_other_errors_is_one_bounded_line() -> None:
    assert summary(OSError(28, "No space left on device")) == (
        "OSError ([Errno 28] No space left on device)"
    )
    assert summary(RuntimeError("first\nsecond")) == "RuntimeError (first)"
    assert summary(ValueError()) == "ValueError"
    assert len(summary(RuntimeError("x" * 5000))) < 250
