"""POST /api/erasures and GET /api/exports through a real server (admin only), on SQLite
and PostgreSQL, and the CLI's `trimtab erase` and `trimtab export` over them."""

from __future__ import annotations

import json
import secrets
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_APP_KEY,
    GLOBEX_VIEWER_KEY,
    KEYS,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.cli import cli
from trimtab.client import AsyncClient, Client, TrimtabError
from trimtab.privacy.erasure import export, jsonl
from trimtab.store.tables import requests


def call_as(running: Running, key: str, user: str, n: int) -> list[str]:
    ids = []
    with httpx.Client(timeout=30) as http:
        for i in range(n):
            resp = http.post(
                running.url + "/v1/chat/completions",
                json={
                    "model": "sim-1",
                    "user": user,
                    "messages": [{"role": "user", "content": f"q{i}"}],
                },
                headers=auth(key),
            )
            assert resp.status_code == 200, resp.text
            ids.append(resp.headers["x-trimtab-request-id"])
    return ids


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    server = gateway(store=store_url, keys=KEYS)
    call_as(server, APP_KEY, "u1", 3)
    call_as(server, GLOBEX_APP_KEY, "u1", 2)
    call_as(server, APP_KEY, "u2", 2)
    assert server.wait_for_rows(7) == 7
    return server


@pytest.mark.parametrize("key", [APP_KEY, VIEWER_KEY, GLOBEX_APP_KEY, GLOBEX_VIEWER_KEY])
def test_only_an_admin_may_erase_or_export(running: Running, key: str) -> None:
    erased = httpx.post(f"{running.url}/api/erasures", json={"user": "u1"}, headers=auth(key))
    assert erased.status_code == 403, erased.text
    assert (
        "only a key with role 'admin' may erase a user's data" in erased.json()["error"]["message"]
    )
    exported = httpx.get(f"{running.url}/api/exports", params={"user": "u1"}, headers=auth(key))
    assert exported.status_code == 403
    assert running.count() == 7


