"""POST /api/incidents/{id}/severity through a real gateway: the change with why, on the
timeline and audited; bad values refused naming the field; the same severity, a viewer
and another tenant refused (a closed incident: tests/incidents/test_store.py)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import (
    ADMIN_KEY,
    GLOBEX_OPERATOR_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    VIEWER_KEY,
    GatewayFactory,
    auth,
)


def _post(url: str, path: str, key: str, **body: Any) -> httpx.Response:
    return httpx.post(url + path, json=body, headers=auth(key), timeout=30)


def _get(url: str, path: str, key: str) -> Any:
    return httpx.get(url + path, headers=auth(key), timeout=30).json()


def test_change_an_incidents_severity(gateway: GatewayFactory) -> None:
    served = gateway(keys=ROUTE_KEYS)
    opened = _post(served.url, "/api/incidents", OPERATOR_KEY, type="cost_spike", severity=3,
                   tenants=["acme"], message="spend doubled")  # fmt: skip
    assert opened.status_code == 201, opened.text
    incident = opened.json()["id"]
    path = f"/api/incidents/{incident}/severity"

    changed = _post(served.url, path, OPERATOR_KEY, severity=2, message="it keeps rising")
    assert changed.status_code == 200, changed.text
    assert changed.json()["severity"] == 2
    timeline = _get(served.url, f"/api/incidents/{incident}/timeline", VIEWER_KEY)["data"]
    assert any(e["kind"] == "severity" and "it keeps rising" in e["summary"] for e in timeline)
    audit = _get(served.url, f"/api/audit?target={incident}", ADMIN_KEY)["data"]
    row = next(e for e in audit if e["action"] == "incident.severity")
    assert row["detail"] == {"from": 3, "to": 2, "message": "it keeps rising"}
    assert row["actor"] == "ml@acme" and row["tenant"] == "acme"

    for body, param in (
        ({"severity": 5, "message": "x"}, "severity"),
        ({"severity": 2.0, "message": "x"}, "severity"),
        ({"severity": 1}, "message"),
    ):
        refused = _post(served.url, path, OPERATOR_KEY, **body)
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["error"]["param"] == param
    same = _post(served.url, path, OPERATOR_KEY, severity=2, message="again")
    assert same.status_code == 409 and same.json()["error"]["code"] == "unchanged"
    assert _post(served.url, path, VIEWER_KEY, severity=1, message="x").status_code == 403
    other = _post(served.url, path, GLOBEX_OPERATOR_KEY, severity=1, message="x")
    assert other.status_code == 404
    assert _get(served.url, f"/api/incidents/{incident}", OPERATOR_KEY)["severity"] == 2
