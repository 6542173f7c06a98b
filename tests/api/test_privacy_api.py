"""POST /api/erasures and GET /api/exports through a real server (admin only), on SQLite
and PostgreSQL, and the CLI's `trimtab erase` and `trimtab export` over them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
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
    lines = exported.json()["data"]
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
    assert {line["data"]["tenant"] for line in everywhere.json()["data"]} == {"globex"}


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
