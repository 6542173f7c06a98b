"""The keys API and the audit log through a real gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.auth.support import chat, create_key, message_of, revoke_key, wait_until
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
from trimtab.store.tables import metadata

ADMIN_ID = "key_" + hashlib.sha256(ADMIN_KEY.encode()).hexdigest()[:12]
APP_ID = "key_" + hashlib.sha256(APP_KEY.encode()).hexdigest()[:12]
GLOBEX_APP_ID = "key_" + hashlib.sha256(GLOBEX_APP_KEY.encode()).hexdigest()[:12]


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return gateway(store=store_url, keys=KEYS)


def get(running: Running, path: str, key: str | None, **params: Any) -> httpx.Response:
    return httpx.get(running.url + path, params=params, headers=auth(key), timeout=10)


def post_key(running: Running, body: Any, key: str | None = ADMIN_KEY) -> httpx.Response:
    return httpx.post(running.url + "/api/keys", json=body, headers=auth(key), timeout=10)


def audit(running: Running, **params: Any) -> list[dict[str, Any]]:
    response = get(running, "/api/audit", ADMIN_KEY, **params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


# -- creating, reading and revoking ---------------------------------------------------------


def test_create_shows_the_key_once_and_stores_only_its_hash(running: Running) -> None:
    response = post_key(
        running,
        {"tenant": "acme", "role": "viewer", "owner": "dashboards", "name": "grafana"},
    )
    assert response.status_code == 201, response.text
    made = response.json()
    key = made.pop("key")
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert made["id"] == "key_" + digest[:12]
    assert made["hint"] == f"{key[:5]}...{key[-4:]}"
    assert made["id"] == "key_" + digest[:12]
    assert {k: made[k] for k in ("source", "tenant", "role", "owner", "name", "status")} == {
        "source": "store",
        "tenant": "acme",
        "role": "viewer",
        "owner": "dashboards",
        "name": "grafana",
        "status": "active",
    }
    assert made["created_by"] == "ops@acme"
    assert response.headers["x-trimtab-request-id"].startswith("req_")
    shown = get(running, f"/api/keys/{made['id']}", ADMIN_KEY).json()
    assert shown == made  # everything but the key itself
    listed = get(running, "/api/keys", ADMIN_KEY).json()["data"]
    assert made in listed
    assert all("key" not in k and "key_hash" not in k for k in listed)
    with running.engine.connect() as conn:
        rows = conn.execute(select(metadata.tables["api_keys"])).mappings().all()
    assert [(r["id"], r["key_hash"]) for r in rows] == [(made["id"], digest)]


def test_config_keys_are_listed_but_cannot_be_revoked(running: Running) -> None:
    listed = get(running, "/api/keys", ADMIN_KEY).json()["data"]
    config = [k for k in listed if k["source"] == "config"]
    assert len(config) == len(KEYS)
    admin = next(k for k in config if k["id"] == ADMIN_ID)
    assert (admin["tenant"], admin["role"], admin["owner"], admin["hint"]) == (
        "acme",
        "admin",
        "ops@acme",
        None,
    )
    assert get(running, f"/api/keys/{APP_ID}", ADMIN_KEY).json()["source"] == "config"
    response = revoke_key(running.url, APP_ID)
    assert response.status_code == 409
    assert "comes from the configuration file" in message_of(response)
    assert chat(running.url, APP_KEY).status_code == 200


def test_revoke_unknown_twice_and_listing_by_tenant(running: Running) -> None:
    made = create_key(running.url, tenant="globex", owner="batch")
    response = revoke_key(running.url, "key_000000000000")
    assert response.status_code == 404
    assert message_of(response).startswith("no key with id 'key_000000000000'")
    revoked = revoke_key(running.url, made["id"])
    assert revoked.status_code == 200
    body = revoked.json()
    assert (body["status"], body["revoked_by"]) == ("revoked", "ops@acme")
    again = revoke_key(running.url, made["id"])
    assert again.status_code == 409
    assert "already revoked" in message_of(again)
    globex = get(running, "/api/keys", ADMIN_KEY, tenant="globex").json()["data"]
    assert {k["tenant"] for k in globex} == {"globex"}
    assert made["id"] in {k["id"] for k in globex}


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"tenant": "acme", "role": "app"}, "owner", "is required"),
        ({"tenant": "acme", "role": "app", "owner": "  "}, "owner", "non-empty"),
        ({"role": "app", "owner": "x"}, "tenant", "is required"),
        ({"tenant": "acme", "role": "root", "owner": "x"}, "role", "not one of app, viewer"),
        ({"tenant": "acme", "role": "app", "owner": "x", "scopes": []}, "scopes", "unknown"),
        ({"tenant": "acme", "role": "app", "owner": "x", "expires_in": "soon"}, "expires_in", ""),
        ({"tenant": "acme", "role": "app", "owner": "x", "expires_in": "0d"}, "expires_in", ""),
        (
            {"tenant": "acme", "role": "app", "owner": "x", "expires_at": "2001-01-01T00:00:00Z"},
            "expires_at",
            "not in the future",
        ),
        (
            {"tenant": "acme", "role": "app", "owner": "x", "expires_at": "x", "expires_in": "1d"},
            "expires_at",
            "not both",
        ),
    ],
)
def test_bad_create_requests_name_the_field(
    gateway: GatewayFactory, sqlite_url: str, body: dict[str, Any], param: str, says: str
) -> None:
    running = gateway(store=sqlite_url, keys=KEYS)
    response = post_key(running, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert says in error["message"]


def test_expires_at_is_kept(gateway: GatewayFactory, sqlite_url: str) -> None:
    running = gateway(store=sqlite_url, keys=KEYS)
    when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    made = create_key(running.url, owner="x", expires_at=when.isoformat())
    assert datetime.fromisoformat(made["expires_at"]) == when
    not_json = httpx.post(running.url + "/api/keys", content=b"{", headers=auth(ADMIN_KEY))
    assert not_json.status_code == 400


def test_without_a_keys_list_keys_cannot_be_made(gateway: GatewayFactory, sqlite_url: str) -> None:
    running = gateway(store=sqlite_url)
    response = post_key(running, {"tenant": "acme", "role": "app", "owner": "x"}, key=None)
    assert response.status_code == 409
    assert "keys are off" in message_of(response)


# -- who may do what -------------------------------------------------------------------------

ROLES = ("app", "viewer", "operator", "admin")
# role -> (call models, read /api/requests, read keys, create keys, revoke keys, read audit)
MAY = {
    "app": (True, False, False, False, False, False),
    "viewer": (False, True, True, False, False, False),
    "operator": (True, True, True, False, False, False),
    "admin": (True, True, True, True, True, True),
}


def test_role_matrix(running: Running) -> None:
    keys = {role: create_key(running.url, role=role, owner=f"{role}-owner") for role in ROLES}
    for role, made in keys.items():
        key = made["key"]
        victim = create_key(running.url, owner="victim")
        outcomes = (
            chat(running.url, key).status_code,
            get(running, "/api/requests", key).status_code,
            get(running, "/api/keys", key).status_code,
            post_key(running, {"tenant": "acme", "role": "app", "owner": "o"}, key).status_code,
            revoke_key(running.url, victim["id"], key).status_code,
            get(running, "/api/audit", key).status_code,
        )
        allowed = (200, 200, 200, 201, 200, 200)
        expected = tuple(ok if may else 403 for ok, may in zip(allowed, MAY[role], strict=True))
        assert outcomes == expected, role
    operator = keys["operator"]["key"]
    response = post_key(running, {"tenant": "acme", "role": "app", "owner": "o"}, operator)
    assert message_of(response).startswith(
        "only a key with role 'admin' may create keys; this key has role 'operator'"
    )
    response = revoke_key(running.url, keys["app"]["id"], operator)
    assert message_of(response).startswith("only a key with role 'admin' may revoke keys")
    response = get(running, "/api/audit", keys["viewer"]["key"])
    assert message_of(response).startswith("only a key with role 'admin' may read the audit log")
    response = get(running, "/api/keys", keys["app"]["key"])
    assert message_of(response).startswith("a key with role 'app' may not read keys")
    assert get(running, "/api/keys", None).status_code == 401


def test_tenant_isolation_matrix(running: Running) -> None:
    """No key reads another tenant's requests, request by id, summary, costs or keys."""
    made = {
        (tenant, role): create_key(running.url, tenant=tenant, role=role, owner=f"{tenant}-{role}")
        for tenant in ("acme", "globex")
        for role in ("viewer", "operator", "app")
    }
    sent: dict[str, list[str]] = {"acme": [], "globex": []}
    for tenant, key in (
        ("acme", APP_KEY),
        ("acme", made["acme", "app"]["key"]),
        ("globex", GLOBEX_APP_KEY),
        ("globex", made["globex", "operator"]["key"]),
    ):
        response = chat(running.url, key)
        assert response.status_code == 200
        sent[tenant].append(response.headers["x-trimtab-request-id"])
    running.wait_for_rows(4)
    all_rows = wait_until(
        lambda: get(running, "/api/requests", ADMIN_KEY).json()["data"], lambda r: len(r) >= 4
    )
    assert len(all_rows) == 4
    readers = [
        ("acme", VIEWER_KEY),
        ("globex", GLOBEX_VIEWER_KEY),
        *((t, made[t, r]["key"]) for t in ("acme", "globex") for r in ("viewer", "operator")),
    ]
    for tenant, key in readers:
        other = "globex" if tenant == "acme" else "acme"
        rows = get(running, "/api/requests", key).json()["data"]
        assert sorted(r["id"] for r in rows) == sorted(sent[tenant])
        assert get(running, "/api/requests", key, tenant=other).status_code == 403
        for rid in sent[tenant]:
            assert get(running, f"/api/requests/{rid}", key).status_code == 200
        for rid in sent[other]:
            assert get(running, f"/api/requests/{rid}", key).status_code == 404
        summary = get(running, "/api/metrics/summary", key, group_by="tenant").json()
        assert summary["tenant"] == tenant
        assert [g["tenant"] for g in summary["groups"]] == [tenant]
        assert get(running, "/api/metrics/summary", key, tenant=other).status_code == 403
        costs = get(running, "/api/costs", key)
        if costs.status_code != 404:  # the costs API may not be there yet
            assert costs.status_code == 200, costs.text
            assert costs.json()["tenant"] == tenant
            assert get(running, "/api/costs", key, tenant=other).status_code == 403
        keys = get(running, "/api/keys", key).json()["data"]
        assert keys and {k["tenant"] for k in keys} == {tenant}
        assert get(running, "/api/keys", key, tenant=other).status_code == 403
        for (owner_tenant, _), k in made.items():
            status = get(running, f"/api/keys/{k['id']}", key).status_code
            assert status == (200 if owner_tenant == tenant else 404)
        config_other = GLOBEX_APP_ID if tenant == "acme" else APP_ID
        assert get(running, f"/api/keys/{config_other}", key).status_code == 404
    # the admin sees everything
    assert len(get(running, "/api/keys", ADMIN_KEY).json()["data"]) == len(KEYS) + len(made)


