"""`resolve_route_request`: a `route:NAME` body becomes a body for the version's model."""

from __future__ import annotations

from typing import Any

import pytest

from trimtab.errors import GatewayError
from trimtab.gateway.route_calls import resolve_route_request
from trimtab.registry.bundle import Bundle, Message
from trimtab.rollouts.table import RouteEntry, RouteTable, Version

BUNDLE = Bundle(
    "gpt-mock",
    {"temperature": 0.2, "max_tokens": 400},
    (
        Message("system", "You are Acme's support assistant. Policy: {{policy}}"),
        Message("user", "{{question}}"),
    ),
)
VARS = {"policy": "refunds within 30 days", "question": "Can I return it?"}


def table(bundle: Bundle = BUNDLE, tenant: str | None = None) -> RouteTable:
    version = Version("support-answer", 3, bundle.digest, bundle)
    entry = RouteEntry("support-answer", tenant, "o@a", 2, version)
    return RouteTable({entry.key: entry})


def resolve(body: dict[str, Any], t: RouteTable | None = None, **kw: Any) -> Any:
    return resolve_route_request(body, t or table(), **kw)


def test_other_models_pass_through_untouched() -> None:
    body = {"model": "gpt-mock", "messages": [], "variables": {"a": 1}}
    out, route, version = resolve(body)
    assert out is body and route is None and version is None


def test_openai_body_is_rendered() -> None:
    body = {
        "model": "route:support-answer",
        "messages": [{"role": "user", "content": "And the receipt?"}],
        "variables": VARS,
        "temperature": 1.5,  # the version sets it: the version wins
        "top_p": 0.9,  # the version does not: the client's stays
        "max_completion_tokens": 5,  # the version's max_tokens replaces it
        "stream": True,
        "user": "u-1",
    }
    out, route, version = resolve(body)
    assert (route, version) == ("support-answer", "v3")
    assert out == {
        "model": "gpt-mock",
        "messages": [
            {"role": "system", "content": "You are Acme's support assistant. "
             "Policy: refunds within 30 days"},
            {"role": "user", "content": "Can I return it?"},
            {"role": "user", "content": "And the receipt?"},
        ],
        "temperature": 0.2,
        "max_tokens": 400,
        "top_p": 0.9,
        "stream": True,
        "user": "u-1",
    }  # fmt: skip
    assert body["model"] == "route:support-answer"  # the client's body is not changed
    assert "variables" in body


def test_messages_are_optional() -> None:
    out, _, _ = resolve({"model": "route:support-answer", "variables": VARS})
    assert [m["role"] for m in out["messages"]] == ["system", "user"]
    out, _, _ = resolve({"model": "route:support-answer", "variables": VARS, "messages": None})
    assert len(out["messages"]) == 2


def test_anthropic_body_gets_a_system_prompt_and_mapped_params() -> None:
    bundle = Bundle(
        "claude-mock",
        {"temperature": 0.2, "max_tokens": 400, "stop": "END"},
        BUNDLE.messages,
    )
    body = {
        "model": "route:support-answer",
        "max_tokens": 50,
        "system": "Answer in French.",
        "messages": [{"role": "user", "content": "Merci"}],
        "variables": VARS,
    }
    out, _, _ = resolve(body, table(bundle), wire="anthropic")
    assert out == {
        "model": "claude-mock",
        "max_tokens": 400,
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "system": "You are Acme's support assistant. Policy: refunds within 30 days\n\n"
        "Answer in French.",
        "messages": [
            {"role": "user", "content": "Can I return it?"},
            {"role": "user", "content": "Merci"},
        ],
    }
    blocks = [{"type": "text", "text": "Answer in French."}]
    out, _, _ = resolve({**body, "system": blocks}, table(bundle), wire="anthropic")
    assert out["system"][0]["type"] == "text"
    assert out["system"][1:] == blocks


def test_anthropic_refuses_params_it_has_no_field_for() -> None:
    bundle = Bundle("gpt-mock", {"seed": 7}, BUNDLE.messages)
    with pytest.raises(GatewayError) as caught:
        resolve(
            {"model": "route:support-answer", "variables": VARS}, table(bundle), wire="anthropic"
        )
    assert caught.value.status == 400
    assert "route 'support-answer' v3 sets 'seed'" in caught.value.message


def test_unknown_route_is_404() -> None:
    with pytest.raises(GatewayError) as caught:
        resolve({"model": "route:nope", "messages": []})
    err = caught.value
    assert (err.status, err.code, err.param) == (404, "route_not_found", "model")
    assert err.message == "route 'nope' is not defined on this gateway (routes: support-answer)"


def test_another_tenants_route_is_404() -> None:
    t = table(tenant="acme")
    body = {"model": "route:support-answer", "variables": VARS}
    assert resolve(body, t, tenant="acme")[1] == "support-answer"
    with pytest.raises(GatewayError) as caught:
        resolve(body, t, tenant="globex")
    assert caught.value.status == 404
    assert caught.value.message.endswith("(routes: none)")


def test_a_missing_variable_is_400_and_named() -> None:
    with pytest.raises(GatewayError) as caught:
        resolve({"model": "route:support-answer", "variables": {"policy": "p"}})
    err = caught.value
    assert (err.status, err.code, err.param) == (400, "invalid_request", "variables.question")
    assert err.message.startswith(
        "route 'support-answer' v3: missing template variable 'question'; send them in the "
        "body field 'variables'"
    )
    with pytest.raises(GatewayError, match="variables 'policy', 'question'"):
        resolve({"model": "route:support-answer"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"variables": ["a"]}, "'variables' must be an object"),
        ({"variables": {**VARS, "policy": None}}, "'policy' must be a string or a number"),
        ({"variables": VARS, "messages": "hi"}, "'messages' must be an array"),
    ],
)
def test_unusable_input_is_400(body: dict[str, Any], message: str) -> None:
    with pytest.raises(GatewayError, match=message) as caught:
        resolve({"model": "route:support-answer", **body})
    assert caught.value.status == 400


def test_the_seam_for_rollouts() -> None:
    t = table()
    assert t.version_for("support-answer", "user-1") is t.version_for("support-answer", None)


def test_a_tenants_own_route_shadows_the_shared_one() -> None:
    shared_bundle = Bundle("gpt-mock", {}, (Message("system", "shared"),))
    own_bundle = Bundle("gpt-mock", {}, (Message("system", "acme's own"),))
    shared = RouteEntry(
        "faq", None, "o@a", 0, Version("faq", 1, shared_bundle.digest, shared_bundle)
    )
    own = RouteEntry("faq", "acme", "o@a", 0, Version("faq", 4, own_bundle.digest, own_bundle))
    t = RouteTable({shared.key: shared, own.key: own})
    body = {"model": "route:faq", "messages": []}
    acme, _, acme_version = resolve(body, t, tenant="acme")
    globex, _, globex_version = resolve(body, t, tenant="globex")
    assert (acme["messages"][0]["content"], acme_version) == ("acme's own", "v4")
    assert (globex["messages"][0]["content"], globex_version) == ("shared", "v1")
    assert t.names("globex") == t.names("acme") == ["faq"]
