"""The recorded traffic the request-log API tests read: ten calls from two tenants, tagged
the three ways, streamed and not, some failing; and what each test expects of them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_APP_KEY,
    GLOBEX_VIEWER_KEY,
    VIEWER_KEY,
    Running,
    auth,
)

ALL_KEYS = (ADMIN_KEY, APP_KEY, VIEWER_KEY, GLOBEX_APP_KEY, GLOBEX_VIEWER_KEY)


@dataclass
class Sent:
    """One model call the test made and what it expects the log to say about it."""

    id: str
    model: str
    provider: str
    tenant: str
    key: str
    status: int
    user: str | None = None
    session: str | None = None
    feature: str | None = None
    streamed: bool = False
    body: dict[str, Any] = field(default_factory=dict)
    reply: Any = None  # the JSON the client got (non-streamed calls)


@dataclass
class Traffic:
    running: Running
    client: httpx.Client
    sent: list[Sent]

    def ids(self, **match: Any) -> list[str]:
        """Ids of the sent calls matching all the given attributes, newest first."""
        return [
            s.id for s in reversed(self.sent) if all(getattr(s, k) == v for k, v in match.items())
        ]

    def get(self, path: str, key: str | None = ADMIN_KEY, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=auth(key) if key else {})

    def listed(self, key: str = ADMIN_KEY, **params: Any) -> list[dict[str, Any]]:
        response = self.get("/api/requests", key, limit=1000, **params)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["next_cursor"] is None
        rows: list[dict[str, Any]] = data["data"]
        return rows


def chat(
    client: httpx.Client,
    sent: list[Sent],
    *,
    key: str,
    tenant: str,
    model: str,
    provider: str,
    status: int = 200,
    text: str = "hello there",
    headers: dict[str, str] | None = None,
    stream: bool = False,
    expect: dict[str, str | None] | None = None,
    **extra: Any,
) -> Sent:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    h = {**auth(key), **(headers or {})}
    reply: Any = None
    if stream:
        with client.stream("POST", "/v1/chat/completions", json=body, headers=h) as response:
            response.read()
    else:
        response = client.post("/v1/chat/completions", json=body, headers=h)
        reply = response.json()
    assert response.status_code == status, response.text
    rid = response.headers["x-trimtab-request-id"]
    tags = expect or {}
    s = Sent(
        id=rid,
        model=model,
        provider=provider,
        tenant=tenant,
        key=key,
        status=status,
        user=tags.get("user"),
        session=tags.get("session"),
        feature=tags.get("feature"),
        streamed=stream,
        body=body,
        reply=reply,
    )
    sent.append(s)
    return s


def make_traffic(client: httpx.Client) -> list[Sent]:
    """Calls tagged the three ways (the OpenAI `user` field, `metadata`, x-trimtab-* headers)."""
    sent: list[Sent] = []
    acme: dict[str, Any] = {"key": APP_KEY, "tenant": "acme"}
    globex: dict[str, Any] = {"key": GLOBEX_APP_KEY, "tenant": "globex"}
    up: dict[str, Any] = {"model": "gpt-mock", "provider": "upstream"}
    sim: dict[str, Any] = {"model": "sim-1", "provider": "sim"}
    chat(client, sent, **acme, **up, user="alice", expect={"user": "alice"})
    chat(
        client,
        sent,
        **acme,
        **up,
        text="tell me about the sea and the sky",
        metadata={"session_id": "s-1", "feature": "search"},
        expect={"session": "s-1", "feature": "search"},
    )
    chat(
        client,
        sent,
        **acme,
        **sim,
        headers={"x-trimtab-user": "bob", "x-trimtab-session": "s-2", "x-trimtab-feature": "chat"},
        expect={"user": "bob", "session": "s-2", "feature": "chat"},
    )
    chat(
        client,
        sent,
        **acme,
        **up,
        stream=True,
        text="stream me a few words please",
        headers={"x-trimtab-user": "bob", "x-trimtab-feature": "chat"},
        expect={"user": "bob", "feature": "chat"},
    )
    chat(
        client,
        sent,
        **acme,
        model="gpt-500",
        provider="upstream",
        status=502,
        metadata={"feature": "search", "session_id": "s-1"},
        expect={"feature": "search", "session": "s-1"},
    )
    chat(
        client,
        sent,
        **acme,
        model="gpt-400",
        provider="upstream",
        status=400,
        user="alice",
        expect={"user": "alice"},
    )
    # headers win over metadata, which wins over `user`
    chat(
        client,
        sent,
        **acme,
        **sim,
        user="body-user",
        metadata={"user_id": "meta-user", "session_id": "meta-s", "feature": "meta-f"},
        headers={"x-trimtab-user": "carol", "x-trimtab-feature": "chat"},
        expect={"user": "carol", "session": "meta-s", "feature": "chat"},
    )
    chat(client, sent, **globex, **up, user="dave", expect={"user": "dave"})
    chat(
        client,
        sent,
        **globex,
        **sim,
        metadata={"session_id": "s-9", "feature": "search"},
        expect={"session": "s-9", "feature": "search"},
    )
    chat(
        client,
        sent,
        **globex,
        model="gpt-500",
        provider="upstream",
        status=502,
        headers={"x-trimtab-user": "dave"},
        expect={"user": "dave"},
    )
    return sent


def ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


def when(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["started_at"])


def key_id(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def detail(traffic: Traffic, rid: str, key: str = ADMIN_KEY) -> dict[str, Any]:
    response = traffic.get(f"/api/requests/{rid}", key)
    assert response.status_code == 200, response.text
    for secret in ALL_KEYS:
        assert secret not in response.text
    data: dict[str, Any] = response.json()
    return data