# -- the audit log ---------------------------------------------------------------------------


def test_every_create_and_revoke_is_audited(running: Running) -> None:
    created = post_key(
        running,
        {"tenant": "globex", "role": "app", "owner": "billing", "name": "nightly"},
    )
    assert created.status_code == 201
    made = created.json()
    revoked = httpx.delete(
        f"{running.url}/api/keys/{made['id']}",
        headers={**auth(ADMIN_KEY), "x-forwarded-for": "203.0.113.7, 10.0.0.2"},
    )
    assert revoked.status_code == 200
    # refused actions change nothing and leave no row
    assert revoke_key(running.url, made["id"]).status_code == 409
    assert post_key(running, {"tenant": "acme"}).status_code == 400

    events = audit(running)
    assert [e["action"] for e in events] == ["key.revoke", "key.create"]
    revoke, create = events
    for event, response in ((create, created), (revoke, revoked)):
        assert event["actor"] == "ops@acme"
        assert event["actor_key_id"] == ADMIN_ID
        assert event["target"] == made["id"]
        assert event["tenant"] == "globex"
        assert event["request_id"] == response.headers["x-trimtab-request-id"]
        assert made["key"] not in str(event)
    assert create["detail"] == {
        "role": "app",
        "owner": "billing",
        "name": "nightly",
        "expires_at": None,
    }
    assert revoke["detail"]["forwarded_for"] == "203.0.113.7, 10.0.0.2"
    assert create["remote_addr"] == "127.0.0.1"
    # uvicorn trusts x-forwarded-for from a loopback proxy: the scope's client is then the
    # nearest address that proxy saw; the whole header is kept in the detail
    assert revoke["remote_addr"] == "10.0.0.2"
    assert "forwarded_for" not in create["detail"]
    at = datetime.fromisoformat(create["at"])
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60


