"""Every /api body has a bound: its size, its nesting, and each stored free-text field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.support import ADMIN, ROUTES
from tests.support import APP_KEY, KEYS, GatewayFactory, Running
from trimtab.api.params import MAX_BODY_BYTES, MAX_TEXT
from trimtab.bounds import MAX_DEPTH

# the POSTs that once read any size (a 50 MB feedback comment was stored with 201)
POSTS = [
    "/api/feedback",
    "/api/routes/r1/rollback",
    "/api/routes/r1/versions/1/attestations",
    "/api/routes/r1/rollouts",
    "/api/routes/r1/rollout/pause",
    "/api/keys",
]


@pytest.fixture
def running(gateway: GatewayFactory) -> Running:
    return gateway(keys=KEYS)


@pytest.fixture
def api(running: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url, headers=ADMIN, timeout=30) as client:
        applied = client.post("/api/routes/apply", json={"message": "m", "routes": ROUTES})
        assert applied.status_code == 200, applied.text
        yield client


def assert_api_error(resp: httpx.Response, status: int, code: str, message: str) -> None:
    assert resp.status_code == status, resp.text
    rid = resp.headers["x-trimtab-request-id"]
    error = resp.json()["error"]
    assert (error["code"], error["request_id"]) == (code, rid)
    assert error["message"] == f"{message} (request id: {rid})"


@pytest.mark.parametrize("path", POSTS)
def test_a_body_over_the_limit_is_a_413(api: httpx.Client, path: str) -> None:
    body = b'{"reason": "' + b"x" * MAX_BODY_BYTES + b'"}'
    resp = api.post(path, content=body, headers={"content-type": "application/json"})
    assert_api_error(
        resp,
        413,
        "request_too_large",
        f"request body is {len(body)} bytes; this gateway accepts {MAX_BODY_BYTES}",
    )


def test_a_chunked_body_is_cut_off_at_the_limit(api: httpx.Client) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:  # no content-length: the reader counts as it goes
        nonlocal sent
        yield b'{"request_id": "req_x", "thumbs": "up", "comment": "'
        for _ in range(50 * 1024):  # 50 MB, if the server kept reading
            sent += 1
            yield b"x" * 1024
        yield b'"}'

    resp = api.post("/api/feedback", content=chunks())
    assert_api_error(
        resp,
        413,
        "request_too_large",
        f"request body is more than {MAX_BODY_BYTES} bytes; this gateway accepts {MAX_BODY_BYTES}",
    )


@pytest.mark.parametrize("path", POSTS)
def test_a_body_nested_too_deep_is_a_400(api: httpx.Client, path: str) -> None:
    deep = "[" * (MAX_DEPTH) + "]" * (MAX_DEPTH)
    resp = api.post(path, content='{"reason": ' + deep + "}")
    assert_api_error(resp, 400, "invalid_request", f"the body nests deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        ("/api/feedback", "comment", {"request_id": "req_x", "thumbs": "up"}),
        ("/api/routes/r1/rollback", "reason", {}),
        ("/api/routes/r1/versions/1/attestations", "note", {"kind": "eval", "result": "pass"}),
        ("/api/routes/r1/rollout/pause", "reason", {}),
    ],
)
def test_a_stored_text_over_its_limit_is_a_400_naming_the_field(
    api: httpx.Client, path: str, field: str, body: dict[str, Any]
) -> None:
    resp = api.post(path, json={**body, field: "y" * (MAX_TEXT + 1)})
    assert_api_error(
        resp,
        400,
        "invalid_parameter",
        f"{field}: is {MAX_TEXT + 1} characters; at most {MAX_TEXT} are accepted",
    )
    assert resp.json()["error"]["param"] == field


def test_feedback_with_a_comment_at_the_limit_is_stored(
    running: Running, api: httpx.Client
) -> None:
    chat = httpx.post(
        running.url + "/v1/chat/completions",
        json={"model": "gpt-mock", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {APP_KEY}"},
        timeout=30,
    )
    rid = chat.headers["x-trimtab-request-id"]
    running.wait_for_rows(1)
    comment = "z" * MAX_TEXT
    resp = api.post("/api/feedback", json={"request_id": rid, "thumbs": "down", "comment": comment})
    assert resp.status_code == 201, resp.text
