"""The routes API through a real gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import orjson
import pytest

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_OPERATOR_KEY,
    GLOBEX_VIEWER_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    ROUTES,
    V2,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return gateway(store=store_url, keys=ROUTE_KEYS)


def apply(
    running: Running,
    text: str = ROUTES,
    message: str = "launch",
    key: str = OPERATOR_KEY,
    **extra: Any,
) -> httpx.Response:
    body = {"yaml": text, "source": "routes.yaml", "message": message, **extra}
    return httpx.post(running.url + "/api/routes/apply", json=body, headers=auth(key), timeout=10)


def get(running: Running, path: str, key: str = VIEWER_KEY, **params: Any) -> httpx.Response:
    return httpx.get(running.url + path, params=params, headers=auth(key), timeout=10)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]["message"]
    return message


def test_apply_creates_v1_then_nothing_then_v2(running: Running) -> None:
    first = ok(apply(running))
    [r] = first["routes"]
    digest = r["digest"]
    assert {k: r[k] for k in ("route", "status", "version", "parent", "stable_version")} == {
        "route": "support-answer",
        "status": "created",
        "version": 1,
        "parent": None,
        "stable_version": 1,
    }
    assert r["new_route"] is True and r["tenant"] == "acme"
    assert r["variables"] == ["policy", "question"]
    assert len(digest) == 64
    assert first["message"] == "launch"

    [same] = ok(apply(running, message="again"))["routes"]
    assert (same["status"], same["version"], same["digest"]) == ("unchanged", 1, digest)

    [second] = ok(apply(running, V2, "friendlier tone"))["routes"]
    assert (second["status"], second["version"], second["parent"]) == ("created", 2, 1)
    assert second["stable_version"] == 1  # a later version does not replace the stable one


def test_apply_accepts_json_routes(running: Running) -> None:
    routes = {
        "classify": {
            "owner": "a@acme",
            "risk_tier": 0,
            "version": {"model": "sim-1", "messages": [{"role": "user", "content": "{{text}}"}]},
        }
    }
    body = {"routes": routes, "message": "json"}
    response = httpx.post(
        running.url + "/api/routes/apply", json=body, headers=auth(ADMIN_KEY), timeout=10
    )
    [r] = ok(response)["routes"]
    assert (r["route"], r["version"], r["tenant"]) == ("classify", 1, None)


def test_reading_routes_versions_and_a_version(running: Running) -> None:
    ok(apply(running))
    ok(apply(running, V2, "friendlier tone"))
    [route] = ok(get(running, "/api/routes"))["data"]
    assert {k: route[k] for k in ("name", "owner", "risk_tier", "tenant")} == {
        "name": "support-answer",
        "owner": "support-ml@acme.example",
        "risk_tier": 2,
        "tenant": "acme",
    }
    assert (route["stable_version"], route["latest_version"]) == (1, 2)
    assert route["created_by"] == "ml@acme"

    one = ok(get(running, "/api/routes/support-answer"))
    assert one["name"] == "support-answer"
    assert one["stable"]["number"] == 1 and one["stable"]["bundle"]["model"] == "gpt-mock"

    versions = ok(get(running, "/api/routes/support-answer/versions"))["data"]
    assert [(v["version"], v["stable"], v["message"]) for v in versions] == [
        ("v2", False, "friendlier tone"),
        ("v1", True, "launch"),
    ]
    assert all(v["author"] == "ml@acme" for v in versions)
    assert "bundle" not in versions[0]

    for ref in ("2", "v2"):
        v2 = ok(get(running, f"/api/routes/support-answer/versions/{ref}"))
        assert (v2["number"], v2["parent"], v2["stable"]) == (2, 1, False)
        assert v2["bundle"]["params"] == {"temperature": 0.3, "max_tokens": 400}
        assert v2["bundle"]["messages"][0]["role"] == "system"
        assert v2["variables"] == ["policy", "question"]
        canonical = orjson.dumps(v2["bundle"], option=orjson.OPT_SORT_KEYS)
        assert v2["digest"] == hashlib.sha256(canonical).hexdigest()


def test_diff(running: Running) -> None:
    ok(apply(running))
    ok(apply(running, V2, "friendlier tone"))
    d = ok(get(running, "/api/routes/support-answer/diff", **{"from": "1", "to": "2"}))
    assert (d["route"], d["from"], d["to"], d["identical"], d["model"]) == (
        "support-answer", "v1", "v2", False, None
    )  # fmt: skip
    assert d["params"] == [{"name": "temperature", "change": "changed", "from": 0.2, "to": 0.3}]
    [m] = d["messages"]
    assert m["index"] == 0 and m["change"] == "changed"
    assert "-You are Acme's support assistant." in m["diff"]
    assert "+You are Acme's friendly support assistant." in m["diff"]
    assert d["unified"].startswith("params:\n  ~ temperature: 0.2 -> 0.3\n--- v1 messages[0]")
    # defaults: to = the newest version, from = its parent
    assert ok(get(running, "/api/routes/support-answer/diff"))["unified"] == d["unified"]
    same = ok(get(running, "/api/routes/support-answer/diff", **{"from": "v2", "to": "v2"}))
    assert same["identical"] is True


def test_timeline(running: Running) -> None:
    ok(apply(running))
    ok(apply(running, message="no change"))
    ok(apply(running, V2.replace("risk_tier: 2", "risk_tier: 3"), "friendlier", ADMIN_KEY))
    data = ok(get(running, "/api/routes/support-answer/timeline"))
    events = data["data"]
    assert [(e["kind"], e["version"], e["actor"], e["reason"]) for e in events] == [
        ("apply", 1, "ml@acme", "launch"),
        ("apply", 2, "ops@acme", "friendlier"),
    ]
    assert events[1]["detail"]["updated"] == {"risk_tier": [2, 3]}
    assert events[0]["id"] < events[1]["id"] and data["next_after"] is None
    page = ok(get(running, "/api/routes/support-answer/timeline", limit=1))
    assert [e["version"] for e in page["data"]] == [1]
    rest = ok(get(running, "/api/routes/support-answer/timeline", after=page["next_after"]))
    assert [e["version"] for e in rest["data"]] == [2]


def test_every_apply_is_audited(running: Running) -> None:
    ok(apply(running))
    ok(apply(running, message="again"))
    rows = ok(get(running, "/api/audit", ADMIN_KEY, action="route.apply"))["data"]
    assert [(r["target"], r["actor"], r["detail"]["status"]) for r in rows] == [
        ("support-answer", "ml@acme", "unchanged"),
        ("support-answer", "ml@acme", "created"),
    ]
    assert rows[1]["detail"]["message"] == "launch"
    assert rows[1]["tenant"] == "acme" and rows[1]["detail"]["version"] == 1


def test_who_may_write_and_read(running: Running) -> None:
    message = error(apply(running, key=VIEWER_KEY), 403)
    assert message.startswith(
        "only a key with role 'operator' or 'admin' may apply routes; this key has role 'viewer'"
    )
    assert error(apply(running, key=APP_KEY), 403).startswith("only a key with role 'operator'")
    assert error(apply(running, key="tt-nope-nope-nope"), 401).startswith("invalid API key")
    ok(apply(running))
    assert error(get(running, "/api/routes", APP_KEY), 403).startswith(
        "a key with role 'app' may not read routes"
    )
    # another tenant sees neither the route nor its versions, and may not change it
    assert ok(get(running, "/api/routes", GLOBEX_VIEWER_KEY))["data"] == []
    for path in ("", "/versions", "/versions/1", "/diff?from=1&to=1", "/timeline"):
        response = get(running, "/api/routes/support-answer" + path, GLOBEX_VIEWER_KEY)
        assert error(response, 404).startswith("no route named 'support-answer'")
    # names are per tenant: globex's operator gets a route of its own, acme's is untouched
    theirs = ok(apply(running, V2, key=GLOBEX_OPERATOR_KEY))["routes"][0]
    assert (theirs["tenant"], theirs["version"], theirs["new_route"]) == ("globex", 1, True)
    assert ok(get(running, "/api/routes/support-answer"))["latest_version"] == 1
    # an admin changes its own tenant's route by name, another tenant's with `tenant:`
    assert ok(apply(running, V2, key=ADMIN_KEY))["routes"][0]["version"] == 2
    moved = ROUTES.replace("    risk_tier: 2", "    risk_tier: 2\n    tenant: globex")
    again = ok(apply(running, moved, key=ADMIN_KEY))["routes"][0]
    assert (again["tenant"], again["version"]) == ("globex", 2)


def test_bad_routes_files_name_the_file_route_and_key(running: Running) -> None:
    text = ROUTES.replace("temperature", "temprature").replace("gpt-mock", "gpt-9")
    message = error(apply(running, text), 400)
    assert message.startswith(
        "routes.yaml: routes.support-answer.version.params.temprature: unknown key"
    )
    assert error(apply(running, ROUTES.replace("gpt-mock", "gpt-9")), 400).startswith(
        "routes.yaml: routes.support-answer.version.model: unknown model 'gpt-9' "
        "(configured on this gateway: "
    )
    response = httpx.post(
        running.url + "/api/routes/apply",
        json={"yaml": ROUTES},
        headers=auth(OPERATOR_KEY),
        timeout=10,
    )
    assert error(response, 400).startswith("message: is required")
    assert error(apply(running, extra_field=1), 400).startswith("extra_field: unknown field")
    assert error(apply(running, routes={}), 400).startswith("yaml: give either 'yaml'")
    assert ok(get(running, "/api/routes"))["data"] == []  # nothing was applied


def test_unknown_routes_and_versions(running: Running) -> None:
    assert error(get(running, "/api/routes/nope"), 404).startswith("no route named 'nope'")
    ok(apply(running))
    message = error(get(running, "/api/routes/support-answer/versions/9"), 404)
    assert message.startswith("route 'support-answer' has no version v9 (latest: v1)")
    message = error(get(running, "/api/routes/support-answer/versions/latest"), 400)
    assert message.startswith("version: 'latest' is not a version like v2 or 2")
    message = error(get(running, "/api/routes/support-answer/diff"), 400)
    assert message.startswith("from: v1 has no parent version; give from=")
    message = error(get(running, "/api/routes/support-answer/diff", to="v5"), 404)
    assert message.startswith("route 'support-answer' has no version v5")
