"""GET /api/openapi.json: a valid OpenAPI 3.1 document of exactly the app's /api routes,
and schemathesis against it on a real server, once per role: no 5xx, no response that
breaks the document (its status, content type and schema)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from tests.support import ADMIN_KEY, APP_KEY, KEYS, VIEWER_KEY, GatewayFactory, Running

OPERATOR_KEY = "tt-operator-acme-0002"
OPENAPI_KEYS = [
    *KEYS,
    {"key": OPERATOR_KEY, "tenant": "acme", "role": "operator", "owner": "release@acme"},
]
ROLE_KEYS = {"admin": ADMIN_KEY, "operator": OPERATOR_KEY, "viewer": VIEWER_KEY, "app": APP_KEY}
# per operation: about 400 calls for an admin, who reaches every handler; the other roles
# are refused most writes before a handler runs (their permissions are the isolation
# matrix's, tests/api/test_keys_api.py), so fewer of their cases find anything new
MAX_EXAMPLES = {"admin": 15, "operator": 6, "viewer": 6, "app": 6}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ROUTES_V1 = """
routes:
  r1:
    owner: ops@acme
    risk_tier: 1
    version:
      model: gpt-mock
      params: {temperature: 0.2}
      messages:
        - {role: system, content: "Answer {{q}}"}
