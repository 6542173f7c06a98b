"""storage.bodies as the policy applies it to one record (privacy/storage.py)."""

from __future__ import annotations

import orjson
import pytest

from tests.privacy.support import CARD, HASH_KEY, KEY, planted
from trimtab.config import StorageConfig
from trimtab.privacy.storage import BodyPolicy, body_policy, strictest
from trimtab.telemetry.record import RequestRecord


def record(text: str, *, tenant: str = "acme", route: str | None = None) -> RequestRecord:
    request = {"model": "gpt-mock", "messages": [{"role": "user", "content": text}]}
    answer = {"id": "c1", "choices": [{"message": {"role": "assistant", "content": text}}]}
    return RequestRecord(
        id="req_1",
        started_at=0.0,
        api="openai",
        operation="chat",
        tenant=tenant,
        route=route,
        request_body=orjson.dumps(request).decode(),
        upstream_request_body=orjson.dumps({**request, "model": "mock-1"}).decode(),
        response_body=orjson.dumps(answer).decode(),
        error_message=f"upstream said: bad input {text}",
        attributes={"attempts": [{"model": "gpt-mock", "error": f"400: {text}"}], "n": 1},
    )


def everything(r: RequestRecord) -> str:
    return orjson.dumps(r).decode()


def test_redacted_is_the_default_and_keeps_json_and_one_placeholder_per_value() -> None:
    email, text = planted()
    r = record(text)
    body_policy(StorageConfig()).scrub(r)
    dumped = everything(r)
    assert email not in dumped and CARD not in dumped and KEY not in dumped
    assert r.request_body is not None and r.response_body is not None
    content = orjson.loads(r.request_body)["messages"][0]["content"]
    assert content == "<EMAIL_1> paid with <CREDIT_CARD_1> using key <API_KEY_1> please refund"
    answer = orjson.loads(r.response_body)["choices"][0]["message"]["content"]
    assert answer == content  # the same value, the same placeholder, across the bodies
    assert orjson.loads(r.request_body)["model"] == "gpt-mock"
    assert r.error_message is not None and "<EMAIL_1>" in r.error_message
    assert r.attributes is not None and r.attributes["n"] == 1


def test_full_keeps_everything() -> None:
    email, text = planted()
    r = record(text)
    before = everything(r)
    body_policy(StorageConfig(bodies="full")).scrub(r)
    assert everything(r) == before and email in before


def test_none_keeps_no_bodies_and_redacts_the_errors() -> None:
    email, text = planted()
    r = record(text)
    body_policy(StorageConfig(bodies="none")).scrub(r)
    assert (r.request_body, r.upstream_request_body, r.response_body) == (None, None, None)
    assert email not in everything(r)


def test_hashed_keeps_structure_and_a_keyed_hash_of_each_text() -> None:
    email, text = planted()
    policy = body_policy(StorageConfig(bodies="hashed", hash_key=HASH_KEY))
    a, b = record(text), record(text)
    policy.scrub(a)
    policy.scrub(b)
    assert email not in everything(a) and CARD not in everything(a)
    assert a.request_body is not None and a.response_body is not None
    request = orjson.loads(a.request_body)
    message = request["messages"][0]
    assert message["role"] == "user" and request["model"] == "gpt-mock"
    assert message["content"].startswith("hmac-sha256:") and len(message["content"]) == 76
    assert a.request_body == b.request_body  # identical bodies deduplicate
    other = body_policy(StorageConfig(bodies="hashed", hash_key="another-key-of-16+chars"))
    c = record(text)
    other.scrub(c)
    assert c.request_body != a.request_body  # keyed: not a plain SHA-256


def test_a_body_that_is_not_json_is_scrubbed_as_text() -> None:
    email, text = planted()
    r = record(text)
    r.request_body = "{not json " + text
    body_policy(StorageConfig()).scrub(r)
    assert r.request_body is not None and email not in r.request_body
    assert r.request_body.startswith("{not json <EMAIL_1>")


def test_the_strictest_of_tenant_and_route_applies() -> None:
    config = StorageConfig(
        bodies="full",
        hash_key=HASH_KEY,
        tenants={"acme": {"bodies": "hashed"}, "globex": {"bodies": "full"}},  # type: ignore[dict-item]
    )
    routes = {("globex", "faq"): "none", ("acme", "faq"): "redacted"}
    policy = body_policy(config, lambda tenant, route: routes.get((tenant, route)))  # type: ignore[arg-type,return-value]
    assert policy.mode("acme", None) == "hashed"
    assert policy.mode("acme", "faq") == "hashed"  # the tenant's is stricter
    assert policy.mode("globex", "faq") == "none"  # the route's is stricter
    assert policy.mode("globex", None) == "full"
    assert policy.mode("initech", None) == "full"  # the gateway's
    assert strictest(None, None) is None


def test_hashed_needs_a_key_of_16_characters() -> None:
    with pytest.raises(ValueError, match=r"storage.hash_key: required by storage.tenants.acme"):
        StorageConfig(tenants={"acme": {"bodies": "hashed"}})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="at least 16 characters"):
        StorageConfig(bodies="hashed", hash_key="short")


def test_a_redactor_that_raises_keeps_nothing_and_says_why() -> None:
    """A detector's bug must not cost the record, nor let its text through (fail closed)."""
    email, text = planted()

    def broken(value: str) -> str:
        raise RuntimeError(f"cannot scan {value}")

    policy = BodyPolicy(StorageConfig(), broken)
    r = record(text)
    policy.scrub(r)
    assert email not in everything(r)
    assert (r.request_body, r.upstream_request_body, r.response_body) == (None, None, None)
    assert r.error_message == "(not kept: scrubbing failed with RuntimeError)"
    assert r.attributes is not None
    assert r.attributes["storage"] == {
        "bodies_dropped": "(not kept: scrubbing failed with RuntimeError)"
    }
    assert r.attributes["attempts"][0]["error"].startswith("(not kept")
