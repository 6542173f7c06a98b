"""Keys made through the API on a real gateway: they work at once, stop at once when revoked,
expire, and other gateways on the same store follow within a refresh."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.auth.support import chat, create_key, message_of, revoke_key, wait_until
from tests.support import ADMIN_KEY, APP_KEY, KEYS, GatewayFactory, Running
from trimtab.telemetry.queries import get_request


def sdk(running: Running, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=running.url + "/v1", api_key=key, max_retries=0)


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return gateway(store=store_url, keys=KEYS)


def test_a_created_key_works_at_once_with_the_openai_sdk(running: Running) -> None:
    made = create_key(running.url, tenant="globex", role="app", owner="checkout-service")
    key = made["key"]
    assert key.startswith("tt-") and len(key) >= 40
    assert made["id"] == "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]
    client = sdk(running, key)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-mock", messages=[{"role": "user", "content": "first call"}]
    )
    assert raw.parse().choices[0].message.content == "mock reply to: first call"
    chunks = list(
        client.chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": "streamed"}], stream=True
        )
    )
    assert chunks
    assert [m.id for m in client.models.list()]
    # the Anthropic SDK sends the key as x-api-key
    reply = anthropic.Anthropic(base_url=running.url, api_key=key, max_retries=0).messages.create(
        model="claude-mock", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.content
    rid = raw.headers["x-trimtab-request-id"]
    running.wait_for_rows(3)
    row = wait_until(lambda: get_request(running.engine, rid), lambda r: r is not None)
    assert row is not None
    assert (row["tenant"], row["key_id"]) == ("globex", made["id"])


def test_a_revoked_key_is_refused_on_the_next_request(running: Running) -> None:
    made = create_key(running.url, role="operator", owner="ops-bot")
    client = sdk(running, made["key"])
    client.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": "a"}])
    assert revoke_key(running.url, made["id"]).status_code == 200
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": "b"}]
        )
    assert "API key revoked" in str(info.value)
    response = httpx.get(
        running.url + "/api/requests", headers={"authorization": f"Bearer {made['key']}"}
    )
    assert response.status_code == 401
    # the revocation is not undone by the next refresh of the cache
    time.sleep(running.config.auth.refresh_s * 2 + 0.2)
    assert chat(running.url, made["key"]).status_code == 401
    assert chat(running.url, APP_KEY).status_code == 200


def test_an_expired_key_is_refused(running: Running) -> None:
    made = create_key(running.url, owner="short-lived", expires_in="3s")
    assert made["expires_at"] is not None
    assert chat(running.url, made["key"]).status_code == 200
    response = wait_until(
        lambda: chat(running.url, made["key"]), lambda r: r.status_code != 200, timeout_s=10
    )
    assert response.status_code == 401
    assert message_of(response).startswith("API key expired")
    assert response.json()["error"]["code"] == "expired_api_key"
    shown = httpx.get(
        f"{running.url}/api/keys/{made['id']}", headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert shown.json()["status"] == "expired"


def test_another_gateway_on_the_same_store_follows_within_a_refresh(
    gateway: GatewayFactory, store_url: str, tmp_path: Path
) -> None:
    a = gateway(store=store_url, keys=KEYS)
    b = gateway(
        store=store_url,
        keys=KEYS,
        telemetry={"spill_path": str(tmp_path / "spill-b.jsonl"), "flush_interval_s": 0.02},
    )
    made = create_key(a.url, owner="shared-service")
    got = wait_until(lambda: chat(b.url, made["key"]), lambda r: r.status_code == 200)
    assert got.status_code == 200, got.text
    assert revoke_key(a.url, made["id"]).status_code == 200
    assert chat(a.url, made["key"]).status_code == 401  # at once where it was revoked
    got = wait_until(lambda: chat(b.url, made["key"]), lambda r: r.status_code == 401)
    assert got.status_code == 401, got.text
    assert message_of(got).startswith("API key revoked")
    # and a key made on B is listed on A (listings read the store)
    other = create_key(b.url, owner="made-on-b")
    ids = [
        k["id"]
        for k in httpx.get(
            a.url + "/api/keys", headers={"authorization": f"Bearer {ADMIN_KEY}"}
        ).json()["data"]
    ]
    assert other["id"] in ids and made["id"] in ids
