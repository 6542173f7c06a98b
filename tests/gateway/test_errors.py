"""Bad input and failing providers: a precise error in the client's format, and a record."""

from __future__ import annotations

import http.client
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from redis import Redis

from tests.support import APP_KEY, KEYS, VIEWER_KEY, GatewayFactory, Running, base_config, stored
from trimtab.errors import error_type
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.redis_server import RedisServer

AUTH = {"authorization": f"Bearer {APP_KEY}"}
MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture
def running(gateway: GatewayFactory) -> Running:
    return gateway(keys=KEYS, server={"max_body_bytes": 4096})


def post(
    running: Running,
    path: str,
    *,
    json: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    with httpx.Client(base_url=running.url, timeout=30) as http:
        return http.post(
            path, json=json, content=content, headers=AUTH if headers is None else headers
        )


def assert_openai_error(resp: httpx.Response, status: int, code: str, text: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    rid = resp.headers["x-trimtab-request-id"]
    err: dict[str, Any] = resp.json()["error"]
    assert err["code"] == code
    assert text in err["message"]
    assert rid in err["message"] and err["request_id"] == rid
    assert isinstance(err["type"], str)
    return err


def assert_recorded(running: Running, resp: httpx.Response, status: int, code: str) -> None:
    row = stored(running, resp.headers["x-trimtab-request-id"])
    assert row["status_code"] == status
    assert row["error_type"] == code
    assert row["error_message"]


CASES: list[tuple[str, dict[str, Any], int, str, str]] = [
    # (name, request kwargs, status, code, text in message)
    ("malformed json", {"content": b'{"model": "gpt-mock", "messages": ['}, 400,
     "invalid_request", "not valid JSON"),
    ("not an object", {"json": [1, 2]}, 400, "invalid_request", "must be a JSON object"),
    ("missing messages", {"json": {"model": "gpt-mock"}}, 400, "invalid_request",
     "missing required field 'messages'"),
    ("empty messages", {"json": {"model": "gpt-mock", "messages": []}}, 400,
     "invalid_request", "non-empty array"),
    ("missing model", {"json": {"messages": MSGS}}, 400, "invalid_request",
     "missing required field 'model'"),
    ("unknown model", {"json": {"model": "gpt-nope", "messages": MSGS}}, 404,
     "model_not_found", "model 'gpt-nope' is not configured"),
    ("too large", {"json": {"model": "gpt-mock", "messages": [{"role": "user",
     "content": "x" * 5000}]}}, 413, "request_too_large", "this gateway accepts 4096"),
    ("upstream down", {"json": {"model": "gpt-down", "messages": MSGS}}, 502,
     "upstream_unreachable", "cannot connect to provider 'down'"),
    ("upstream 500", {"json": {"model": "gpt-500", "messages": MSGS}}, 502,
     "upstream_error", "returned HTTP 500"),
    ("upstream 503", {"json": {"model": "gpt-503", "messages": MSGS}}, 503,
     "upstream_unavailable", "returned HTTP 503"),
    ("upstream 400", {"json": {"model": "gpt-400", "messages": MSGS}}, 400,
     "upstream_rejected_request", "returned HTTP 400"),
    ("upstream timeout", {"json": {"model": "gpt-hang", "messages": MSGS}}, 504,
     "upstream_timeout", "did not answer within 0.5s"),
    ("upstream reset", {"json": {"model": "gpt-reset", "messages": MSGS}}, 502,
     "upstream_connection_lost", "dropped the connection"),
    ("upstream invalid json", {"json": {"model": "gpt-badjson", "messages": MSGS}}, 502,
     "upstream_invalid_response", "returned invalid JSON"),
    ("bad stream flag", {"json": {"model": "gpt-mock", "messages": MSGS, "stream": "yes"}},
     400, "invalid_request", "'stream' must be a boolean"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kwargs", "status", "code", "text"), CASES, ids=[c[0] for c in CASES]
)
def test_openai_endpoint_errors(
    running: Running, name: str, kwargs: dict[str, Any], status: int, code: str, text: str
) -> None:
    resp = post(running, "/v1/chat/completions", **kwargs)
    assert_openai_error(resp, status, code, text)
    assert_recorded(running, resp, status, code)


def test_upstream_429_keeps_retry_after(running: Running) -> None:
    resp = post(running, "/v1/chat/completions", json={"model": "gpt-429", "messages": MSGS})
    assert_openai_error(resp, 429, "upstream_rate_limited", "returned HTTP 429")
    assert resp.headers["retry-after"] == "1"
    assert_recorded(running, resp, 429, "upstream_rate_limited")


@pytest.mark.parametrize(
    ("headers", "code", "text"),
    [
        ({}, "missing_api_key", "missing API key"),
        ({"authorization": "Bearer tt-not-a-real-key"}, "invalid_api_key", "invalid API key"),
        ({"x-api-key": "tt-not-a-real-key"}, "invalid_api_key", "invalid API key"),
    ],
)
def test_keys_are_required(running: Running, headers: dict[str, str], code: str, text: str) -> None:
    resp = post(
        running,
        "/v1/chat/completions",
        json={"model": "gpt-mock", "messages": MSGS},
        headers=headers,
    )
    assert_openai_error(resp, 401, code, text)
    assert_recorded(running, resp, 401, code)


def test_viewer_key_may_not_call_models(running: Running) -> None:
    resp = post(
        running,
        "/v1/chat/completions",
        json={"model": "gpt-mock", "messages": MSGS},
        headers={"authorization": f"Bearer {VIEWER_KEY}"},
    )
    assert_openai_error(resp, 403, "forbidden", "role 'viewer' may not call models")


def test_errors_raise_the_right_openai_sdk_exceptions(running: Running) -> None:
    c = openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="gpt-nope", messages=MSGS)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="gpt-429", messages=MSGS)  # type: ignore[arg-type]
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="gpt-500", messages=MSGS)  # type: ignore[arg-type]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=running.url + "/v1", api_key="tt-wrong-000", max_retries=0
        ).models.list()