def test_export_then_erase_one_tenant(running: Running) -> None:
    url = running.url
    exported = httpx.get(
        f"{url}/api/exports", params={"user": "u1", "tenant": "acme"}, headers=auth(ADMIN_KEY)
    )
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [line["kind"] for line in lines] == ["request"] * 3
    assert {line["data"]["tenant"] for line in lines} == {"acme"}
    assert {line["data"]["user_id"] for line in lines} == {"u1"}
    erased = httpx.post(
        f"{url}/api/erasures", json={"user": "u1", "tenant": "acme"}, headers=auth(ADMIN_KEY)
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["requests"] == 3
    assert erased.headers["x-trimtab-request-id"]
    assert running.count() == 4
    audit = httpx.get(
        f"{url}/api/audit", params={"action": "privacy.erase"}, headers=auth(ADMIN_KEY)
    )
    [row] = audit.json()["data"]
    assert row["target"] == "user:u1" and row["detail"]["erased"]["requests"] == 3
    everywhere = httpx.get(f"{url}/api/exports", params={"user": "u1"}, headers=auth(ADMIN_KEY))
    assert {json.loads(line)["data"]["tenant"] for line in everywhere.text.splitlines()} == {
        "globex"
    }


def test_bad_input_names_the_field(running: Running) -> None:
    url = running.url
    missing = httpx.post(f"{url}/api/erasures", json={}, headers=auth(ADMIN_KEY))
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "user"
    no_user = httpx.get(f"{url}/api/exports", headers=auth(ADMIN_KEY))
    assert no_user.status_code == 400 and no_user.json()["error"]["param"] == "user"
    unknown = httpx.post(
        f"{url}/api/erasures", json={"user": "u1", "who": 1}, headers=auth(ADMIN_KEY)
    )
    assert unknown.status_code == 400
    empty = httpx.post(
        f"{url}/api/erasures", json={"user": "u1", "tenant": ""}, headers=auth(ADMIN_KEY)
    )
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "tenant"
    assert running.count() == 7


def test_the_cli_exports_jsonl_and_erases(running: Running, tmp_path: Path) -> None:
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": ADMIN_KEY}
    runner = CliRunner()
    out = tmp_path / "u1.jsonl"
    result = runner.invoke(cli, ["export", "--user", "u1", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5 and {line["kind"] for line in lines} == {"request"}
    result = runner.invoke(cli, ["erase", "--user", "u1"], env=env)
    assert result.exit_code == 0, result.output
    assert "erased user u1 (every tenant)" in result.output
    assert "  requests: 5" in result.output
    assert running.count() == 2
    refused = runner.invoke(
        cli, ["erase", "--user", "u2"], env={**env, "TRIMTAB_API_KEY": VIEWER_KEY}
    )
    assert refused.exit_code == 1
    assert "admin" in refused.output
    assert running.count() == 2


BODY_BYTES = 8_000


def seed(engine: Engine, user: str, n: int, start: datetime, prefix: str = "req_bulk") -> None:
    """`n` request rows of `user` with bodies of BODY_BYTES, a millisecond apart."""
    body = "x" * BODY_BYTES
    rows = [
        {
            "id": f"{prefix}_{i:06d}_{secrets.token_hex(4)}",
            "started_at": start + timedelta(milliseconds=i),
            "ended_at": start + timedelta(milliseconds=i),
            "api": "openai",
            "operation": "chat",
            "tenant": "acme",
            "status_code": 200,
            "duration_ms": 1.0,
            "overhead_ms": 0.1,
            "streamed": False,
            "user_id": user,
            "request_body": body,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        for at in range(0, n, 500):
            conn.execute(insert(requests), rows[at : at + 500])


def test_a_large_export_streams_as_the_store_is_read(gateway: GatewayFactory) -> None:
    """3,000 rows (24 MB of bodies, more than the sockets' buffers hold): the first chunk
    arrives, then a row is stored, and that row is in the export — the server was still
    reading the store after the answer began. Every line parses."""
    running = gateway(keys=KEYS)
    start = datetime.now(UTC) - timedelta(hours=1)
    n = 3000
    seed(running.engine, "bulk", n, start)
    with (
        httpx.Client(timeout=60) as http,
        http.stream(
            "GET", f"{running.url}/api/exports", params={"user": "bulk"}, headers=auth(ADMIN_KEY)
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert "content-length" not in response.headers  # chunked: sent as it is made
        chunks = response.iter_bytes()
        first = next(chunks)
        assert 0 < len(first) < n * BODY_BYTES // 4
        seed(running.engine, "bulk", 1, start + timedelta(minutes=30), prefix="req_late")
        ids: list[str] = []
        rest = first
        for chunk in chunks:
            rest += chunk
            *lines, rest = rest.split(b"\n")
            ids.extend(json.loads(line)["data"]["id"] for line in lines)
        assert rest == b""  # the answer ends with a whole line
    assert len(ids) == n + 1 and len(set(ids)) == n + 1
    assert ids[:-1] == sorted(ids[:-1]) and ids[-1].startswith("req_late_")
    # the client reads the same stream, record by record
    with Client(running.url, ADMIN_KEY) as client:
        kinds = {r["kind"] for r in client.export_user("bulk", tenant="acme")}
        assert kinds == {"request"}


def peak_bytes_of_export(engine: Engine, user: str) -> tuple[int, int]:
    """(lines, the peak of memory allocated while exporting them)."""
    lines = 0
    tracemalloc.start()
    try:
        for chunk in jsonl(export(engine, user, None)):
            lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return lines, peak


def test_an_export_takes_the_memory_of_a_batch_not_of_the_user(sqlite_engine: Engine) -> None:
    """A user with four times the rows (8 MB, then 32 MB of bodies) costs no more memory:
    one batch of rows and one chunk of lines at a time."""
    start = datetime.now(UTC) - timedelta(hours=1)
    seed(sqlite_engine, "warm", 10, start, prefix="req_warm")
    peak_bytes_of_export(sqlite_engine, "warm")  # first-use allocations out of the way
    seed(sqlite_engine, "some", 1000, start, prefix="req_some")
    seed(sqlite_engine, "many", 4000, start, prefix="req_many")
    some, some_peak = peak_bytes_of_export(sqlite_engine, "some")
    many, many_peak = peak_bytes_of_export(sqlite_engine, "many")
    assert (some, many) == (1000, 4000)
    assert many_peak < some_peak * 1.25, f"{some_peak / 1e6:.1f} MB, {many_peak / 1e6:.1f} MB"
    assert many_peak < 4000 * BODY_BYTES  # less than the export itself


async def test_the_async_client_reads_the_export_as_it_streams(running: Running) -> None:
    async with AsyncClient(running.url, ADMIN_KEY) as client:
        records = [r async for r in client.export_user("u1", tenant="globex")]
        assert [r["data"]["tenant"] for r in records] == ["globex"] * 2
        with pytest.raises(TrimtabError) as refused:
            [r async for r in client.export_user_lines("")]
        assert refused.value.status == 400 and refused.value.param == "user"


def test_the_cli_writes_the_export_to_stdout_as_jsonl(running: Running) -> None:
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": ADMIN_KEY}
    result = CliRunner().invoke(cli, ["export", "--user", "u2"], env=env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and {line["data"]["user_id"] for line in lines} == {"u2"}
    refused = CliRunner().invoke(
        cli, ["export", "--user", "u2"], env={**env, "TRIMTAB_API_KEY": VIEWER_KEY}
    )
    assert refused.exit_code == 1 and "admin" in refused.output
