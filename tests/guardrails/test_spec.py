"""A guardrail policy is declared data: parsed strictly, refused at apply time naming the key,
and part of a route version (a change of guardrails is a new digest)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from trimtab.config import ConfigError, parse_config
from trimtab.registry.bundle import Bundle
from trimtab.registry.diff import diff_bundles
from trimtab.registry.spec import RoutesError, parse_routes

ROUTE: dict[str, Any] = {
    "owner": "support-ml@acme.example",
    "risk_tier": 2,
    "version": {"model": "gpt-mock", "messages": [{"role": "user", "content": "{{q}}"}]},
}


def route_with(guardrails: Any) -> dict[str, Any]:
    route = copy.deepcopy(ROUTE)
    route["version"]["guardrails"] = guardrails
    return {"routes": {"support-answer": route}}


def problems(guardrails: Any) -> list[str]:
    with pytest.raises(RoutesError) as info:
        parse_routes(route_with(guardrails), "routes.yaml")
    return info.value.problems


def test_guardrails_are_part_of_the_version_digest() -> None:
    plain = parse_routes({"routes": {"support-answer": ROUTE}})[0].bundle
    guarded = parse_routes(route_with({"input": {"pii": {"action": "redact"}}}))[0].bundle
    blocking = parse_routes(route_with({"input": {"pii": {"action": "block"}}}))[0].bundle
    assert len({plain.digest, guarded.digest, blocking.digest}) == 3
    assert "guardrails" not in plain.to_json()  # versions without guardrails keep their digest
    again = Bundle.from_json(guarded.to_json())
    assert again.digest == guarded.digest and again.guardrails == guarded.guardrails


def test_the_issue_example_parses() -> None:
    policy = {
        "input": {
            "pii": {"action": "redact", "entities": ["email", "phone", "credit_card", "iban"]},
            "injection": {"action": "block"},
            "max_input_tokens": 8000,
            "deny": ["(?i)ignore (all|previous) instructions"],
        },
        "output": {
            "pii": {"action": "redact"},
            "json_schema": {"schema": {"type": "object"}, "on_fail": "retry_once"},
            "deny": ["(?i)as an ai language model"],
        },
        "session": {"max_requests": 200, "max_cost_usd": 2.0, "max_identical_calls": 5},
    }
    bundle = parse_routes(route_with(policy))[0].bundle
    assert bundle.guardrails is not None
    assert bundle.guardrails["output"]["json_schema"]["schema"] == {"type": "object"}


@pytest.mark.parametrize(
    ("guardrails", "expected"),
    [
        (
            {"input": {"pii": {"entities": ["email", "name"]}}},
            "routes.yaml: routes.support-answer.version.guardrails.input.pii: "
            "entities[1]: unknown entity 'name'",
        ),
        (
            {"input": {"deny": ["fine", "(unclosed"]}},
            "routes.yaml: routes.support-answer.version.guardrails.input: "
            "deny[1]: invalid regex '(unclosed'",
        ),
        (
            {"output": {"deny": ["[a-"]}},
            "routes.yaml: routes.support-answer.version.guardrails.output: deny[0]: invalid regex",
        ),
        (
            {"output": {"json_schema": {"schema": {"type": "objekt"}}}},
            "routes.yaml: routes.support-answer.version.guardrails.output.json_schema: "
            "schema: invalid JSON Schema at type",
        ),
        (
            {"output": {"json_schema": {"schema": {}, "on_fail": "retry_twice"}}},
            "routes.yaml: routes.support-answer.version.guardrails.output.json_schema.on_fail",
        ),
        ({"input": {"injection": {"action": "redact"}}}, "guardrails.input.injection.action"),
        (
            {"output": {"pii": {"regions": ["US", "uk"]}}},
            "guardrails.output.pii: regions[1]: 'uk' is not a region code",
        ),
        ({"mode": "dry-run"}, "routes.support-answer.version.guardrails.mode"),
        ({"session": {"max_requests": 0}}, "guardrails.session.max_requests"),
        ({"inputs": {}}, "routes.support-answer.version.guardrails.inputs: unknown key"),
    ],
)
def test_bad_policies_are_refused_naming_the_key(guardrails: Any, expected: str) -> None:
    found = problems(guardrails)
    assert any(expected in line for line in found), found


def test_the_gateway_default_is_parsed_as_strictly() -> None:
    config = parse_config({"guardrails": {"mode": "shadow", "input": {"pii": {}}}})
    assert config.guardrails.mode == "shadow"
    assert config.guardrails.input is not None and config.guardrails.input.pii is not None
    assert config.guardrails.input.pii.entities is None  # every structured type
    with pytest.raises(ConfigError, match=r"t.yaml: guardrails.output: deny\[0\]: invalid regex"):
        parse_config({"guardrails": {"output": {"deny": ["(("]}}}, "t.yaml")
    assert parse_config({}).guardrails.input is None  # no policy by default


def test_a_change_of_guardrails_shows_in_the_diff_of_two_versions() -> None:
    before = parse_routes(route_with({"input": {"pii": {"action": "flag"}}}))[0].bundle
    after = parse_routes(route_with({"input": {"pii": {"action": "block"}}}))[0].bundle
    diff = diff_bundles(before, after, "v1", "v2")
    assert not diff.identical and diff.model is None and not diff.params
    assert [(c.name, c.change) for c in diff.guardrails] == [("input", "changed")]
    assert "guardrails:\n  ~ input: " in diff.unified()
    assert diff_bundles(after, after).identical