def test_stream_cut_mid_way_ends_with_an_error_event(running: Running) -> None:
    c = openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)
    raw = c.chat.completions.with_raw_response.create(
        model="gpt-cut",
        messages=MSGS,  # type: ignore[arg-type]
        stream=True,
    )
    got = []
    with pytest.raises(openai.APIError) as info:
        for chunk in raw.parse():
            got.append(chunk)
    assert got, "the chunks sent before the cut reach the client"
    assert "cut the stream" in str(info.value.message)
    rid = raw.headers["x-trimtab-request-id"]
    row = stored(running, rid)
    assert row["streamed"]
    assert row["status_code"] == 502
    assert row["error_type"] == "upstream_connection_lost"
    # no usage chunk ever came: what was sent is charged on an estimate, and says so
    assert row["input_tokens"] and row["output_tokens"]
    assert row["cost_usd"] is not None
    assert row["attributes"]["usage_estimated"] is True


def test_stream_cut_reaches_the_anthropic_client_as_an_error(running: Running) -> None:
    c = anthropic.Anthropic(base_url=running.url, api_key=APP_KEY, max_retries=0)
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        c.messages.stream(
            model="claude-cut", max_tokens=64, messages=[{"role": "user", "content": "a b c d"}]
        ) as stream,
    ):
        for _ in stream.text_stream:
            pass
    assert "cut the stream" in str(info.value)


def test_streaming_request_to_a_failing_upstream_gets_a_plain_error(running: Running) -> None:
    """Before the first byte the status can still say what happened."""
    resp = post(
        running,
        "/v1/chat/completions",
        json={"model": "gpt-500", "messages": MSGS, "stream": True},
    )
    assert_openai_error(resp, 502, "upstream_error", "returned HTTP 500")
    assert_recorded(running, resp, 502, "upstream_error")


@pytest.mark.parametrize(
    ("body", "status", "etype", "text"),
    [
        (b"{", 400, "invalid_request_error", "not valid JSON"),
        (b'{"model": "claude-mock", "messages": [{"role": "user", "content": "x"}]}', 400,
         "invalid_request_error", "missing required field 'max_tokens'"),
        (b'{"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}',
         404, "not_found_error", "model 'nope' is not configured"),
        (b'{"model": "claude-500", "max_tokens": 5, "messages": [{"role": "user", '
         b'"content": "x"}]}', 502, "api_error", "returned HTTP 500"),
        (b"{" + b" " * 5000 + b"}", 413, "request_too_large", "this gateway accepts 4096"),
    ],
)  # fmt: skip
def test_anthropic_endpoint_errors(
    running: Running, body: bytes, status: int, etype: str, text: str
) -> None:
    resp = post(running, "/v1/messages", content=body, headers={"x-api-key": APP_KEY})
    assert resp.status_code == status
    data = resp.json()
    rid = resp.headers["x-trimtab-request-id"]
    assert data["type"] == "error"
    assert data["error"]["type"] == etype
    assert text in data["error"]["message"]
    assert data["request_id"] == rid
    row = stored(running, rid)
    assert row["status_code"] == status and row["api"] == "anthropic"


def test_embeddings_on_an_anthropic_model_is_refused(running: Running) -> None:
    resp = post(running, "/v1/embeddings", json={"model": "claude-mock", "input": "x"})
    assert_openai_error(resp, 400, "unsupported_operation", "has no embeddings endpoint")
    assert_recorded(running, resp, 400, "unsupported_operation")


# -- failures nothing anticipated ----------------------------------------------------------

CORRUPT_DB = 13  # a Redis database of this test's own: it corrupts every cache entry in it


