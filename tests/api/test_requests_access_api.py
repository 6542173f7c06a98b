"""Who may read the request log, through a real gateway, on SQLite and PostgreSQL: a
viewer its tenant, an admin any, an app key none; keys and error bodies."""

from __future__ import annotations

import orjson

from tests.api.request_traffic import Traffic, detail, ids_of
from tests.support import ADMIN_KEY, APP_KEY, GLOBEX_APP_KEY, GLOBEX_VIEWER_KEY, VIEWER_KEY


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
