"""Tenant isolation as a matrix (issue 15): every read endpoint and every id-taking endpoint
of the API, taken from the declarations the app serves (so an endpoint added later joins
the matrix), with the keys of two tenants in every role but admin (an admin reads every
tenant by design): no row of the other tenant is returned, and none is counted."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_APP_KEY,
    GLOBEX_OPERATOR_KEY,
    GLOBEX_VIEWER_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    ROUTES,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.api.schema import DeclaredRoute

# the keys of one tenant, every role but admin: (tenant, role) -> key
KEYS_OF = {
    "acme": {"app": APP_KEY, "viewer": VIEWER_KEY, "operator": OPERATOR_KEY},
    "globex": {"app": GLOBEX_APP_KEY, "viewer": GLOBEX_VIEWER_KEY, "operator": GLOBEX_OPERATOR_KEY},
}
CALLS = {"acme": 3, "globex": 5}  # different, so a count that mixes them shows


def marks(tenant: str) -> dict[str, str]:
    """What only `tenant`'s rows contain, by what it is."""
    return {
        "tenant": f'"tenant":"{tenant}"',  # a row's field (the name alone is in key owners)
        "feature": f"feat-{tenant}-x1",
        "user": f"user-{tenant}-x1",
        "route": f"{tenant}-route-x1",
        "dataset": f"{tenant}-ds-x1",
        "slo": f"slo-{tenant}-x1",
        "owner": f"owner-{tenant}-x1",
    }


def seed(running: Running, tenant: str) -> dict[str, str]:
    """Traffic, a route, a dataset, an SLO, feedback and an API key of `tenant`; the ids."""
    m = marks(tenant)
    keys = KEYS_OF[tenant]
    ids: dict[str, str] = {}
    with httpx.Client(base_url=running.url, timeout=30) as http:
        for i in range(CALLS[tenant]):
            resp = http.post(
                "/v1/chat/completions",
                json={
                    "model": "sim-1",
                    "user": m["user"],
                    "messages": [{"role": "user", "content": f"q{i}"}],
                },
                headers={**auth(keys["app"]), "x-trimtab-feature": m["feature"]},
            )
            assert resp.status_code == 200, resp.text
            ids["request_id"] = resp.headers["x-trimtab-request-id"]
        routes = ROUTES.replace("support-answer", m["route"]).replace("acme", tenant)
        applied = http.post(
            "/api/routes/apply",
            json={"yaml": routes, "message": "x"},
            headers=auth(keys["operator"]),
        )
        assert applied.status_code == 200, applied.text
        item = '{"id": "q1", "messages": [{"role": "user", "content": "hi"}]}\n'
        pushed = http.post(
            f"/api/datasets/{m['dataset']}/versions",
            json={"format": "jsonl", "content": item, "message": "v1"},
            headers=auth(keys["operator"]),
        )
        assert pushed.status_code in (200, 201), pushed.text
        sli = "sli: {kind: availability}, objective: 0.99"
        slos = f"slos:\n  {m['slo']}: {{route: {m['route']}, {sli}}}\n"
        applied = http.post(
            "/api/slos/apply", json={"yaml": slos, "message": "x"}, headers=auth(keys["operator"])
        )
        assert applied.status_code == 200, applied.text
        created = http.post(
            "/api/keys",
            json={"tenant": tenant, "role": "viewer", "owner": m["owner"]},
            headers=auth(ADMIN_KEY),
        )
        assert created.status_code == 201, created.text
        ids["key_id"] = created.json()["id"]
    running.wait_for_rows(sum(CALLS.values()) if tenant == "globex" else CALLS[tenant])
    with httpx.Client(base_url=running.url, timeout=30) as http:
        feedback = http.post(
            "/api/feedback",
            json={"request_id": ids["request_id"], "thumbs": "up"},
            headers=auth(keys["app"]),
        )
        assert feedback.status_code in (200, 201), feedback.text
    return ids


def declared(running: Running) -> list[DeclaredRoute]:
    return [r for r in running.server_app.routes if isinstance(r, DeclaredRoute)]