@pytest.fixture
def cached(gateway: GatewayFactory, upstream: MockUpstream, redis_server: RedisServer) -> Running:
    """Cached models whose answers live in a real Redis, which the test can corrupt."""
    Redis.from_url(redis_url(redis_server)).flushdb()
    models = base_config(upstream.url, "sqlite://", Path("unused"))["models"]
    models["cached"] = {"provider": "upstream", "model": "mock-1", "cache": {"ttl_s": 600}}
    models["cached-claude"] = {"provider": "claude", "model": "claude-x", "cache": {"ttl_s": 600}}
    return gateway(keys=KEYS, models=models, state={"url": redis_url(redis_server)})


def redis_url(server: RedisServer) -> str:
    return server.url.rsplit("/", 1)[0] + f"/{CORRUPT_DB}"


def corrupt_cache(server: RedisServer, at_least: int) -> None:
    """Overwrite every cached answer with bytes that are not one (as a gateway of another
    version, or an operator's mistake, could leave), once `at_least` have been written."""
    client = Redis.from_url(redis_url(server))
    deadline = time.monotonic() + 10
    while len(keys := list(client.scan_iter("trimtab:cache:*"))) < at_least:
        assert time.monotonic() < deadline, "the cache was never written"
        time.sleep(0.02)
    for key in keys:
        client.set(key, b"\x00 not a cached answer", keepttl=True)


def raw_post(
    conn: http.client.HTTPConnection, path: str, body: dict[str, Any], **headers: str
) -> tuple[int, dict[str, str], Any]:
    conn.request("POST", path, orjson.dumps(body), {"content-type": "application/json", **headers})
    resp = conn.getresponse()
    data = orjson.loads(resp.read())
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def test_an_internal_failure_is_a_recorded_500_in_the_callers_format_on_a_kept_connection(
    cached: Running, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    openai_body = {"model": "cached", "messages": [{"role": "user", "content": "corrupt me"}]}
    claude_body = {"model": "cached-claude", "max_tokens": 9, "messages": MSGS}
    host, port = cached.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        assert raw_post(conn, "/v1/chat/completions", openai_body, **AUTH)[0] == 200
        assert raw_post(conn, "/v1/messages", claude_body, **{"x-api-key": APP_KEY})[0] == 200
        corrupt_cache(redis_server, at_least=2)

        status, headers, data = raw_post(conn, "/v1/chat/completions", openai_body, **AUTH)
        assert status == 500
        rid = headers["x-trimtab-request-id"]
        assert data["error"]["code"] == "internal_error" and data["error"]["request_id"] == rid
        assert data["error"]["message"] == (
            "internal error (JSONDecodeError); the gateway's log has the details "
            f"(request id: {rid})"
        )
        assert headers.get("connection") != "close"
        row = stored(cached, rid)
        assert (row["status_code"], row["error_type"]) == (500, "internal_error")
        assert row["api"] == "openai" and row["request_model"] == "cached"

        # the same connection carries the next request: a 500 does not close it
        status, headers, data = raw_post(
            conn, "/v1/messages", claude_body, **{"x-api-key": APP_KEY}
        )
        assert status == 500
        rid2 = headers["x-trimtab-request-id"]
        assert data["type"] == "error" and data["error"]["type"] == "api_error"
        assert data["request_id"] == rid2 and rid2 in data["error"]["message"]
        row = stored(cached, rid2)
        assert (row["status_code"], row["error_type"], row["api"]) == (
            500,
            "internal_error",
            "anthropic",
        )

        fresh = {"model": "gpt-mock", "messages": MSGS}
        assert raw_post(conn, "/v1/chat/completions", fresh, **AUTH)[0] == 200
    finally:
        conn.close()
    # the traceback is logged once per failure, at ERROR
    logged = [r for r in caplog.records if r.levelname == "ERROR" and rid in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/v1/messages", {}, 405),
        ("POST", "/v1/messages/batches", {}, 404),
        ("POST", "/v1/messages/count_tokens", {}, 404),
        ("GET", "/v1/nothing-here", {"anthropic-version": "2023-06-01"}, 404),
    ],
)
def test_every_error_under_messages_is_anthropic_shaped(
    running: Running, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    resp = httpx.request(method, running.url + path, headers={"x-api-key": APP_KEY, **headers})
    assert resp.status_code == status
    data = resp.json()
    rid = resp.headers["x-trimtab-request-id"]
    assert data["type"] == "error" and data["request_id"] == rid
    assert data["error"]["type"] == error_type(status, "anthropic")
    assert data["error"]["message"] == f"{method} {path}: {resp.reason_phrase} (request id: {rid})"


def test_an_unknown_openai_path_stays_openai_shaped(running: Running) -> None:
    resp = httpx.get(running.url + "/v1/nothing-here", headers=AUTH)
    assert_openai_error(resp, 404, "not_found", "GET /v1/nothing-here: Not Found")
