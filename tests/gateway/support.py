"""What the route-call tests share: the policy they render, applying routes, an SDK
client, the upstream request a call sent."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from tests.support import (
    APP_KEY,
    OPERATOR_KEY,
    ROUTES,
    Running,
    auth,
)
from trimtab.testing.mock_upstream import MockUpstream, RecordedRequest

POLICY = "refunds within 30 days"


def apply(running: Running, text: str = ROUTES, message: str = "launch") -> list[Any]:
    response = httpx.post(
        running.url + "/api/routes/apply",
        json={"yaml": text, "message": message},
        headers=auth(OPERATOR_KEY),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    routes: list[Any] = response.json()["routes"]
    return routes


def openai_client(running: Running, key: str = APP_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=running.url + "/v1", api_key=key, max_retries=0)


def sent_with(upstream: MockUpstream, marker: str) -> RecordedRequest:
    """The upstream request whose messages mention `marker`."""
    hits = [r for r in upstream.requests if isinstance(r.body, dict) and marker in str(r.body)]
    assert hits, f"no upstream request mentions {marker!r}"
    return hits[-1]
