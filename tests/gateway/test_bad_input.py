"""Hostile or odd /v1 bodies: a 4xx in the caller's format, never a 500, always a record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import APP_KEY, KEYS, Running, base_config, stored
from trimtab.app import create_app
from trimtab.bounds import MAX_DEPTH
from trimtab.config import parse_config
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.serving import ServerThread

AUTH = {"authorization": f"Bearer {APP_KEY}"}
MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def served(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One gateway for the module: hypothesis runs many examples against it."""
    tmp: Path = tmp_path_factory.mktemp("bad-input")
    data = base_config(upstream.url, f"sqlite:///{tmp}/trimtab.db", tmp / "spill.jsonl")
    data["keys"] = KEYS
    config = parse_config(data, "test-config")
    app = create_app(config)
    server = ServerThread(app).start()
    try:
        yield Running(server=server, config=config, server_app=app)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def http(served: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30, headers=AUTH) as client:
        yield client


def nested(depth: int, leaf: Any = "x") -> Any:
    """`depth` levels of alternating lists and objects around `leaf`."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def nested_json(depth: int) -> bytes:
    """The JSON text of `nested(depth)`, written out: orjson serialises only 255 levels."""
    opens = b"".join(b"[" if i % 2 else b'{"k":' for i in reversed(range(depth)))
    closes = b"".join(b"]" if i % 2 else b"}" for i in range(depth))
    return opens + b'"x"' + closes


def with_deep(body: dict[str, Any], field: str, depth: int) -> bytes:
    """`body` with `field` set to `depth` levels of nesting."""
    return orjson.dumps({**body, field: "@deep@"}).replace(b'"@deep@"', nested_json(depth))


# -- nesting -------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 256, 1000, 1023])
@pytest.mark.parametrize(
    ("path", "model", "extra"),
    [
        ("/v1/chat/completions", "gpt-mock", {}),
        ("/v1/chat/completions", "claude-mock", {}),  # translated to Anthropic's format
        ("/v1/messages", "claude-mock", {"max_tokens": 5}),
        ("/v1/messages", "gpt-mock", {"max_tokens": 5}),
        ("/v1/embeddings", "embed-mock", {}),
    ],
)
def test_a_body_nested_too_deep_is_a_400_naming_the_limit(
    served: Running, http: httpx.Client, path: str, model: str, extra: dict[str, Any], depth: int
) -> None:
    # orjson parses up to 1,024 levels; the depth sits where each path walks the body
    body: dict[str, Any] = {"model": model, **extra}
    if path == "/v1/embeddings":
        raw = with_deep(body, "input", depth - 1)
    else:
        raw = with_deep({**body, "messages": MSGS}, "metadata", depth - 1)
    resp = http.post(path, content=raw)
    assert resp.status_code == 400, resp.text
    rid = resp.headers["x-trimtab-request-id"]
    data = resp.json()
    message = f"the request body nests deeper than {MAX_DEPTH} levels (request id: {rid})"
    if path == "/v1/messages":
        assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
        assert data["error"]["message"] == message
    else:
        assert data["error"]["code"] == "invalid_request"
        assert data["error"]["message"] == message
    row = stored(served, rid)
    assert (row["status_code"], row["error_type"]) == (400, "invalid_request")


def test_a_body_at_the_limit_is_served(http: httpx.Client) -> None:
    body = {"model": "gpt-mock", "messages": MSGS, "metadata": nested(MAX_DEPTH - 1)}
    resp = http.post("/v1/chat/completions", json=body)
    assert resp.status_code == 200, resp.text


# -- token caps ----------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [-1, 0, 1.5, "10", True])
@pytest.mark.parametrize(("path", "model"), [("/v1/chat/completions", "gpt-mock"),
                                             ("/v1/messages", "claude-mock")])  # fmt: skip
def test_a_token_cap_that_is_not_a_positive_integer_is_refused(
    served: Running, http: httpx.Client, path: str, model: str, param: str, value: Any
) -> None:
    body: dict[str, Any] = {"model": model, "messages": MSGS, "max_tokens": 5, param: value}
    resp = http.post(path, json=body)
    assert resp.status_code == 400, resp.text
    rid = resp.headers["x-trimtab-request-id"]
    data = resp.json()
    text = f"'{param}' must be a positive integer, not {value!r}"
    if path == "/v1/messages":
        assert data["type"] == "error" and text in data["error"]["message"]
    else:
        assert data["error"]["param"] == param and text in data["error"]["message"]
    row = stored(served, rid)
    assert (row["status_code"], row["error_type"]) == (400, "invalid_request")


def test_a_positive_token_cap_is_forwarded(http: httpx.Client) -> None:
    body = {"model": "gpt-mock", "messages": MSGS, "max_completion_tokens": 7}
    assert http.post("/v1/chat/completions", json=body).status_code == 200


# -- fuzzing -------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# keys both formats give meaning to, so the fuzzer reaches translation and the policy
FIELDS = [
    "content", "role", "type", "text", "tool_calls", "tool_call_id", "name", "function",
    "arguments", "id", "input", "tool_use_id", "image_url", "url", "source", "is_error",
]  # fmt: skip
TOP = [
    "max_tokens", "max_completion_tokens", "stream", "stream_options", "tools", "tool_choice",
    "system", "stop", "stop_sequences", "metadata", "user", "n", "temperature",
    "response_format", "parallel_tool_calls", "functions", "logprobs", "top_k", "thinking",
]  # fmt: skip
parts = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool", "developer", "x"])},
        optional={
            "content": st.one_of(json_values, st.lists(parts, max_size=3)),
            **{f: json_values for f in ("tool_calls", "tool_call_id", "name")},
        },
    ),
    min_size=1,
    max_size=4,
)
bodies = st.fixed_dictionaries(
    {"messages": messages},
    optional={name: st.one_of(json_values, st.lists(parts, max_size=2)) for name in TOP},
)
targets = st.sampled_from(
    [
        ("/v1/chat/completions", "gpt-mock"),
        ("/v1/chat/completions", "claude-mock"),
        ("/v1/messages", "claude-mock"),
        ("/v1/messages", "gpt-mock"),
    ]
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=targets, body=bodies)
def test_no_json_body_gets_a_500(
    http: httpx.Client, target: tuple[str, str], body: dict[str, Any]
) -> None:
    path, model = target
    resp = http.post(path, json={"model": model, **body})
    assert resp.status_code < 500 or resp.status_code in (502, 503, 504), resp.text
    if resp.headers["content-type"].startswith("text/event-stream"):
        assert resp.status_code == 200  # a body that asked for a stream and was served
        return
    data = resp.json()
    if path == "/v1/messages":
        assert data["type"] == "error" or resp.status_code == 200, data
    elif resp.status_code >= 400:
        assert data["error"]["request_id"] == resp.headers["x-trimtab-request-id"]
