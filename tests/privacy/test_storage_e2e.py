"""storage.bodies through a real server, with the official SDKs: after requests carrying a
card number, an email and an API key, not one byte written — store rows on SQLite and
PostgreSQL, the SQLite files, the journal, the spill file, the logs, the budget webhook's
and the alert sink's payloads — holds them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select

from tests.gateway.support import apply
from tests.privacy.support import HASH_KEY, Hooks, files_under, leaks, planted
from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    KEYS,
    OPERATOR_KEY,
    ROUTE_KEYS,
    ROUTES,
    GatewayFactory,
    auth,
    stored,
    wait_for,
)
from trimtab.store.tables import requests


def calls(url: str, text: str) -> list[str]:
    """A plain call, a stream, an Anthropic-format call and an upstream error: request ids."""
    client = openai.OpenAI(base_url=url + "/v1", api_key=APP_KEY, max_retries=0)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": text}]
    ids = []
    raw = client.chat.completions.with_raw_response.create(model="gpt-mock", messages=messages)
    assert text.split()[0] in raw.parse().choices[0].message.content  # type: ignore[operator]
    ids.append(raw.headers["x-trimtab-request-id"])
    with client.chat.completions.with_streaming_response.create(
        model="gpt-mock",
        messages=messages,
        stream=True,
    ) as streamed:
        "".join(streamed.iter_lines())
        ids.append(streamed.headers["x-trimtab-request-id"])
    claude = anthropic.Anthropic(base_url=url, api_key=APP_KEY, max_retries=0)
    answer = claude.messages.with_raw_response.create(
        model="claude-mock", max_tokens=50, messages=[{"role": "user", "content": text}]
    )
    ids.append(answer.headers["x-trimtab-request-id"])
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="gpt-400", messages=messages)
    ids.append(refused.value.response.headers["x-trimtab-request-id"])
    return ids


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    receiver = Hooks()
    yield receiver
    receiver.stop()


def alerting(url: str) -> dict[str, Any]:
    """A budget the first priced call crosses, its webhook, and an alert sink: payloads."""
    return {
        "budgets": [{"scope": "tenant:acme", "period": "day", "usd": 1e-9, "on_exceed": "alert"}],
        "alerts": {
            "webhooks": [{"url": url + "/budget", "retries": 0}],
            "sinks": {"hook": {"kind": "webhook", "url": url + "/alert"}},
            "outbox": {"interval_s": 0.05},
        },
    }


@pytest.mark.parametrize("mode", ["redacted", "hashed", "none"])
def test_nothing_written_holds_the_planted_values(
    mode: str,
    gateway: GatewayFactory,
    store_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    hooks: Hooks,
) -> None:
    caplog.set_level(logging.DEBUG)
    email, text = planted()
    storage = {"bodies": mode, "hash_key": HASH_KEY}
    running = gateway(store=store_url, keys=KEYS, storage=storage, **alerting(hooks.url))
    ids = calls(running.url, text)
    wait_for(lambda: len(hooks.received) >= 2)  # the budget's webhook and the alert's
    assert leaks(b"".join(hooks.received), email) == []
    for request_id in ids:
        stored(running, request_id)
    with running.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(requests)).mappings()]
    assert len(rows) == len(ids)
    assert leaks(repr(rows).encode(), email) == []
    shown = httpx.get(f"{running.url}/api/requests/{ids[0]}", headers=auth(ADMIN_KEY), timeout=10)
    assert shown.status_code == 200
    assert leaks(shown.content, email) == []
    if mode == "redacted":
        assert "<EMAIL_1> paid with <CREDIT_CARD_1>" in shown.text  # what requests show shows
    elif mode == "none":
        assert all(r["request_body"] is None for r in rows)
    else:
        assert all("hmac-sha256:" in r["request_body"] for r in rows)
    assert leaks(files_under(tmp_path), email) == []  # SQLite files, journal, spill
    server_logs = "\n".join(  # the clients' own debug logs print what they send
        r.getMessage() for r in caplog.records if r.name.startswith(("trimtab", "uvicorn"))
    )
    assert leaks(server_logs.encode(), email) == []


def test_full_keeps_them_and_the_check_sees_it(
    gateway: GatewayFactory, sqlite_url: str, tmp_path: Path
) -> None:
    email, text = planted()
    running = gateway(store=sqlite_url, keys=KEYS, storage={"bodies": "full"})
    ids = calls(running.url, text)
    for request_id in ids:
        stored(running, request_id)
    with running.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(requests)).mappings()]
    assert set(leaks(repr(rows).encode(), email)) == {"email", "card", "key"}
    assert "email" in leaks(files_under(tmp_path), email)


def test_a_routes_own_storage_policy(
    gateway: GatewayFactory, store_url: str, tmp_path: Path
) -> None:
    """`storage:` beside the route's owner: stored with the route, applied to its calls; a
    change of it is an update of the route, not a new version."""
    email, text = planted()
    running = gateway(store=store_url, keys=ROUTE_KEYS)
    routes = ROUTES.replace("    risk_tier: 2\n", "    risk_tier: 2\n    storage: {bodies: none}\n")
    [applied] = apply(running, routes)
    assert applied["version"] == 1
    wait_for(lambda: running.server_app.state.routes.get("support-answer", "acme"))
    client = openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)
    routed = client.chat.completions.with_raw_response.create(
        model="route:support-answer",
        messages=[{"role": "user", "content": "thanks"}],
        extra_body={"variables": {"policy": "refunds in 30 days", "question": text}},
    )
    plain = client.chat.completions.with_raw_response.create(
        model="gpt-mock", messages=[{"role": "user", "content": text}]
    )
    route_row = stored(running, routed.headers["x-trimtab-request-id"])
    plain_row = stored(running, plain.headers["x-trimtab-request-id"])
    assert route_row["request_body"] is None and route_row["response_body"] is None
    assert "<EMAIL_1>" in plain_row["request_body"]
    assert email not in str(plain_row) and email not in str(route_row)
    [again] = apply(running, routes.replace("{bodies: none}", "{bodies: full}"), "keep all")
    assert again["status"] == "updated" and again["version"] == 1


def test_an_unknown_mode_is_refused_naming_the_key(
    gateway: GatewayFactory, sqlite_url: str
) -> None:
    running = gateway(store=sqlite_url, keys=ROUTE_KEYS)
    routes = ROUTES.replace("    risk_tier: 2\n", "    risk_tier: 2\n    storage: {bodies: some}\n")
    refused = httpx.post(
        running.url + "/api/routes/apply",
        json={"yaml": routes, "message": "x"},
        headers=auth(OPERATOR_KEY),
        timeout=10,
    )
    assert refused.status_code == 400
    assert "routes.support-answer.storage.bodies" in refused.json()["error"]["message"]