def test_audit_filters_and_pages(running: Running) -> None:
    made = [create_key(running.url, owner=f"svc-{i}") for i in range(5)]
    for k in made[:2]:
        assert revoke_key(running.url, k["id"]).status_code == 200
    assert [e["target"] for e in audit(running, action="key.revoke")] == [
        made[1]["id"],
        made[0]["id"],
    ]
    assert len(audit(running, actor="ops@acme")) == 7
    assert len(audit(running, actor=ADMIN_ID)) == 7
    assert audit(running, actor="someone-else") == []
    assert len(audit(running, target=made[0]["id"])) == 2
    assert len(audit(running, tenant="acme")) == 7
    assert audit(running, since="2999-01-01T00:00:00Z") == []
    assert audit(running, until="2000-01-01T00:00:00Z") == []
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = get(running, "/api/audit", ADMIN_KEY, **params).json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in audit(running)]
    assert len(seen) == len(set(seen)) == 7
    bad = get(running, "/api/audit", ADMIN_KEY, cursor="nonsense")
    assert bad.status_code == 400
    assert get(running, "/api/audit", ADMIN_KEY, since="yesterday").status_code == 400


# -- the key never lands anywhere ------------------------------------------------------------


def test_the_key_never_appears_in_a_stored_row_or_a_log_line(
    running: Running, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    made = create_key(running.url, owner="leak-check", name="leak-check")
    key = made["key"]
    assert chat(running.url, key).status_code == 200
    body = {"model": "gpt-mock", "messages": [{"role": "user", "content": "s"}], "stream": True}
    with httpx.stream(
        "POST", running.url + "/v1/chat/completions", json=body, headers=auth(key)
    ) as streamed:
        streamed.read()
    assert httpx.post(
        running.url + "/v1/messages",
        json={
            "model": "claude-mock",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "a"}],
        },
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
    ).is_success
    assert revoke_key(running.url, made["id"]).status_code == 200
    assert chat(running.url, key).status_code == 401
    running.wait_for_rows(4)
    dumped: list[str] = []
    with running.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                dumped.append(f"{table.name}: {dict(row)!r}")
    text = "\n".join(dumped)
    assert made["id"] in text  # the tables were read, and they name the key by its id
    assert key not in text
    assert key[3:] not in text  # not even without its prefix
    assert key not in caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".db":
            assert key not in path.read_text(errors="replace"), path