def fill(path: str, other: dict[str, str], other_ids: dict[str, str]) -> str:
    """The path with the other tenant's ids (or, for kinds nobody seeded, unknown ones)."""
    values = {
        "request_id": other_ids["request_id"],
        "key_id": other_ids["key_id"],
        "route": other["route"],
        "dataset": other["dataset"],
        "slo": other["slo"],
        "number": "1",
        "version": "1",
        "move": "pause",
    }
    return re.sub(r"\{(\w+)\}", lambda g: values.get(g.group(1), "x-unknown-1"), path)


def leaked(body: str, other: dict[str, str], other_ids: dict[str, str], but: str = "") -> list[str]:
    found = [
        f"{kind} {value!r}" for kind, value in other.items() if value in body and value not in but
    ]
    found += [
        f"{kind} {value!r}"
        for kind, value in other_ids.items()
        if value in body and value not in but
    ]
    return found


def totals(data: Any, name: str) -> int:
    """The sum of every `name` field of the answer's `total` object."""
    total = data.get("total") if isinstance(data, dict) else None
    return int(total.get(name, 0)) if isinstance(total, dict) else -1


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> tuple[Running, dict[str, dict[str, str]]]:
    server = gateway(store=store_url, keys=ROUTE_KEYS)
    ids = {"acme": seed(server, "acme"), "globex": seed(server, "globex")}
    return server, ids


def test_no_endpoint_returns_or_counts_another_tenants_rows(
    running: tuple[Running, dict[str, dict[str, str]]],
) -> None:
    server, ids = running
    routes = declared(server)
    reads = [r for r in routes if r.declaration.method == "GET"]
    by_id = [r for r in routes if "{" in r.declaration.path and r.declaration.method != "GET"]
    assert len(reads) >= 30 and len(by_id) >= 10  # the declarations were found
    problems: list[str] = []
    checked = 0
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for tenant, other_tenant in (("acme", "globex"), ("globex", "acme")):
            other, other_ids = marks(other_tenant), ids[other_tenant]
            for role, key in KEYS_OF[tenant].items():
                for route in [*reads, *by_id]:
                    d = route.declaration
                    path = fill(d.path, other, other_ids)
                    takes_ids = "{" in d.path
                    body: dict[str, Any] | None = {} if d.method != "GET" else None
                    resp = http.request(d.method, path, headers=auth(key), json=body)
                    checked += 1
                    where = f"{tenant} {role}: {d.method} {path} -> {resp.status_code}"
                    if takes_ids and resp.status_code < 300:
                        problems.append(f"{where}: the other tenant's id answered")
                    found = leaked(resp.text, other, other_ids, but=path if takes_ids else "")
                    if found:
                        problems.append(f"{where}: {', '.join(found)}")
                    if d.method == "GET" and any(p.name == "tenant" for p in d.params):
                        asked = http.get(path, params={"tenant": other_tenant}, headers=auth(key))
                        checked += 1
                        found = leaked(asked.text, other, other_ids, but=path + other_tenant)
                        if asked.status_code < 300 and found:
                            problems.append(f"{where} ?tenant={other_tenant}: {', '.join(found)}")
                # an id in the body: feedback on the other tenant's request
                other_request = {"request_id": other_ids["request_id"], "thumbs": "down"}
                resp = http.post("/api/feedback", json=other_request, headers=auth(key))
                if resp.status_code < 300:
                    problems.append(f"{tenant} {role}: feedback on the other's request answered")
                for path, name in (("/api/metrics/summary", "count"), ("/api/costs", "requests")):
                    resp = http.get(path, params={"window": "1h"}, headers=auth(key))
                    if resp.status_code == 200 and totals(resp.json(), name) != CALLS[tenant]:
                        problems.append(f"{tenant} {role}: {path} counts {resp.json()['total']}")
    assert problems == [], "\n".join(problems)
    assert checked > 200


def test_the_admin_sees_both_so_the_markers_would_show(
    running: tuple[Running, dict[str, dict[str, str]]],
) -> None:
    server, ids = running
    with httpx.Client(base_url=server.url, timeout=30) as http:
        listed = http.get("/api/requests", headers=auth(ADMIN_KEY)).text
        summary = http.get(
            "/api/metrics/summary", params={"window": "1h"}, headers=auth(ADMIN_KEY)
        ).json()
    assert leaked(listed, marks("globex"), ids["globex"]) and leaked(
        listed, marks("acme"), ids["acme"]
    )
    assert totals(summary, "count") == sum(CALLS.values())
