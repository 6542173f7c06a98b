"""A key change whose audit row the store refuses is a 503 that says nothing changed, and
nothing did: no key is created, none is revoked; on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from tests.audit.support import accept_audit_rows, refuse_audit_rows
from tests.support import ADMIN_KEY, KEYS, GatewayFactory, Running

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
NEW_KEY = {"tenant": "acme", "role": "app", "owner": "svc"}


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return gateway(store=store_url, keys=KEYS)


def assert_nothing_changed(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text
    rid = resp.headers["x-trimtab-request-id"]
    error = resp.json()["error"]
    assert (error["type"], error["code"], error["request_id"]) == (
        "api_error",
        "store_unavailable",
        rid,
    )
    assert "nothing changed" in error["message"], error["message"]
    assert error["message"].endswith(f"(request id: {rid})")


def store_keys(client: httpx.Client) -> list[dict[str, object]]:
    listed = client.get("/api/keys")
    assert listed.status_code == 200, listed.text
    return [k for k in listed.json()["data"] if k["source"] != "config"]


def test_a_key_change_the_store_refuses_changes_nothing(running: Running) -> None:
    with httpx.Client(base_url=running.url, headers=ADMIN, timeout=30) as client:
        made = client.post("/api/keys", json=NEW_KEY)
        assert made.status_code == 201, made.text
        key_id = made.json()["id"]
        refuse_audit_rows(running.engine)

        assert_nothing_changed(client.post("/api/keys", json=NEW_KEY))
        assert [k["id"] for k in store_keys(client)] == [key_id]

        assert_nothing_changed(client.delete(f"/api/keys/{key_id}"))
        assert client.get(f"/api/keys/{key_id}").json()["status"] == "active"

        accept_audit_rows(running.engine)
        revoked = client.delete(f"/api/keys/{key_id}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["status"] == "revoked"