"""
ROUTES_V2 = ROUTES_V1.replace("0.2", "0.4")


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def document(running: Running) -> dict[str, Any]:
    response = httpx.get(f"{running.url}/api/openapi.json")  # no key: it holds no data
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    doc: dict[str, Any] = orjson.loads(response.content)
    return doc


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}


def test_the_document_is_openapi_31_of_exactly_the_apps_api_routes(
    gateway: GatewayFactory,
) -> None:
    running = gateway(keys=OPENAPI_KEYS)
    doc = document(running)
    validate(doc)  # raises on anything OpenAPI 3.1 does not allow
    assert doc["openapi"] == "3.1.0"
    served = {
        (method, route.path)
        for route in running.server_app.routes
        if isinstance(route, Route) and route.path.startswith("/api/")
        for method in route.methods or ()
        if method != "HEAD"  # Starlette adds HEAD to every GET
    }
    assert served == operations(doc)
    assert len(served) >= 26
    ops = [op for item in doc["paths"].values() for op in item.values()]
    assert len({op["operationId"] for op in ops}) == len(ops)
    for op in ops:
        roles = op["x-roles"]
        assert set(roles) <= {"admin", "operator", "viewer", "app"}
        assert op["security"] == ([] if not roles else [{"bearer": []}, {"apiKey": []}])
        error = {"$ref": "#/components/schemas/ErrorBody"}
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == error
        if roles:
            assert {"401", "403", "503"} <= set(op["responses"]), op["operationId"]
    assert doc["paths"]["/api/openapi.json"]["get"]["security"] == []
    assert "413" in doc["paths"]["/api/routes/apply"]["post"]["responses"]
    assert doc["paths"]["/api/audit"]["get"]["x-roles"] == ["admin"]
    assert doc["paths"]["/api/feedback"]["post"]["x-roles"] == [
        "admin",
        "app",
        "operator",
        "viewer",
    ]


def test_a_declared_parameter_is_described_as_the_handler_reads_it(
    gateway: GatewayFactory,
) -> None:
    running = gateway(keys=OPENAPI_KEYS)
    doc = document(running)
    params = {p["name"]: p for p in doc["paths"]["/api/requests"]["get"]["parameters"]}
    assert params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 50,
    }
    # the bound the document states is the one the handler enforces
    response = httpx.get(
        f"{running.url}/api/requests", params={"limit": "1001"}, headers=bearer(ADMIN_KEY)
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("limit: 1001 is outside 1..1000")
    body = doc["components"]["schemas"]["KeyCreate"]
    fields = ["tenant", "role", "owner", "name", "expires_at", "expires_in"]
    assert list(body["properties"]) == fields
    assert body["required"] == ["tenant", "role", "owner"]


def seed(running: Running) -> dict[str, str]:
    """A route with two versions and a rollout, a recorded request, a stored key, a
    dataset with two versions and a complete eval run of it: so that the generated calls
    also reach things that exist, not only 404s."""
    url, admin = running.url, bearer(ADMIN_KEY)
    for text in (ROUTES_V1, ROUTES_V2):
        r = httpx.post(
            f"{url}/api/routes/apply", json={"yaml": text, "message": "seed"}, headers=admin
        )
        assert r.status_code == 200, r.text
    r = httpx.post(f"{url}/api/routes/r1/rollouts", json={"to": "v2"}, headers=admin)
    assert r.status_code == 201, r.text
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "gpt-mock", "messages": [{"role": "user", "content": "hi"}]},
        headers=bearer(APP_KEY),
    )
    assert r.status_code == 200, r.text
    request_id = r.headers["x-trimtab-request-id"]
    assert running.wait_for_rows(1) >= 1
    r = httpx.post(
        f"{url}/api/keys",
        json={"tenant": "acme", "role": "viewer", "owner": "seed@acme"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    key_id = r.json()["id"]
    for content in ('{"id": "a", "variables": {"q": "1"}}', '{"id": "a", "variables": {"q": "2"}}'):
        pushed = httpx.post(
            f"{url}/api/datasets/d1/versions",
            json={"format": "jsonl", "content": content, "message": "seed"},
            headers=admin,
        )
        assert pushed.status_code == 200, pushed.text
    suite = {"model": "gpt-mock", "dataset": "d1", "scorers": [{"name": "j", "kind": "is_json"}]}
    made = httpx.post(
        f"{url}/api/evals/runs", json={"suite": "s1", "definition": suite}, headers=admin
    )
    assert made.status_code == 201, made.text
    run_id = made.json()["id"]
    result = {"item_id": "a", "request_digest": "0" * 64, "output": "{}", "scores": {}}
    result["scores"] = {"j": {"value": 1.0, "passed": True, "reason": "is JSON"}}
    recorded = httpx.post(
        f"{url}/api/evals/runs/{run_id}/results", json={"results": [result]}, headers=admin
    )
    assert recorded.status_code == 200, recorded.text
    return {
        "run": run_id,
        "dataset": "d1",
        "route": "r1",
        "number": "v1",
        "version": "2",
        "request_id": request_id,
        "key_id": key_id,
    }


# every role on SQLite; PostgreSQL, the stricter store (it refuses a NUL in text), as admin
@pytest.mark.parametrize(
    ("store_url", "role"),
    [*(("sqlite", role) for role in ROLE_KEYS), ("postgresql", "admin")],
    indirect=["store_url"],
)
def test_schemathesis_finds_no_server_error_and_no_response_off_the_document(
    gateway: GatewayFactory, store_url: str, role: str
) -> None:
    running = gateway(store=store_url, keys=OPENAPI_KEYS)
    known = seed(running)
    doc = document(running)  # as served; from_url would leave out the document's own path
    schema = schemathesis.openapi.from_dict(doc)
    headers = bearer(ROLE_KEYS[role])
    ops = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation of the document loads
        ops.append(result.ok())
    assert len(ops) == len(operations(doc))
    tested: Counter[str] = Counter()
    for op in ops:
        names = {p.name for p in op.path_parameters}
        fixed = {name: value for name, value in known.items() if name in names}
        strategy = st.one_of(
            op.as_strategy(GenerationMode.POSITIVE),
            op.as_strategy(GenerationMode.NEGATIVE),
            *([op.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed)] if fixed else []),
        )
        tested[op.label] = exercise(strategy, running.url, headers, MAX_EXAMPLES[role])
    assert len(tested) == len(ops)
    assert all(tested.values()), tested  # every operation of the document was called


UNPARSED = "Invalid HTTP request received."  # uvicorn's answer to a request it cannot parse


def exercise(
    strategy: st.SearchStrategy[schemathesis.Case[Any]],
    url: str,
    headers: dict[str, str],
    examples: int,
) -> int:
    """Call the server with up to `examples` cases of `strategy` (deterministic); the checks raise
    on the first failure. The number of calls made."""
    calls = 0

    @given(case=strategy)
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case[Any]) -> None:
        nonlocal calls
        response = case.call(base_url=url, headers=headers, timeout=30)
        calls += 1
        if response.status_code == 400 and response.text == UNPARSED:
            # framing the HTTP parser refuses (a generated empty Content-Length header, say)
            # is answered by uvicorn before any of trimtab runs: there is no API to speak
            return
        case.validate_response(response, checks=CHECKS, headers=headers)

    call()
    return calls


def test_two_different_shapes_of_one_name_are_refused() -> None:
    """A response schema is a named component: a second shape of the same name would
    silently answer for the first (two `ForecastView`s did, once)."""
    from typing_extensions import TypedDict

    from trimtab.api.openapi import Components

    def shape(extra: bool) -> type[Any]:
        if extra:

            class Twin(TypedDict):
                a: int
                b: str

        else:

            class Twin(TypedDict):  # type: ignore[no-redef]
                a: int

        return Twin

    components = Components()
    components.ref(shape(False))
    components.ref(shape(False))  # the same shape again is one component
    with pytest.raises(ValueError, match="two different schemas are named Twin"):
        components.ref(shape(True))
