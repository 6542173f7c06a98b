"""What schemathesis found against /api/openapi.json, each pinned on both stores.

A NUL character (`%00` in a query or path, `\\u0000` in a JSON body) reached the store:
PostgreSQL refuses it in text (psycopg.DataError), so the same request that SQLite
answered answered a 500 on PostgreSQL. It is a 400 naming the parameter on both now.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.support import ADMIN, ROUTES
from tests.support import KEYS, GatewayFactory, Running

NUL_MESSAGE = "must not contain a NUL character (%00, \\u0000)"


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    running = gateway(store=store_url, keys=KEYS)
    applied = httpx.post(
        f"{running.url}/api/routes/apply",
        json={"routes": ROUTES, "message": "seed"},
        headers=ADMIN,
    )
    assert applied.status_code == 200, applied.text
    return running


def refused(response: httpx.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["param"] == param
    assert error["message"].startswith(f"{param}: {NUL_MESSAGE} (request id: req_")


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/routes/r1/versions/v1?tenant=s%00s", "tenant"),  # the case schemathesis found
        ("/api/routes/r%00/timeline", "route"),
        ("/api/requests?model=gpt%00", "model"),
        ("/api/requests/req%00", "request_id"),
        ("/api/keys/key_%00", "key_id"),
        ("/api/audit?actor=%00", "actor"),
        ("/api/costs?tenant=%00", "tenant"),
    ],
)
def test_a_nul_in_a_parameter_is_a_400_naming_it(running: Running, path: str, param: str) -> None:
    refused(httpx.get(f"{running.url}{path}", headers=ADMIN), param)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/api/feedback", {"request_id": "req_x", "score": 1, "comment": "a\u0000b"}, "comment"),
        ("/api/routes/apply", {"routes": ROUTES, "message": "why\u0000"}, "message"),
        # deep inside: a route's name in the routes data
        ("/api/routes/apply", {"routes": {"r\u0000": ROUTES["r1"]}, "message": "m"}, "routes"),
        ("/api/routes/r1/rollback", {"reason": "\u0000"}, "reason"),
    ],
)
def test_a_nul_in_a_body_is_a_400_naming_its_field(
    running: Running, path: str, body: dict[str, Any], param: str
) -> None:
    refused(httpx.post(f"{running.url}{path}", json=body, headers=ADMIN), param)
    timeline = httpx.get(f"{running.url}/api/routes/r1/timeline", headers=ADMIN).json()
    assert len(timeline["data"]) == 1  # nothing changed: only the seed's apply


def test_text_without_a_nul_still_reaches_the_store(running: Running) -> None:
    response = httpx.get(f"{running.url}/api/requests?model=gpt%01", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


def test_an_attestation_url_longer_than_its_column_is_a_400_on_both_stores(
    running: Running,
) -> None:
    """The document said 4,000 characters (the free-text bound) while the column holds
    1,024: SQLite kept a longer url, PostgreSQL refused it (a 503 'nothing changed')."""
    url = f"{running.url}/api/routes/r1/versions/1/attestations"
    long = "https://ci.example/" + "a" * 1100
    response = httpx.post(url, json={"kind": "eval", "result": "pass", "url": long}, headers=ADMIN)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_parameter", "url")
    assert error["message"].startswith("url: is 1119 characters; at most 1024 are accepted")
    fits = long[:1024]
    response = httpx.post(url, json={"kind": "eval", "result": "pass", "url": fits}, headers=ADMIN)
    assert response.status_code == 201, response.text
    doc = httpx.get(f"{running.url}/api/openapi.json").json()
    assert doc["components"]["schemas"]["AttestBody"]["properties"]["url"]["maxLength"] == 1024


@pytest.mark.parametrize(
    "status",
    [
        "%C2%B2",  # '²': str.isdigit says yes, int() says no (a ValueError, 500)
        "99999999999999999999",  # beyond every store's integer (OverflowError, DataError)
    ],
)
def test_a_status_filter_that_is_no_number_is_a_400(running: Running, status: str) -> None:
    response = httpx.get(f"{running.url}/api/requests?status={status}", headers=ADMIN)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_parameter", "status")
    assert "is not an HTTP status, 'error' or 'ok'" in error["message"]


def test_a_status_filter_still_takes_codes_and_words(running: Running) -> None:
    for status in ("200", "429", "999", "error", "ok"):
        response = httpx.get(f"{running.url}/api/requests?status={status}", headers=ADMIN)
        assert response.status_code == 200, (status, response.text)
