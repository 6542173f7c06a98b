"""GET /api/requests and /api/requests/{id} through a real gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

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

ALL_KEYS = (ADMIN_KEY, APP_KEY, VIEWER_KEY, GLOBEX_APP_KEY, GLOBEX_VIEWER_KEY)
GPT_MOCK_INPUT_PER_MTOK = 0.15
GPT_MOCK_OUTPUT_PER_MTOK = 0.60


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


@pytest.fixture
def traffic(gateway: GatewayFactory, store_url: str) -> Iterator[Traffic]:
    running = gateway(store=store_url, keys=KEYS)
    with httpx.Client(base_url=running.url, timeout=30) as client:
        sent = make_traffic(client)
        assert running.wait_for_rows(len(sent)) == len(sent)
        yield Traffic(running, client, sent)


def ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


def when(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["started_at"])


# -- listing -------------------------------------------------------------------------------


def test_list_is_newest_first_and_holds_every_call(traffic: Traffic) -> None:
    rows = traffic.listed()
    assert ids_of(rows) == traffic.ids()  # the calls were made one after another
    times = [when(r) for r in rows]
    assert times == sorted(times, reverse=True)
    for row in rows:
        assert "request" not in row
        assert "response" not in row  # bodies only on the single-request view
        assert when(row).tzinfo is not None


def test_tags_given_three_ways_are_recorded(traffic: Traffic) -> None:
    by_id = {r["id"]: r for r in traffic.listed()}
    for s in traffic.sent:
        row = by_id[s.id]
        assert row["user.id"] == s.user, s
        assert row["session.id"] == s.session, s
        assert row["feature"] == s.feature, s
        assert row["tenant"] == s.tenant
        assert row["gen_ai.request.model"] == s.model
        assert row["provider"] == s.provider
        assert row["http.response.status_code"] == s.status
        assert row["streamed"] is s.streamed


FILTERS = [
    ("model", "gpt-mock", "model"),
    ("model", "sim-1", "model"),
    ("model", "gpt-500", "model"),
    ("model", "no-such-model", "model"),
    ("provider", "upstream", "provider"),
    ("provider", "sim", "provider"),
    ("tenant", "acme", "tenant"),
    ("tenant", "globex", "tenant"),
    ("user", "alice", "user"),
    ("user", "bob", "user"),
    ("user", "carol", "user"),
    ("session", "s-1", "session"),
    ("session", "meta-s", "session"),
    ("feature", "search", "feature"),
    ("feature", "chat", "feature"),
]


def test_every_filter(traffic: Traffic) -> None:
    for param, value, attribute in FILTERS:
        rows = traffic.listed(**{param: value})
        assert ids_of(rows) == traffic.ids(**{attribute: value}), (param, value)
    assert traffic.ids(model="no-such-model") == []


def test_text_in_the_bodies_is_searched_whatever_its_case(traffic: Traffic) -> None:
    def said(s: Sent, text: str) -> bool:
        return any(text in str(m.get("content", "")).lower() for m in s.body["messages"])

    expected = [s.id for s in reversed(traffic.sent) if said(s, "the sea")]
    assert expected
    assert ids_of(traffic.listed(q="THE SEA")) == expected
    assert ids_of(traffic.listed(q="the sea", tenant="globex")) == []
    # another tenant's key finds none of acme's, whatever it searches
    assert traffic.listed(GLOBEX_VIEWER_KEY, q="the sea") == []
    assert traffic.listed(q="no such words anywhere") == []


def test_filters_combine(traffic: Traffic) -> None:
    rows = traffic.listed(tenant="acme", feature="search", model="gpt-mock")
    assert ids_of(rows) == traffic.ids(tenant="acme", feature="search", model="gpt-mock")
    assert len(rows) == 1


def test_status_filters(traffic: Traffic) -> None:
    assert ids_of(traffic.listed(status="502")) == traffic.ids(status=502)
    assert ids_of(traffic.listed(status="400")) == traffic.ids(status=400)
    assert ids_of(traffic.listed(status="200")) == traffic.ids(status=200)
    assert traffic.listed(status="404") == []
    errors = [s.id for s in reversed(traffic.sent) if s.status >= 400]
    ok = [s.id for s in reversed(traffic.sent) if s.status < 400]
    assert ids_of(traffic.listed(status="error")) == errors
    assert ids_of(traffic.listed(status="ok")) == ok
    assert len(errors) == 3 and len(ok) == 7


def test_since_and_until(traffic: Traffic) -> None:
    rows = traffic.listed()
    oldest_first = list(reversed(rows))
    k = len(oldest_first) // 2
    pivot = oldest_first[k]
    at = when(pivot)
    newer = ids_of([r for r in rows if when(r) >= at])
    older = ids_of([r for r in rows if when(r) < at])
    assert newer and older
    assert newer == ids_of(rows[: len(rows) - k])

    iso = pivot["started_at"]
    zulu = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    naive = at.astimezone(UTC).replace(tzinfo=None).isoformat()  # naive means UTC
    unix = repr(at.timestamp())
    for value in (iso, zulu, naive, unix):
        assert ids_of(traffic.listed(since=value)) == newer, value
        assert ids_of(traffic.listed(until=value)) == older, value

    # a window: [second oldest, second newest)
    lo, hi = oldest_first[1]["started_at"], oldest_first[-2]["started_at"]
    assert ids_of(traffic.listed(since=lo, until=hi)) == ids_of(rows[2:-1])
    # whole seconds, far out
    assert traffic.listed(since=str(int(at.timestamp()) + 86_400)) == []
    assert ids_of(traffic.listed(until=str(int(at.timestamp()) + 86_400))) == ids_of(rows)
    assert ids_of(traffic.listed(since="2000-01-01")) == ids_of(rows)


def walk_pages(traffic: Traffic, key: str, params: dict[str, str]) -> None:
    everything = ids_of(traffic.listed(key, **params))
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = traffic.get("/api/requests", key, **query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= 2
        seen.extend(ids_of(page["data"]))
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["data"]) == 2
        assert pages <= len(everything)
    assert seen == everything
    assert len(set(seen)) == len(seen)
    assert pages == max(1, math.ceil(len(everything) / 2))


def test_cursor_pagination_walks_every_row_once(traffic: Traffic) -> None:
    walk_pages(traffic, ADMIN_KEY, {})
    walk_pages(traffic, ADMIN_KEY, {"status": "ok"})  # 7 rows: the last page holds one
    walk_pages(traffic, ADMIN_KEY, {"model": "gpt-mock"})
    walk_pages(traffic, ADMIN_KEY, {"model": "no-such-model"})
    walk_pages(traffic, VIEWER_KEY, {})
    walk_pages(traffic, GLOBEX_VIEWER_KEY, {})


def test_default_limit_and_limit_one(traffic: Traffic) -> None:
    response = traffic.get("/api/requests", ADMIN_KEY, limit=1)
    page = response.json()
    assert ids_of(page["data"]) == traffic.ids()[:1]
    assert page["next_cursor"]
    page = traffic.get("/api/requests").json()  # default limit 50 holds all ten
    assert ids_of(page["data"]) == traffic.ids()
    assert page["next_cursor"] is None


BAD_PARAMETERS = [
    ("q", "x" * 257),
    ("cursor", "not-a-cursor"),
    ("cursor", "!!!"),
    ("cursor", "a"),
    ("cursor", "eyJhIjogMX0"),  # {"a": 1}
    ("cursor", "WzEsIDJd"),  # [1, 2]
    ("cursor", "WyJub3QgYSB0aW1lIiwgIngiXQ"),  # ["not a time", "x"]
    ("limit", "0"),
    ("limit", "-3"),
    ("limit", "1001"),
    ("limit", "ten"),
    ("limit", "2.5"),
    ("since", "yesterday"),
    ("since", "2025-13-45"),
    ("until", "soon"),
    ("status", "bad"),
    ("status", "-1"),
    # unix seconds beyond what a datetime holds
    ("since", "inf"),
    ("since", "-inf"),
    ("since", "1e20"),
    ("until", "99999999999999999999"),
]


def test_bad_parameters_are_400_naming_the_parameter(traffic: Traffic) -> None:
    for param, value in BAD_PARAMETERS:
        response = traffic.get("/api/requests", ADMIN_KEY, **{param: value})
        assert response.status_code == 400, (param, value, response.text)
        assert response.headers["content-type"].startswith("application/json")
        error = response.json()["error"]
        assert error["param"] == param, (param, value)
        assert error["code"] == "invalid_parameter"
        assert param in error["message"]


def test_iso_times_out_of_range_in_utc_are_400(traffic: Traffic) -> None:
    for value in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        response = traffic.get("/api/requests", ADMIN_KEY, since=value)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "since"


# -- one request ---------------------------------------------------------------------------


def key_id(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def detail(traffic: Traffic, rid: str, key: str = ADMIN_KEY) -> dict[str, Any]:
    response = traffic.get(f"/api/requests/{rid}", key)
    assert response.status_code == 200, response.text
    for secret in ALL_KEYS:
        assert secret not in response.text
    data: dict[str, Any] = response.json()
    return data


def expected_cost(input_tokens: int, output_tokens: int) -> float:
    return (
        input_tokens * GPT_MOCK_INPUT_PER_MTOK + output_tokens * GPT_MOCK_OUTPUT_PER_MTOK
    ) / 1_000_000


def test_detail_of_a_call(traffic: Traffic) -> None:
    s = traffic.sent[1]  # gpt-mock, not streamed, tagged through metadata
    d = detail(traffic, s.id)
    usage = s.reply["usage"]
    assert d["id"] == s.id
    assert d["api"] == "openai"
    assert d["gen_ai.operation.name"] == "chat"
    assert d["gen_ai.request.model"] == "gpt-mock"
    assert d["gen_ai.response.model"] == s.reply["model"]
    assert d["gen_ai.response.id"] == s.reply["id"]
    assert d["gen_ai.provider.name"] == "openai"
    assert d["gen_ai.usage.input_tokens"] == usage["prompt_tokens"] == 8
    assert d["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert d["gen_ai.response.finish_reasons"] == ["stop"]
    assert d["provider"] == "upstream"
    assert d["upstream_model"] == "mock-1"
    assert d["tenant"] == "acme"
    assert d["key_id"] == key_id(APP_KEY)
    assert d["session.id"] == "s-1"
    assert d["feature"] == "search"
    assert d["http.response.status_code"] == 200
    assert d["error.type"] is None
    assert d["streamed"] is False
    assert d["ttft_ms"] is None
    assert d["request"] == s.body
    assert d["response"] == s.reply
    cost = expected_cost(usage["prompt_tokens"], usage["completion_tokens"])
    assert cost > 0
    assert d["cost_usd"] == pytest.approx(cost, rel=1e-12)
    assert d["latency_ms"] > 0
    assert 0 <= d["overhead_ms"] <= d["latency_ms"]
    assert when(d) <= datetime.fromisoformat(d["ended_at"])


def test_detail_of_a_streamed_call(traffic: Traffic) -> None:
    s = next(x for x in traffic.sent if x.streamed)
    d = detail(traffic, s.id)
    assert d["streamed"] is True
    assert d["request"] == s.body
    assert isinstance(d["response"], dict)
    inp, out = d["gen_ai.usage.input_tokens"], d["gen_ai.usage.output_tokens"]
    assert inp == 6  # words in "stream me a few words please"
    assert out and out > 0
    assert d["cost_usd"] == pytest.approx(expected_cost(inp, out), rel=1e-12)
    assert d["ttft_ms"] is not None
    assert 0 < d["ttft_ms"] <= d["latency_ms"]
    assert 0 <= d["overhead_ms"] <= d["latency_ms"]
    assert d["key_id"] == key_id(APP_KEY)


def test_detail_of_a_failed_call(traffic: Traffic) -> None:
    s = traffic.sent[4]  # gpt-500
    d = detail(traffic, s.id)
    assert d["http.response.status_code"] == 502
    assert d["error.type"] == "upstream_error"
    assert d["error_message"]
    assert d["gen_ai.usage.input_tokens"] is None
    assert d["cost_usd"] is None
    assert d["response"]["error"]["request_id"] == s.id


def test_detail_of_a_simulator_call_costs_nothing(traffic: Traffic) -> None:
    s = traffic.sent[2]  # sim-1 has no pricing
    d = detail(traffic, s.id)
    assert d["gen_ai.provider.name"] == "simulator"
    assert d["gen_ai.usage.input_tokens"] == 2
    assert d["cost_usd"] == 0


def test_every_id_matches_the_header_and_keys_never_leak(traffic: Traffic) -> None:
    listing = traffic.get("/api/requests", ADMIN_KEY, limit=1000)
    for secret in ALL_KEYS:
        assert secret not in listing.text
    for s in traffic.sent:
        d = detail(traffic, s.id)
        assert d["id"] == s.id
        assert d["key_id"] == key_id(s.key)
        assert d["key_id"] not in (s.key, None)


def test_unknown_id_is_404(traffic: Traffic) -> None:
    response = traffic.get("/api/requests/req_nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# -- who may read what ---------------------------------------------------------------------


def test_viewer_sees_only_its_tenant(traffic: Traffic) -> None:
    acme = traffic.ids(tenant="acme")
    globex = traffic.ids(tenant="globex")
    assert ids_of(traffic.listed(VIEWER_KEY)) == acme
    assert ids_of(traffic.listed(VIEWER_KEY, tenant="acme")) == acme
    assert ids_of(traffic.listed(GLOBEX_VIEWER_KEY)) == globex
    # filters cannot widen the scope
    assert ids_of(traffic.listed(VIEWER_KEY, model="gpt-mock")) == traffic.ids(
        tenant="acme", model="gpt-mock"
    )
    assert ids_of(traffic.listed(VIEWER_KEY, user="dave")) == []
    for rid in globex:
        response = traffic.get(f"/api/requests/{rid}", VIEWER_KEY)
        assert response.status_code == 404
        missing = traffic.get("/api/requests/req_missing", VIEWER_KEY)
        # another tenant's request looks exactly like a missing one
        assert response.json()["error"]["code"] == missing.json()["error"]["code"]
        assert detail(traffic, rid, GLOBEX_VIEWER_KEY)["tenant"] == "globex"
    for rid in acme:
        assert traffic.get(f"/api/requests/{rid}", GLOBEX_VIEWER_KEY).status_code == 404
        assert detail(traffic, rid, VIEWER_KEY)["tenant"] == "acme"


def test_viewer_asking_for_another_tenant_is_403(traffic: Traffic) -> None:
    response = traffic.get("/api/requests", VIEWER_KEY, tenant="globex")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert traffic.get("/api/requests", GLOBEX_VIEWER_KEY, tenant="acme").status_code == 403


def test_admin_may_choose_a_tenant(traffic: Traffic) -> None:
    assert ids_of(traffic.listed(ADMIN_KEY, tenant="globex")) == traffic.ids(tenant="globex")
    assert ids_of(traffic.listed(ADMIN_KEY, tenant="acme")) == traffic.ids(tenant="acme")
    assert traffic.listed(ADMIN_KEY, tenant="initech") == []
    globex = traffic.ids(tenant="globex")[0]
    assert detail(traffic, globex, ADMIN_KEY)["tenant"] == "globex"


API_PATHS = ["/api/requests", "/api/requests/{id}", "/api/metrics/summary"]


def test_app_keys_may_not_read(traffic: Traffic) -> None:
    for path in API_PATHS:
        url = path.format(id=traffic.sent[0].id)
        for key in (APP_KEY, GLOBEX_APP_KEY):
            response = traffic.get(url, key)
            assert response.status_code == 403, (url, key)
            assert response.json()["error"]["code"] == "forbidden"


def test_no_key_or_a_wrong_key_is_401(traffic: Traffic) -> None:
    for path in API_PATHS:
        url = path.format(id=traffic.sent[0].id)
        response = traffic.get(url, None)
        assert response.status_code == 401, url
        assert response.json()["error"]["code"] == "missing_api_key"
        response = traffic.get(url, "tt-not-a-real-key")
        assert response.status_code == 401, url
        assert response.json()["error"]["code"] == "invalid_api_key"


def test_x_api_key_header_is_accepted(traffic: Traffic) -> None:
    response = traffic.client.get("/api/requests", headers={"x-api-key": VIEWER_KEY})
    assert response.status_code == 200
    assert ids_of(response.json()["data"]) == traffic.ids(tenant="acme")


def test_error_bodies_are_json(traffic: Traffic) -> None:
    response = traffic.get("/api/requests", ADMIN_KEY, limit="x")
    body = orjson.loads(response.content)
    assert set(body["error"]) >= {"message", "type", "param", "code", "request_id"}
    assert body["error"]["request_id"] == response.headers["x-trimtab-request-id"]
